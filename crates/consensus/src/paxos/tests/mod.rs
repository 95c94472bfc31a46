//! Deterministic tests of the Multi-Paxos engine.
