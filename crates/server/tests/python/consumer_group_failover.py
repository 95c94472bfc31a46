"""Goal: a stream consumer group keeps its promises through a leader crash: every XADD that
was acknowledged reaches the group at least once (it ends acknowledged by a consumer or still
pending), and no entry is delivered again once a consumer's XACK for it was acknowledged.

Run by crates/server/tests/redis_py.rs against a three-node cluster whose client ports are in
COHORT_PORTS (comma-separated). A producer XADDs through the first node, two consumers read
with XREADGROUP and XACK through the other two; half-way the script prints a line "KILL" and
waits for a line "KILLED <port>" on standard input, by which time the Rust side has killed the
leader with SIGKILL; the producer goes on writing meanwhile. Every client moves on to the next node when a connection fails.
"""

import os
import sys
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

PORTS = [int(port) for port in os.environ["COHORT_PORTS"].split(",")]
STREAM = "orders"
GROUP = "billing"
ENTRIES = 400
RUN_SECONDS_MAX = 40
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.ResponseError)


def check(label):
    print(f"  check: {label}", flush=True)


def connect(port):
    # No silent retries inside redis-py: this script decides what a failed command means.
    return redis.Redis(port=port, decode_responses=True, socket_timeout=5,
                       socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))


class Roaming:
    """A connection that moves to the next port when a command fails."""

    def __init__(self, first_index):
        self.index = first_index
        self.client = connect(PORTS[self.index])

    def call(self, method, *args, **kwargs):
        """Runs one command; raises the error after switching ports if it failed."""
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except TRANSIENT:
            self.client.close()
            self.index = (self.index + 1) % len(PORTS)
            self.client = connect(PORTS[self.index])
            time.sleep(0.05)
            raise


class History:
    """What the clients observed, with a logical clock ordering replies and requests."""

    def __init__(self):
        self.lock = threading.Lock()
        self.clock = 0
        self.produced = []  # ids whose XADD was acknowledged
        self.uncertain_adds = 0
        self.acked_at = {}  # id -> clock when its XACK's reply arrived
        self.delivered = set()
        self.redelivered_after_ack = []

    def tick(self):
        with self.lock:
            self.clock += 1
            return self.clock

    def deliveries(self, entry_ids, requested_at):
        with self.lock:
            for entry_id in entry_ids:
                acked = self.acked_at.get(entry_id)
                if acked is not None and acked < requested_at:
                    self.redelivered_after_ack.append(entry_id)
                self.delivered.add(entry_id)

    def acked(self, entry_ids):
        with self.lock:
            self.clock += 1
            for entry_id in entry_ids:
                self.acked_at.setdefault(entry_id, self.clock)


def acknowledge(connection, history, entry_ids, deadline):
    """XACK until a reply says it applied: XACK is idempotent, so a retry is safe, and an ack
    whose outcome is unknown would make the final accounting wrong."""
    while True:
        try:
            connection.call("xack", STREAM, GROUP, *entry_ids)
            history.acked(entry_ids)
            return
        except TRANSIENT:
            if time.monotonic() > deadline:
                raise


def produce(history, kill_requested, killed, deadline):
    connection = Roaming(0)
    for n in range(ENTRIES):
        # Ask for the kill half-way and keep writing, so XADDs are in flight when it lands;
        # wait for it at three quarters at the latest, so it does land mid-way.
        if n == ENTRIES // 2:
            kill_requested.set()
        if n == ENTRIES * 3 // 4:
            assert killed.wait(timeout=30), "the leader was not killed"
        while True:
            try:
                entry_id = connection.call("xadd", STREAM, {"n": str(n)})
                with history.lock:
                    history.produced.append(entry_id)
                break
            except TRANSIENT:
                # The entry may or may not have been added: not counted as acknowledged.
                with history.lock:
                    history.uncertain_adds += 1
                assert time.monotonic() < deadline, "producer made no progress"


def consume(name, first_index, history, stop, deadline):
    connection = Roaming(first_index)
    while not stop.is_set():
        requested_at = history.tick()
        try:
            reply = connection.call("xreadgroup", GROUP, name, {STREAM: ">"}, count=20,
                                    block=200)
        except TRANSIENT:
            # If it was applied, its entries are pending under `name`: recovered at the end.
            assert time.monotonic() < deadline, f"{name} made no progress"
            continue
        entry_ids = [entry_id for _, entries in reply for entry_id, _ in entries]
        if entry_ids:
            history.deliveries(entry_ids, requested_at)
            acknowledge(connection, history, entry_ids, deadline)


def recover(history, deadline):
    """Claims whatever is still pending (deliveries whose reply was lost) and acknowledges it."""
    connection = Roaming(1)
    while True:
        requested_at = history.tick()
        try:
            reply = connection.call("xautoclaim", STREAM, GROUP, "recovery", 0,
                                    start_id="0-0", count=100)
        except TRANSIENT:
            assert time.monotonic() < deadline, "recovery made no progress"
            continue
        entry_ids = [entry_id for entry_id, _ in reply[1]]
        if not entry_ids:
            return
        history.deliveries(entry_ids, requested_at)
        acknowledge(connection, history, entry_ids, deadline)


def wait_until_drained(deadline):
    """Until the group has been handed every entry of the stream."""
    connection = Roaming(2)
    while True:
        try:
            last = connection.call("xinfo_stream", STREAM)["last-generated-id"]
            group = connection.call("xinfo_groups", STREAM)[0]
            if group["last-delivered-id"] == last:
                return
        except TRANSIENT:
            pass
        assert time.monotonic() < deadline, "the consumers never caught up"
        time.sleep(0.1)


def guarded(failures, target):
    """`target` run so that an exception in its thread fails the script, not just the thread."""
    def run(*args):
        try:
            target(*args)
        except BaseException as error:  # noqa: BLE001 - reported and re-checked by main
            failures.append(f"{target.__name__}: {error!r}")
            raise
    return run


def main():
    print(f"redis-py {redis.__version__} against ports {PORTS}", flush=True)
    deadline = time.monotonic() + RUN_SECONDS_MAX
    setup = Roaming(0)
    assert setup.call("xgroup_create", STREAM, GROUP, id="0", mkstream=True) is True

    history = History()
    kill_requested = threading.Event()
    killed = threading.Event()
    stop = threading.Event()
    failures = []
    producer = threading.Thread(target=guarded(failures, produce), daemon=True,
                                args=(history, kill_requested, killed, deadline))
    consumers = [
        threading.Thread(target=guarded(failures, consume), daemon=True,
                         args=(f"consumer-{index}", index, history, stop, deadline))
        for index in (1, 2)
    ]
    for thread in [producer, *consumers]:
        thread.start()

    check(f"the producer adds {ENTRIES // 2} entries, then the leader is killed (-9)")
    assert kill_requested.wait(timeout=RUN_SECONDS_MAX), "the producer stalled before the kill"
    print("KILL", flush=True)
    answer = sys.stdin.readline().split()
    assert answer[:1] == ["KILLED"], f"expected KILLED <port>, got {answer!r}"
    print(f"  leader on port {answer[1]} killed after {len(history.produced)} XADDs",
          flush=True)
    killed.set()

    check("the producer adds the rest, through the surviving nodes")
    producer.join(timeout=RUN_SECONDS_MAX)
    assert not producer.is_alive(), "the producer did not finish"
    wait_until_drained(deadline)
    stop.set()
    for consumer in consumers:
        consumer.join(timeout=RUN_SECONDS_MAX)
        assert not consumer.is_alive(), "a consumer did not stop"

    assert not failures, failures

    check("entries whose delivery reply was lost are claimed from the pending list")
    recover(history, deadline)
    final = Roaming(1)
    while True:
        try:
            pending = final.call("xpending_range", STREAM, GROUP, "-", "+", ENTRIES * 2)
            break
        except TRANSIENT:
            assert time.monotonic() < deadline, "XPENDING never answered"
    pending_ids = {row["message_id"] for row in pending}

    produced = history.produced
    print(f"  {len(produced)} XADDs acknowledged, {history.uncertain_adds} uncertain; "
          f"{len(history.acked_at)} entries acknowledged by consumers, "
          f"{len(pending_ids)} still pending", flush=True)
    check("every acknowledged XADD reached the group (acknowledged or pending)")
    assert len(produced) == ENTRIES, (len(produced), ENTRIES)
    missing = [entry_id for entry_id in produced
               if entry_id not in history.acked_at and entry_id not in pending_ids]
    assert not missing, f"acknowledged XADDs never delivered: {missing[:10]}"

    check("nothing was delivered again after its XACK was acknowledged")
    assert not history.redelivered_after_ack, history.redelivered_after_ack[:10]

    check("the stream holds every acknowledged XADD")
    stored = set()
    while True:
        try:
            stored = {entry_id for entry_id, _ in final.call("xrange", STREAM)}
            break
        except TRANSIENT:
            assert time.monotonic() < deadline, "XRANGE never answered"
    lost = [entry_id for entry_id in produced if entry_id not in stored]
    assert not lost, f"acknowledged XADDs lost: {lost[:10]}"
    print("consumer_group_failover: all checks passed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
