//! Raft. (Being written.)
