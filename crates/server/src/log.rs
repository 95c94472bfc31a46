//! Operator log lines on standard error, with a UTC timestamp.

use std::time::{SystemTime, UNIX_EPOCH};

/// `HH:MM:SS.mmm` of the current UTC time.
pub fn timestamp() -> String {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let millis = elapsed.as_millis() as u64;
    let seconds = millis / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (seconds / 3600) % 24,
        (seconds / 60) % 60,
        seconds % 60,
        millis % 1000
    )
}

/// Prints one log line to standard error.
#[macro_export]
macro_rules! log {
    ($($argument:tt)*) => {
        eprintln!("{} {}", $crate::log::timestamp(), format!($($argument)*))
    };
}
