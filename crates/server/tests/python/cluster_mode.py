"""Goal: redis-py's `RedisCluster` works against a cohort cluster started with
`--cluster-enabled yes`, given only one startup node: it discovers every node from CLUSTER
SLOTS, routes keys to each slot's leader (following -MOVED), pipelines across slots, reads
hash-tagged keys with one MGET, sums DBSIZE over the primaries, scans every primary, gets
CROSSSLOT for a multi-slot MSET sent to one node, and reads from replicas after READONLY.

Run by crates/server/tests/cluster_mode.rs with every node's client port in COHORT_PORTS
(comma-separated; only the first is given to RedisCluster) on a cluster holding no keys.
Each check prints what it checks; any mismatch exits non-zero with a message.
"""

import os
import sys
import time
import warnings

import redis
from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError, MovedError, ResponseError

PORTS = [int(port) for port in os.environ["COHORT_PORTS"].split(",")]
HOST = "127.0.0.1"
KEYS = 300
# The cluster is started with --replicas 3.
REPLICAS = 3
PIPELINED = 100
TAGGED = {"{user1000}.name": "ann", "{user1000}.mail": "ann@example.com", "{user1000}.age": "41"}
# How long a replica may take to apply a write already acknowledged by its leader.
REPLICA_LAG_MAX_S = 3.0


def check(label):
    print(f"  check: {label}", flush=True)


def expect(condition, message):
    if not condition:
        print(f"MISMATCH: {message}", flush=True)
        sys.exit(1)


def value_of(n):
    return f"value-{n}"


def main():
    print(f"redis-py {redis.__version__}, startup node {HOST}:{PORTS[0]}", flush=True)
    cluster = RedisCluster(host=HOST, port=PORTS[0], decode_responses=True)

    check("the one startup node leads RedisCluster to every node")
    ports = sorted({node.port for node in cluster.get_nodes()})
    expect(ports == sorted(PORTS), f"RedisCluster knows ports {ports}, the cluster has {PORTS}")
    primaries = cluster.get_primaries()
    expect(len(primaries) >= 2, f"only {len(primaries)} primaries: {primaries}")
    print(f"  {len(primaries)} primaries: {sorted(node.port for node in primaries)}", flush=True)

    # redis-py sends keyless commands such as DBSIZE and KEYS to one default node unless told
    # otherwise; over every primary it sums DBSIZE and concatenates KEYS.
    check("the cluster starts empty")
    size = cluster.dbsize(target_nodes=RedisCluster.PRIMARIES)
    expect(size == 0, f"dbsize() over the primaries at start is {size}, expected 0")

    check(f"SET and GET {KEYS} keys spread over the slots")
    keys = [f"py:{n}" for n in range(KEYS)]
    for n, key in enumerate(keys):
        reply = cluster.set(key, value_of(n))
        expect(reply is True, f"SET {key} returned {reply!r}")
    for n, key in enumerate(keys):
        got = cluster.get(key)
        expect(got == value_of(n), f"GET {key} returned {got!r}, expected {value_of(n)!r}")
    slots = {cluster.keyslot(key) for key in keys}
    owners = {cluster.get_node_from_key(key).port for key in keys}
    expect(len(owners) >= 2, f"{KEYS} keys all live on one primary {owners}")
    print(f"  {len(slots)} slots on primaries {sorted(owners)}", flush=True)

    check(f"a pipeline of {PIPELINED} SETs across slots, then its GETs")
    pipe = cluster.pipeline()
    for n in range(PIPELINED):
        pipe.set(f"pipe:{n}", n)
    results = pipe.execute()
    expect(results == [True] * PIPELINED, f"pipelined SETs returned {results!r}")
    pipe = cluster.pipeline()
    for n in range(PIPELINED):
        pipe.get(f"pipe:{n}")
    results = pipe.execute()
    expect(results == [str(n) for n in range(PIPELINED)], f"pipelined GETs returned {results!r}")

    check("MSET and MGET on hash-tagged keys (one slot)")
    tagged_slots = {cluster.keyslot(key) for key in TAGGED}
    expect(len(tagged_slots) == 1, f"hash-tagged keys map to slots {tagged_slots}")
    expect(cluster.mset(TAGGED) is True, "MSET of hash-tagged keys failed")
    names = list(TAGGED)
    got = cluster.mget(names)
    expect(got == [TAGGED[name] for name in names], f"MGET {names} returned {got!r}")
    got = cluster.mget_nonatomic(keys[:50])
    expect(got == [value_of(n) for n in range(50)], f"mget_nonatomic returned {got!r}")

    expected = set(keys) | {f"pipe:{n}" for n in range(PIPELINED)} | set(TAGGED)

    check("dbsize() summed over the primaries is the number of keys")
    size = cluster.dbsize(target_nodes=RedisCluster.PRIMARIES)
    expect(size == len(expected), f"dbsize() is {size}, {len(expected)} keys were written")
    sizes = {node.port: cluster.dbsize(target_nodes=node) for node in primaries}
    expect(all(sizes.values()), f"a primary holds no key: {sizes}")

    check("scan_iter and keys() over the primaries see every key exactly once")
    scanned = list(cluster.scan_iter(count=50))
    expect(
        len(scanned) == len(set(scanned)),
        f"scan_iter returned duplicates: {len(scanned)} keys, {len(set(scanned))} distinct",
    )
    missing = sorted(expected - set(scanned))
    extra = sorted(set(scanned) - expected)
    expect(not missing and not extra, f"scan_iter missed {missing[:10]}, found extra {extra[:10]}")
    listed = cluster.keys(target_nodes=RedisCluster.PRIMARIES)
    expect(sorted(listed) == sorted(expected), f"keys() returned {len(listed)} keys")

    check("a cross-slot MSET sent to any node is refused with CROSSSLOT")
    first, second = "py:0", "py:1"
    expect(
        cluster.keyslot(first) != cluster.keyslot(second), "py:0 and py:1 share a slot"
    )
    for node in cluster.get_nodes():
        try:
            reply = cluster.execute_command(
                "MSET", first, "changed", second, "changed", target_nodes=node
            )
        except ClusterCrossSlotError as error:
            print(f"  {node.port}: CROSSSLOT {error}", flush=True)
        except ResponseError as error:
            expect(False, f"cross-slot MSET on {node.port}: {type(error).__name__} {error}")
        else:
            expect(False, f"cross-slot MSET on {node.port} returned {reply!r}")
    got = cluster.mget_nonatomic([first, second])
    expect(got == [value_of(0), value_of(1)], f"a refused MSET changed the keys: {got!r}")

    # A node leading any shard is listed only as a master (clients keep one role per node), so
    # CLUSTER SLOTS may list no replica at all: every other node is asked instead. Of the nodes
    # that do not lead a key's slot, the REPLICAS - 1 followers of its shard serve the key after
    # READONLY; the others, like every node before READONLY, redirect to the slot's master.
    check("followers answer MOVED before READONLY and the value after it")
    for n, key in enumerate(keys[:20]):
        slot = cluster.keyslot(key)
        primary = cluster.get_node_from_key(key).port
        served = []
        for port in PORTS:
            if port == primary:
                continue
            connection = redis.Redis(host=HOST, port=port, decode_responses=True)
            try:
                reply = connection.get(key)
            except MovedError as error:
                expect(
                    (error.slot_id, error.port) == (slot, primary),
                    f"GET {key} (slot {slot}) on {port} MOVED to {error}, expected {primary}",
                )
            else:
                expect(False, f"GET {key} on non-leader {port} without READONLY: {reply!r}")
            expect(connection.execute_command("READONLY") is True, "READONLY did not return OK")
            try:
                got = read_eventually(connection, key, value_of(n))
            except MovedError as error:
                expect(
                    (error.slot_id, error.port) == (slot, primary),
                    f"READONLY GET {key} on {port} MOVED to {error}, expected {primary}",
                )
            else:
                expect(got == value_of(n), f"READONLY GET {key} on follower {port}: {got!r}")
                served.append(port)
            connection.close()
        expect(
            len(served) == REPLICAS - 1,
            f"{key}: READONLY served by {served}, expected {REPLICAS - 1} followers",
        )
    listed = sum(len(cluster.nodes_manager.slots_cache[slot]) - 1 for slot in slots)
    print(f"  CLUSTER SLOTS lists {listed} replicas for the {len(slots)} slots used", flush=True)

    check("RedisCluster(read_from_replicas=True) reads every key's value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        replicas = RedisCluster(
            host=HOST, port=PORTS[0], decode_responses=True, read_from_replicas=True
        )
    for n, key in enumerate(keys):
        got = read_eventually(replicas, key, value_of(n))
        expect(got == value_of(n), f"read_from_replicas GET {key}: {got!r}")
    replicas.close()
    cluster.close()
    print("cluster_mode.py: all checks passed", flush=True)


def read_eventually(client, key, want):
    """GET `key` until it returns `want` or REPLICA_LAG_MAX_S passes; returns the last reply."""
    deadline = time.monotonic() + REPLICA_LAG_MAX_S
    while True:
        got = client.get(key)
        if got == want or time.monotonic() >= deadline:
            return got
        time.sleep(0.05)


if __name__ == "__main__":
    main()
