"""Goal: redis-py's everyday commands work against cohort with `Redis(...)` (redis-py's default
protocol), `Redis(protocol=2)` and `Redis(protocol=3)`: strings, counters, hashes, lists, sets,
pipelines, CLIENT SETNAME, INFO, COMMAND COUNT and PING, with the Python values redis-py gives
for Redis 7.

Run by crates/server/tests/redis_py.rs with the node's port in COHORT_PORTS. Each check prints
what it checks; any failed assert exits non-zero.
"""

import os
import sys

import redis

PORT = int(os.environ["COHORT_PORTS"].split(",")[0])


def check(label):
    print(f"  check: {label}", flush=True)


def run(client, mode, protocol):
    prefix = f"{mode}:"

    check(f"[{mode}] the connection speaks RESP{protocol}")
    assert client.ping() is True
    hello = client.execute_command("HELLO")
    if isinstance(hello, list):
        hello = dict(zip(hello[::2], hello[1::2]))
    assert hello["proto"] == protocol, hello
    assert hello["server"] == "redis", hello

    check(f"[{mode}] SET / GET / INCR / DEL, nil as None, errors as ResponseError")
    assert client.set(prefix + "name", "cohort") is True
    assert client.get(prefix + "name") == "cohort"
    assert client.get(prefix + "missing") is None
    assert client.set(prefix + "name", "other", nx=True) is None
    assert client.incr(prefix + "counter") == 1
    assert client.incrby(prefix + "counter", 41) == 42
    assert client.decr(prefix + "counter") == 41
    assert client.mset({prefix + "a": "1", prefix + "b": "2"}) is True
    assert client.mget([prefix + "a", prefix + "b", prefix + "missing"]) == ["1", "2", None]
    try:
        client.incr(prefix + "name")
        raise AssertionError("INCR of a non-number succeeded")
    except redis.ResponseError as error:
        assert "not an integer" in str(error), error
    assert client.delete(prefix + "a", prefix + "b", prefix + "missing") == 2
    assert client.expire(prefix + "name", 100) is True
    assert 0 < client.ttl(prefix + "name") <= 100

    check(f"[{mode}] hashes: HSET mapping, HGET, HGETALL as a dict, HINCRBY, HDEL")
    assert client.hset(prefix + "hash", mapping={"a": "1", "b": "2"}) == 2
    assert client.hget(prefix + "hash", "a") == "1"
    assert client.hgetall(prefix + "hash") == {"a": "1", "b": "2"}
    assert client.hgetall(prefix + "missing") == {}
    assert client.hincrby(prefix + "hash", "a", 10) == 11
    assert client.hdel(prefix + "hash", "b", "missing") == 1
    assert client.hkeys(prefix + "hash") == ["a"]
    assert client.hexists(prefix + "hash", "a") is True

    check(f"[{mode}] lists: RPUSH, LPUSH, LRANGE, LPOP, LLEN, BLPOP timeout as None")
    assert client.rpush(prefix + "list", "x", "y", "z") == 3
    assert client.lpush(prefix + "list", "w") == 4
    assert client.lrange(prefix + "list", 0, -1) == ["w", "x", "y", "z"]
    assert client.lpop(prefix + "list") == "w"
    assert client.rpop(prefix + "list", 2) == ["z", "y"]
    assert client.llen(prefix + "list") == 1
    popped = client.blpop([prefix + "list"], timeout=1)
    assert list(popped) == [prefix + "list", "x"], popped
    assert client.blpop([prefix + "empty"], timeout=0.2) is None

    check(f"[{mode}] sets: SADD, SMEMBERS as a set, SISMEMBER, SREM, SCARD")
    assert client.sadd(prefix + "set", "a", "b", "c", "a") == 3
    assert client.smembers(prefix + "set") == {"a", "b", "c"}
    assert client.sismember(prefix + "set", "b") == 1
    assert client.sismember(prefix + "set", "z") == 0
    assert client.srem(prefix + "set", "b") == 1
    assert client.scard(prefix + "set") == 2

    check(f"[{mode}] a plain pipeline returns every reply in order, errors included")
    pipe = client.pipeline(transaction=False)
    pipe.set(prefix + "piped", "1").incr(prefix + "piped").get(prefix + "piped")
    pipe.hset(prefix + "piped-hash", "f", "v").hgetall(prefix + "piped-hash")
    assert pipe.execute() == [True, 2, "2", 1, {"f": "v"}]
    pipe = client.pipeline(transaction=False)
    pipe.set(prefix + "text", "abc").incr(prefix + "text").get(prefix + "text")
    replies = pipe.execute(raise_on_error=False)
    assert replies[0] is True and replies[2] == "abc", replies
    assert isinstance(replies[1], redis.ResponseError), replies

    check(f"[{mode}] a transaction pipeline runs as MULTI/EXEC")
    pipe = client.pipeline(transaction=True)
    pipe.incr(prefix + "tx").incr(prefix + "tx").lpush(prefix + "tx-list", "a")
    assert pipe.execute() == [1, 2, 1]

    check(f"[{mode}] CLIENT SETNAME / GETNAME and CLIENT ID")
    assert client.client_setname(f"redis-py-{mode}") is True
    assert client.client_getname() == f"redis-py-{mode}"
    assert isinstance(client.client_id(), int)

    check(f"[{mode}] INFO parses into a dict with Redis's server fields")
    info = client.info()
    assert isinstance(info, dict) and info, info
    assert str(info["redis_version"]).startswith("7."), info.get("redis_version")
    assert isinstance(info["connected_clients"], int) and info["connected_clients"] >= 1, info
    assert info["tcp_port"] == PORT, info.get("tcp_port")
    keyspace = client.info("keyspace")
    assert keyspace.get("db0", {}).get("keys", 0) >= 1, keyspace

    check(f"[{mode}] COMMAND COUNT is a positive integer; DBSIZE counts keys")
    count = client.command_count()
    assert isinstance(count, int) and count > 50, count
    assert client.dbsize() >= 5

    check(f"[{mode}] PING and ECHO")
    assert client.ping() is True
    assert client.echo("hello") == "hello"


def main():
    print(f"redis-py {redis.__version__} against port {PORT}", flush=True)
    default_protocol = int(redis.Redis(port=PORT).connection_pool.connection_kwargs.get(
        "protocol") or getattr(redis.utils, "DEFAULT_RESP_VERSION", 2))
    modes = [
        ("default", {}, default_protocol),
        ("resp2", {"protocol": 2}, 2),
        ("resp3", {"protocol": 3}, 3),
    ]
    for mode, options, protocol in modes:
        client = redis.Redis(port=PORT, decode_responses=True, socket_timeout=10, **options)
        run(client, mode, protocol)
        client.close()
    print("basics: all checks passed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
