"""Goal: prove that crates/server/tests/redis_py.rs fails when a script fails. This script
prints a line and then fails an assert on purpose; it needs neither redis-py nor a server."""

print("  check: a failing assert makes the script exit non-zero", flush=True)
assert 1 + 1 == 3, "deliberate failure"
