"""Goal: locks through redis-py without scripting: the plain Redis idiom (SET NX PX to acquire,
WATCH/GET/MULTI/DEL/EXEC to release only one's own lock) and cohort's LOCK.* commands with
FIFO waiters and fencing tokens, over RESP2 and RESP3.

Run by crates/server/tests/redis_py.rs with the node's port in COHORT_PORTS. Each check prints
what it checks; any failed assert exits non-zero.
"""

import os
import sys
import threading
import time
import uuid

import redis

PORT = int(os.environ["COHORT_PORTS"].split(",")[0])


def check(label):
    print(f"  check: {label}", flush=True)


def acquire(client, key, ttl_ms):
    """The token if `key` was free, else None: `SET key token NX PX ttl_ms`."""
    token = uuid.uuid4().hex
    return token if client.set(key, token, nx=True, px=ttl_ms) else None


def release(client, key, token):
    """Deletes `key` only while it still holds `token`: WATCH, GET, then MULTI/DEL/EXEC, which
    fails if anyone touched the key after the WATCH. True if this call deleted it."""
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                if pipe.get(key) != token:
                    pipe.unwatch()
                    return False
                pipe.multi()
                pipe.delete(key)
                return pipe.execute() == [1]
            except redis.WatchError:
                continue


def run_idiom(client, other, mode):
    key = f"{mode}:resource-lock"
    client.delete(key)

    check(f"[{mode}] SET NX PX acquires a free lock and refuses a held one")
    token = acquire(client, key, 10_000)
    assert token is not None
    assert acquire(other, key, 10_000) is None
    assert 0 < client.pttl(key) <= 10_000

    check(f"[{mode}] a release with the wrong token deletes nothing")
    assert release(other, key, "not-the-token") is False
    assert client.get(key) == token

    check(f"[{mode}] a release with the right token deletes the lock, once")
    assert release(client, key, token) is True
    assert client.exists(key) == 0
    assert release(client, key, token) is False

    check(f"[{mode}] EXEC fails with WatchError when the watched key changed after WATCH")
    token = acquire(client, key, 10_000)
    with client.pipeline(transaction=True) as pipe:
        pipe.watch(key)
        assert pipe.get(key) == token
        # Meanwhile the lease is taken over by someone else.
        other.set(key, "intruder", px=10_000)
        pipe.multi()
        pipe.delete(key)
        try:
            pipe.execute()
            raise AssertionError("EXEC ran although the watched key changed")
        except redis.WatchError:
            pass
    assert client.get(key) == "intruder"
    assert release(client, key, token) is False
    assert client.get(key) == "intruder"
    client.delete(key)

    check(f"[{mode}] the lease ends by itself after PX milliseconds")
    assert acquire(client, key, 200) is not None
    assert acquire(other, key, 10_000) is None
    time.sleep(0.5)
    assert acquire(other, key, 10_000) is not None


def lock_info(client, name):
    """LOCK.INFO as a dict (a RESP3 map; RESP2 sends it flat), or None when the lock is free."""
    info = client.execute_command("LOCK.INFO", name)
    if isinstance(info, list):
        info = dict(zip(info[::2], info[1::2]))
    return info


def run_lock_commands(client, other, mode):
    name = f"{mode}:cohort-lock"
    guarded = f"{mode}:guarded"

    check(f"[{mode}] LOCK.ACQUIRE grants an integer token; a second ACQUIRE gets nil")
    first = client.execute_command("LOCK.ACQUIRE", name, 10_000, "OWNER", "first")
    assert isinstance(first, int) and first > 0, first
    assert other.execute_command("LOCK.ACQUIRE", name, 10_000) is None

    check(f"[{mode}] LOCK.INFO names the holder and its token")
    info = lock_info(client, name)
    assert info["owner"] == "first" and info["token"] == first, info
    assert 0 < info["ttl_ms"] <= 10_000 and info["waiters"] == 0, info

    check(f"[{mode}] LOCK.FENCED applies the holder's write")
    assert client.execute_command("LOCK.FENCED", name, first, "SET", guarded, "from-first")
    assert client.get(guarded) == "from-first"

    check(f"[{mode}] LOCK.ACQUIRE WAIT that runs out answers nil")
    started = time.monotonic()
    assert other.execute_command("LOCK.ACQUIRE", name, 10_000, "WAIT", 300) is None
    assert time.monotonic() - started >= 0.25

    check(f"[{mode}] a waiter (WAIT) in a thread is granted when the holder releases")
    granted = {}

    def wait_for_lock():
        granted["token"] = other.execute_command(
            "LOCK.ACQUIRE", name, 10_000, "WAIT", 5_000, "OWNER", "second"
        )

    waiter = threading.Thread(target=wait_for_lock)
    waiter.start()
    deadline = time.monotonic() + 5
    while lock_info(client, name)["waiters"] != 1:
        assert time.monotonic() < deadline, "the waiter never queued"
        time.sleep(0.02)
    assert client.execute_command("LOCK.RELEASE", name, first + 1) == 0
    assert client.execute_command("LOCK.RELEASE", name, first) == 1
    waiter.join(timeout=10)
    assert not waiter.is_alive(), "the waiter was not granted the lock"
    second = granted["token"]
    assert isinstance(second, int) and second > first, (first, second)

    check(f"[{mode}] the stale token's fenced write is refused with FENCED")
    try:
        client.execute_command("LOCK.FENCED", name, first, "SET", guarded, "stale")
        raise AssertionError("a stale token's fenced write was applied")
    except redis.ResponseError as error:
        assert str(error).startswith("FENCED"), error
    assert client.get(guarded) == "from-first"
    assert other.execute_command("LOCK.FENCED", name, second, "SET", guarded, "from-second")
    assert client.get(guarded) == "from-second"

    check(f"[{mode}] LOCK.RELEASE frees the lock; LOCK.INFO is nil when free")
    assert other.execute_command("LOCK.RELEASE", name, second) == 1
    assert lock_info(client, name) is None
    third = client.execute_command("LOCK.ACQUIRE", name, 10_000)
    assert third > second, (second, third)
    assert client.execute_command("LOCK.RELEASE", name, third) == 1


def main():
    print(f"redis-py {redis.__version__} against port {PORT}", flush=True)
    for mode, options in [("resp2", {"protocol": 2}), ("resp3", {"protocol": 3})]:
        client = redis.Redis(port=PORT, decode_responses=True, socket_timeout=10, **options)
        other = redis.Redis(port=PORT, decode_responses=True, socket_timeout=10, **options)
        run_idiom(client, other, mode)
        run_lock_commands(client, other, mode)
        client.close()
        other.close()
    print("locks: all checks passed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
