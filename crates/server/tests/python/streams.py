"""Goal: redis-py's stream and consumer-group commands against cohort return the Python
structures redis-py builds from Redis 7's replies, over RESP2, RESP3 and redis-py's default.

Run by crates/server/tests/redis_py.rs with the node's port in COHORT_PORTS. Each check prints
what it checks; any failed assert exits non-zero.

redis-py shapes the same reply differently per client mode:
- protocol=2, and the default client (RESP2 before redis-py 8; from 8 on it speaks RESP3 and
  converts replies back to the RESP2 shapes): XREAD/XREADGROUP give
  [[stream, [(id, {field: value}), ...]], ...].
- protocol=3: XREAD/XREADGROUP give {stream: [[(id, {field: value}), ...]]} (a map of
  streams; redis-py wraps each entry list in one more list).
Everything else compared here has one shape in all three modes.
"""

import os
import re
import sys
import threading
import time

import redis

PORT = int(os.environ["COHORT_PORTS"].split(",")[0])
ID_PATTERN = re.compile(r"^\d+-\d+$")


def check(label):
    print(f"  check: {label}", flush=True)


def id_key(entry_id):
    """Orders stream ids numerically (text order is wrong for "9-0" < "10-0")."""
    milliseconds, sequence = entry_id.split("-")
    return (int(milliseconds), int(sequence))


def read_entries(reply, mode, stream):
    """The entries a XREAD/XREADGROUP reply holds for `stream`, after checking the reply has
    exactly the shape redis-py gives for Redis 7 in this mode."""
    if mode == "resp3":
        assert isinstance(reply, dict), f"RESP3 XREAD reply should be a dict: {reply!r}"
        assert list(reply) == [stream], reply
        wrapped = reply[stream]
        assert isinstance(wrapped, list) and len(wrapped) == 1, reply
        entries = wrapped[0]
    else:
        assert isinstance(reply, list), f"XREAD reply should be a list: {reply!r}"
        assert len(reply) == 1, reply
        name, entries = reply[0]
        assert name == stream, reply
    assert isinstance(entries, list), reply
    for entry in entries:
        assert isinstance(entry, tuple) and len(entry) == 2, entry
        assert ID_PATTERN.match(entry[0]), entry
        assert isinstance(entry[1], dict), entry
    return entries


def empty_read(reply, mode):
    """What redis-py gives for a XREAD/XREADGROUP that found nothing (Redis replies nil)."""
    if mode == "resp3":
        return reply == {}
    return reply == []


def run(client, other, mode):
    prefix = f"{mode}:"
    stream = prefix + "events"

    check(f"[{mode}] XADD assigns increasing auto ids of the form ms-seq")
    ids = [client.xadd(stream, {"n": str(n), "kind": "event"}) for n in range(10)]
    assert all(ID_PATTERN.match(entry_id) for entry_id in ids), ids
    assert ids == sorted(ids, key=id_key) and len(set(ids)) == 10, ids
    assert client.xlen(stream) == 10

    check(f"[{mode}] XRANGE / XREVRANGE give [(id, {{field: value}})] in id order")
    entries = client.xrange(stream)
    assert entries == [(ids[n], {"n": str(n), "kind": "event"}) for n in range(10)], entries
    assert client.xrange(stream, min=ids[2], max=ids[4]) == entries[2:5]
    assert client.xrange(stream, count=3) == entries[:3]
    assert client.xrevrange(stream, count=2) == [entries[9], entries[8]]
    assert client.xrange(prefix + "missing") == []

    check(f"[{mode}] XADD MAXLEN ~ keeps at least MAXLEN, trims whole nodes; exact MAXLEN is exact")
    capped = prefix + "capped"
    for n in range(250):
        client.xadd(capped, {"n": str(n)}, maxlen=100, approximate=True)
    length = client.xlen(capped)
    assert 100 <= length < 250, length
    last = client.xrevrange(capped, count=1)[0][1]
    assert last == {"n": "249"}, last
    client.xadd(capped, {"n": "250"}, maxlen=100, approximate=False)
    assert client.xlen(capped) == 100
    assert client.xrange(capped, count=1)[0][1] == {"n": "151"}

    check(f"[{mode}] XGROUP CREATE MKSTREAM makes an empty stream; a second CREATE is BUSYGROUP")
    jobs = prefix + "jobs"
    assert client.xgroup_create(jobs, "workers", id="0", mkstream=True) is True
    assert client.exists(jobs) == 1 and client.xlen(jobs) == 0
    try:
        client.xgroup_create(jobs, "workers", id="0")
        raise AssertionError("second XGROUP CREATE succeeded")
    except redis.ResponseError as error:
        assert str(error).startswith("BUSYGROUP"), error
    try:
        client.xgroup_create(prefix + "nostream", "workers", id="0")
        raise AssertionError("XGROUP CREATE without MKSTREAM on a missing key succeeded")
    except redis.ResponseError as error:
        assert "MKSTREAM" in str(error), error
    assert empty_read(client.xreadgroup("workers", "alice", {jobs: ">"}), mode)

    job_ids = [client.xadd(jobs, {"job": str(n)}) for n in range(6)]

    check(f"[{mode}] XREADGROUP '>' delivers new entries once, COUNT bounds them")
    first = read_entries(client.xreadgroup("workers", "alice", {jobs: ">"}, count=4), mode, jobs)
    assert first == [(job_ids[n], {"job": str(n)}) for n in range(4)], first
    second = read_entries(client.xreadgroup("workers", "bob", {jobs: ">"}), mode, jobs)
    assert [entry_id for entry_id, _ in second] == job_ids[4:], second
    assert empty_read(client.xreadgroup("workers", "bob", {jobs: ">"}), mode)

    check(f"[{mode}] XREADGROUP '0' replays the consumer's own pending history")
    history = read_entries(client.xreadgroup("workers", "alice", {jobs: "0"}), mode, jobs)
    assert history == first, history

    check(f"[{mode}] XACK removes from the pending list and counts only pending ids")
    assert client.xack(jobs, "workers", job_ids[0], job_ids[1]) == 2
    assert client.xack(jobs, "workers", job_ids[0]) == 0
    history = read_entries(client.xreadgroup("workers", "alice", {jobs: "0"}), mode, jobs)
    assert [entry_id for entry_id, _ in history] == job_ids[2:4], history

    check(f"[{mode}] XPENDING summary: pending, min, max, consumers")
    summary = client.xpending(jobs, "workers")
    assert summary == {
        "pending": 4,
        "min": job_ids[2],
        "max": job_ids[5],
        "consumers": [{"name": "alice", "pending": 2}, {"name": "bob", "pending": 2}],
    }, summary

    check(f"[{mode}] XPENDING range: per-entry consumer, idle time and delivery count")
    detail = client.xpending_range(jobs, "workers", min="-", max="+", count=10)
    assert [row["message_id"] for row in detail] == job_ids[2:], detail
    assert [row["consumer"] for row in detail] == ["alice", "alice", "bob", "bob"], detail
    # alice's entries were delivered by '>' and twice more by the history reads.
    assert [row["times_delivered"] for row in detail] == [3, 3, 1, 1], detail
    assert all(set(row) == {"message_id", "consumer", "time_since_delivered",
                            "times_delivered"} for row in detail), detail
    assert all(isinstance(row["time_since_delivered"], int) for row in detail), detail
    only_bob = client.xpending_range(jobs, "workers", "-", "+", 10, consumername="bob")
    assert [row["message_id"] for row in only_bob] == job_ids[4:], only_bob

    check(f"[{mode}] XCLAIM moves an entry to another consumer (JUSTID without counting)")
    claimed = client.xclaim(jobs, "workers", "carol", 0, [job_ids[2]])
    assert claimed == [(job_ids[2], {"job": "2"})], claimed
    assert client.xclaim(jobs, "workers", "carol", 0, [job_ids[3]], justid=True) == [job_ids[3]]
    detail = {row["message_id"]: row for row in
              client.xpending_range(jobs, "workers", "-", "+", 10)}
    assert detail[job_ids[2]]["consumer"] == "carol"
    assert detail[job_ids[2]]["times_delivered"] == 4
    assert detail[job_ids[3]]["times_delivered"] == 3, detail[job_ids[3]]
    # A minimum idle time the entry has not reached claims nothing.
    assert client.xclaim(jobs, "workers", "dave", 60_000, [job_ids[4]]) == []

    check(f"[{mode}] XAUTOCLAIM honours min_idle_time and returns [next, entries, deleted]")
    none = client.xautoclaim(jobs, "workers", "dave", 60_000, start_id="0-0")
    assert none == ["0-0", [], []], none
    time.sleep(0.3)
    taken = client.xautoclaim(jobs, "workers", "dave", 200, start_id="0-0", count=10)
    assert taken[0] == "0-0", taken
    assert taken[1] == [(job_ids[n], {"job": str(n)}) for n in range(2, 6)], taken
    assert taken[2] == [], taken
    just_ids = client.xautoclaim(jobs, "workers", "erin", 0, start_id="0-0", count=2,
                                 justid=True)
    assert just_ids == job_ids[2:4], just_ids

    check(f"[{mode}] XINFO GROUPS: one dict per group with Redis 7's fields")
    groups = client.xinfo_groups(jobs)
    assert len(groups) == 1, groups
    group = groups[0]
    expected = {"name": "workers", "consumers": 5, "pending": 4,
                "last-delivered-id": job_ids[5], "entries-read": 6, "lag": 0}
    assert {field: group.get(field) for field in expected} == expected, group

    check(f"[{mode}] XINFO CONSUMERS: name, pending, idle, inactive")
    consumers = {row["name"]: row for row in client.xinfo_consumers(jobs, "workers")}
    assert sorted(consumers) == ["alice", "bob", "carol", "dave", "erin"], consumers
    assert consumers["dave"]["pending"] == 2 and consumers["erin"]["pending"] == 2, consumers
    assert all({"name", "pending", "idle"} <= set(row) for row in consumers.values())

    check(f"[{mode}] XINFO STREAM: length, ids, groups, first-entry and last-entry")
    info = client.xinfo_stream(jobs)
    assert info["length"] == 6, info
    assert info["last-generated-id"] == job_ids[5], info
    assert info["entries-added"] == 6, info
    assert info["groups"] == 1, info
    assert info["first-entry"] == (job_ids[0], {"job": "0"}), info
    assert info["last-entry"] == (job_ids[5], {"job": "5"}), info
    assert info["max-deleted-entry-id"] == "0-0", info
    full = client.xinfo_stream(jobs, full=True)
    assert full["length"] == 6 and len(full["entries"]) == 6, full
    assert full["groups"][0]["name"] == "workers", full
    assert full["groups"][0]["pel-count"] == 4, full

    check(f"[{mode}] blocking XREADGROUP is woken by XADD from another connection")
    def produce():
        time.sleep(0.3)
        other.xadd(jobs, {"job": "late"})

    producer = threading.Thread(target=produce)
    started = time.monotonic()
    producer.start()
    woken = client.xreadgroup("workers", "alice", {jobs: ">"}, count=1, block=5000)
    waited = time.monotonic() - started
    producer.join()
    woken = read_entries(woken, mode, jobs)
    assert len(woken) == 1 and woken[0][1] == {"job": "late"}, woken
    assert 0.2 <= waited < 4.0, waited

    check(f"[{mode}] blocking XREADGROUP with nothing new times out with redis-py's empty reply")
    started = time.monotonic()
    assert empty_read(client.xreadgroup("workers", "alice", {jobs: ">"}, block=300), mode)
    assert 0.25 <= time.monotonic() - started < 4.0

    check(f"[{mode}] XTRIM MAXLEN exact removes the oldest; XDEL removes by id")
    assert client.xtrim(jobs, maxlen=4, approximate=False) == 3
    remaining = [entry_id for entry_id, _ in client.xrange(jobs)]
    assert remaining[:3] == job_ids[3:], remaining
    assert client.xdel(jobs, job_ids[4], "0-1") == 1
    assert client.xlen(jobs) == 3
    assert client.xinfo_stream(jobs)["max-deleted-entry-id"] == job_ids[4]
    # With `~` and fewer entries than a node holds, nothing is trimmed (as in Redis).
    assert client.xtrim(jobs, maxlen=1, approximate=True) == 0

    check(f"[{mode}] XREAD from 0 gives the stream's entries in the mode's shape")
    everything = read_entries(client.xread({jobs: "0"}), mode, jobs)
    assert everything == client.xrange(jobs), everything


def main():
    modes = [
        ("resp2", {"protocol": 2}),
        ("resp3", {"protocol": 3}),
        ("default", {}),
    ]
    print(f"redis-py {redis.__version__} against port {PORT}", flush=True)
    for mode, options in modes:
        client = redis.Redis(port=PORT, decode_responses=True, socket_timeout=10, **options)
        other = redis.Redis(port=PORT, decode_responses=True, socket_timeout=10, **options)
        run(client, other, mode)
        client.close()
        other.close()
    print("streams: all checks passed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
