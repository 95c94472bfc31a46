//! Limits on untrusted input. Every length a peer declares is checked against one of these before
//! anything is allocated for it.

/// Default largest bulk string: Redis's `proto-max-bulk-len` (512 MiB).
pub const BULK_LEN_MAX_DEFAULT: usize = 512 * 1024 * 1024;
/// Default largest array (argument count): Redis's limit for authenticated clients up to 6.2.
pub const ARRAY_LEN_MAX_DEFAULT: usize = 1024 * 1024;
/// Default longest inline command or header line: Redis's `PROTO_INLINE_MAX_SIZE` (64 KiB).
pub const INLINE_LEN_MAX_DEFAULT: usize = 64 * 1024;
/// Default largest single command: Redis's `client-query-buffer-limit` (1 GiB).
pub const QUERY_BUFFER_MAX_DEFAULT: usize = 1024 * 1024 * 1024;
/// Default deepest nesting of reply aggregates.
pub const DEPTH_MAX_DEFAULT: usize = 128;
/// Largest argument count before authentication (Redis `processMultibulkBuffer`).
pub const UNAUTHENTICATED_ARRAY_LEN_MAX: usize = 10;
/// Largest bulk string before authentication (Redis `processMultibulkBuffer`).
pub const UNAUTHENTICATED_BULK_LEN_MAX: usize = 16384;
/// Shortest `inline_len_max` accepted: a header line holding any 64-bit count must fit.
pub const INLINE_LEN_MAX_MIN: usize = 32;

// One maximal bulk must fit in one command, and the pre-authentication limits must be tighter.
const _: () = assert!(BULK_LEN_MAX_DEFAULT < QUERY_BUFFER_MAX_DEFAULT);
const _: () = assert!(INLINE_LEN_MAX_DEFAULT <= QUERY_BUFFER_MAX_DEFAULT);
const _: () = assert!(INLINE_LEN_MAX_MIN <= INLINE_LEN_MAX_DEFAULT);
const _: () = assert!(UNAUTHENTICATED_ARRAY_LEN_MAX <= ARRAY_LEN_MAX_DEFAULT);
const _: () = assert!(UNAUTHENTICATED_BULK_LEN_MAX <= BULK_LEN_MAX_DEFAULT);

/// The bounds a decoder enforces. See the crate documentation for why each exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (`$<length>`); larger is `invalid bulk length`.
    pub bulk_len_max: usize,
    /// Largest array or map (`*<count>`, `%<count>` …); larger is `invalid multibulk length`.
    pub array_len_max: usize,
    /// Longest inline command and longest header or reply line, excluding its line end.
    pub inline_len_max: usize,
    /// Largest single command, counted in wire bytes (request decoder only).
    pub query_buffer_max: usize,
    /// Deepest nesting of aggregates (reply decoder only; requests are flat).
    pub depth_max: usize,
    /// Tighter limits in force until the client authenticates; `None` once it has.
    pub unauthenticated: Option<UnauthenticatedLimits>,
}

/// The limits Redis applies before `AUTH` succeeds, so that an unauthenticated peer cannot make
/// the server buffer much. Exceeding them gives the `unauthenticated …` errors, checked after the
/// ordinary limits exactly as Redis does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnauthenticatedLimits {
    /// Largest bulk string before authentication.
    pub bulk_len_max: usize,
    /// Largest argument count before authentication.
    pub array_len_max: usize,
}

impl Default for Limits {
    /// The limits for an authenticated client (or a server without a password).
    fn default() -> Limits {
        Limits {
            bulk_len_max: BULK_LEN_MAX_DEFAULT,
            array_len_max: ARRAY_LEN_MAX_DEFAULT,
            inline_len_max: INLINE_LEN_MAX_DEFAULT,
            query_buffer_max: QUERY_BUFFER_MAX_DEFAULT,
            depth_max: DEPTH_MAX_DEFAULT,
            unauthenticated: None,
        }
    }
}

impl Limits {
    /// The default limits plus Redis's pre-authentication ones (10 arguments, 16 KiB bulks).
    pub fn unauthenticated() -> Limits {
        Limits {
            unauthenticated: Some(UnauthenticatedLimits {
                bulk_len_max: UNAUTHENTICATED_BULK_LEN_MAX,
                array_len_max: UNAUTHENTICATED_ARRAY_LEN_MAX,
            }),
            ..Limits::default()
        }
    }

    /// These limits with the pre-authentication ones lifted, for use after `AUTH` succeeds.
    pub fn authenticated(self) -> Limits {
        Limits { unauthenticated: None, ..self }
    }

    /// Panics when the limits contradict each other: a configuration bug, not an input error.
    pub(crate) fn assert_valid(&self) {
        assert!(self.inline_len_max >= INLINE_LEN_MAX_MIN, "inline_len_max too small");
        assert!(self.depth_max >= 1, "depth_max must allow one level");
        assert!(self.array_len_max >= 1, "array_len_max must allow one element");
        assert!(self.inline_len_max <= self.query_buffer_max, "inline line exceeds a command");
        if let Some(unauthenticated) = self.unauthenticated {
            assert!(unauthenticated.bulk_len_max <= self.bulk_len_max);
            assert!(unauthenticated.array_len_max <= self.array_len_max);
        }
    }
}
