//! Checkers (being written).
