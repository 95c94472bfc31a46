//! Glob-style pattern matching, a port of Redis's `stringmatchlen` (util.c,
//! Redis 7), used by KEYS and the MATCH option of SCAN, HSCAN and SSCAN.
//!
//! `*` any run, `?` any byte, `[abc]`, `[^abc]`, `[a-z]` (reversed ranges
//! swapped), `\x` escapes. An unterminated `[` ends the class at the pattern's
//! end, exactly as Redis does. Like Redis, recursion on `*` is limited
//! (`NESTING_MAX`) and, once the rest of the pattern failed to match from every
//! later position, earlier `*`s give up at once, so abusive patterns cost
//! polynomial, not exponential, time.

const NESTING_MAX: u32 = 1000;

pub(crate) fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let mut skip_longer_matches = false;
    match_from(pattern, text, &mut skip_longer_matches, 0)
}

/// The C code reads a NUL past the end of its buffers; `at` returns 0 there.
fn at(bytes: &[u8], index: usize) -> u8 {
    bytes.get(index).copied().unwrap_or(0)
}

fn match_from(pattern: &[u8], text: &[u8], skip_longer_matches: &mut bool, nesting: u32) -> bool {
    if nesting > NESTING_MAX {
        return false;
    }
    let mut p = 0usize; // position in pattern
    let mut s = 0usize; // position in text
    while p < pattern.len() && s < text.len() {
        match pattern[p] {
            b'*' => {
                while p < pattern.len() && at(pattern, p + 1) == b'*' {
                    p += 1;
                }
                if pattern.len() - p == 1 {
                    return true;
                }
                while s < text.len() {
                    if match_from(&pattern[p + 1..], &text[s..], skip_longer_matches, nesting + 1) {
                        return true;
                    }
                    if *skip_longer_matches {
                        return false;
                    }
                    s += 1;
                }
                *skip_longer_matches = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let negate = at(pattern, p) == b'^';
                if negate {
                    p += 1;
                }
                let mut matched = false;
                let current = text[s];
                loop {
                    let remaining = pattern.len().saturating_sub(p);
                    if at(pattern, p) == b'\\' && remaining >= 2 {
                        p += 1;
                        if pattern[p] == current {
                            matched = true;
                        }
                    } else if at(pattern, p) == b']' {
                        break;
                    } else if remaining == 0 {
                        p -= 1;
                        break;
                    } else if remaining >= 3 && pattern[p + 1] == b'-' {
                        let (mut start, mut end) = (pattern[p], pattern[p + 2]);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        p += 2;
                        if (start..=end).contains(&current) {
                            matched = true;
                        }
                    } else if pattern[p] == current {
                        matched = true;
                    }
                    p += 1;
                }
                if negate {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            byte => {
                let mut expected = byte;
                if byte == b'\\' && pattern.len() - p >= 2 {
                    p += 1;
                    expected = pattern[p];
                }
                if expected != text[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == text.len() {
            while at(pattern, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pattern.len() && s == text.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_documented_examples() {
        // Goal: the KEYS documentation's examples behave as in Redis.
        assert!(matches(b"h?llo", b"hello"));
        assert!(matches(b"h?llo", b"hallo"));
        assert!(matches(b"h*llo", b"hllo"));
        assert!(matches(b"h*llo", b"heeeello"));
        assert!(matches(b"h[ae]llo", b"hello"));
        assert!(!matches(b"h[ae]llo", b"hillo"));
        assert!(matches(b"h[^e]llo", b"hallo"));
        assert!(!matches(b"h[^e]llo", b"hello"));
        assert!(matches(b"h[a-b]llo", b"hbllo"));
        assert!(matches(b"h[b-a]llo", b"hallo"));
        assert!(!matches(b"h[a-b]llo", b"hcllo"));
        // As in C, a pattern never matches an empty text; KEYS and SCAN
        // special-case the lone `*` exactly like Redis.
        assert!(!matches(b"*", b""));
        assert!(matches(b"*", b"x"));
        assert!(matches(b"", b""));
        assert!(!matches(b"", b"a"));
        assert!(matches(b"a*", b"a"));
        assert!(matches(b"a\\*b", b"a*b"));
        assert!(!matches(b"a\\*b", b"axb"));
        assert!(matches(b"*name*", b"firstname"));
        assert!(!matches(b"?", b""));
    }

    #[test]
    fn unterminated_class_and_trailing_escape() {
        // Goal: odd patterns behave like the C code (no panic, same verdicts).
        assert!(matches(b"[a", b"a"));
        assert!(!matches(b"[a", b"b"));
        assert!(matches(b"[\\]]", b"]"));
        assert!(matches(b"a\\", b"a\\"));
        assert!(matches(b"[^", b"x"));
    }

    #[test]
    fn abusive_pattern_finishes() {
        // Goal: many stars against a long non-matching text finish quickly.
        let pattern = b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b".to_vec();
        let text = vec![b'a'; 10_000];
        assert!(!matches(&pattern, &text));
    }
}
