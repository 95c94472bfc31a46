//! `cohort`: a strongly consistent, Redis-compatible store.

mod config;
mod handle;

fn main() {
    let _ = config::Config::default();
}
