//! Latency percentiles by nearest rank over every recorded operation.

/// Percentiles of one run, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub p50_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
}

impl Summary {
    /// Sorts `latencies_us` in place and picks the percentiles; all zero when
    /// nothing was recorded.
    pub fn of(latencies_us: &mut [u32]) -> Summary {
        latencies_us.sort_unstable();
        Summary {
            p50_us: nearest_rank(latencies_us, 50),
            p99_us: nearest_rank(latencies_us, 99),
            max_us: latencies_us.last().copied().unwrap_or(0),
        }
    }
}

/// The smallest value with at least `percent`% of the values at or below it.
fn nearest_rank(sorted: &[u32], percent: u64) -> u32 {
    assert!((1..=100).contains(&percent));
    if sorted.is_empty() {
        return 0;
    }
    let rank = (percent * sorted.len() as u64).div_ceil(100);
    sorted[(rank as usize).max(1) - 1]
}

#[cfg(test)]
mod tests {
    use super::Summary;

    /// Nearest-rank percentiles over 1..=100 are the values themselves.
    #[test]
    fn percentiles_by_nearest_rank() {
        let mut values: Vec<u32> = (1..=100).rev().collect();
        let summary = Summary::of(&mut values);
        assert_eq!(summary, Summary { p50_us: 50, p99_us: 99, max_us: 100 });
        let mut one = vec![7];
        assert_eq!(Summary::of(&mut one), Summary { p50_us: 7, p99_us: 7, max_us: 7 });
        assert_eq!(Summary::of(&mut []), Summary::default());
    }
}
