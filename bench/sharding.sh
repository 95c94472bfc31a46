#!/usr/bin/env bash
# Sharded clusters: what idle groups cost, how durable throughput scales with
# shards and nodes, and how fast and how evenly a sharded cluster elects its
# leaders, on this machine.
#
# Run by hand, as root, from anywhere: `bash bench/sharding.sh` (not part of CI;
# it takes about 15 minutes). In one run it:
#   1. installs redis-server and redis-tools if missing (and python3, which the
#      election probe below is written in);
#   2. builds cohort in release from the committed HEAD (exported to
#      target/bench-source, built into target/bench, as bench/run.sh does);
#      BENCH_SOURCE=tree builds the working tree instead;
#   3. idle cost: starts 3 nodes with --shards IDLE_SHARDS --replicas 3 (every node
#      holds a replica of every shard), 3 nodes with --shards 1, and 1 node with
#      --shards IDLE_SHARDS --replicas 1; once every shard has a leader, waits
#      IDLE_SETTLE_SECONDS, then takes each node's CPU time (utime + stime from
#      /proc/PID/stat) over IDLE_SECONDS without any client;
#   4. throughput: redis-benchmark -t set,get -c 50 (and -P 16) against (a) 3 nodes,
#      1 shard, plain mode, client on the leader; (b) 3 nodes, 6 shards, cluster
#      mode, redis-benchmark --cluster; (c) 5 nodes, 10 shards, cluster mode,
#      --cluster; all with --fsync always, REPEATS runs each, medians;
#   5. elections: starts a fresh 5-node 10-shard cluster REPEATS times and times,
#      from the first node's start, until every node's CLUSTER INFO says
#      cluster_state:ok and until a SET to every slot range (sent to the master
#      CLUSTER SLOTS names) is accepted; then counts leaders per node (INFO cohort)
#      once leadership has not moved for STABLE_SECONDS;
#   6. rewrites its own section of docs/BENCHMARKS.md (between the markers
#      below), keeping every other section of that file.
# Everything listens on 127.0.0.1 only; every process started here is stopped
# on exit. Raw outputs are kept in bench/out/sharding/ (ignored by git; note that
# bench/run.sh empties bench/out/ when it starts).
#
# Knobs (environment): REPEATS (3), REQUESTS_PLAIN (50000), REQUESTS_PIPELINED
# (200000), IDLE_SHARDS (1000), IDLE_SETTLE_SECONDS (30), IDLE_SECONDS (60),
# STABLE_SECONDS (6), ELECT_TIMEOUT_SECONDS (120), PORT_BASE (7800),
# BENCH_SOURCE (head | tree), SECTION_ONLY (1: measure nothing, rewrite the section
# from the raw outputs of the last run, e.g. after editing its prose).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPEATS=${REPEATS:-3}
REQUESTS_PLAIN=${REQUESTS_PLAIN:-50000}
REQUESTS_PIPELINED=${REQUESTS_PIPELINED:-200000}
IDLE_SHARDS=${IDLE_SHARDS:-1000}
IDLE_SETTLE_SECONDS=${IDLE_SETTLE_SECONDS:-30}
IDLE_SECONDS=${IDLE_SECONDS:-60}
STABLE_SECONDS=${STABLE_SECONDS:-6}
ELECT_TIMEOUT_SECONDS=${ELECT_TIMEOUT_SECONDS:-120}
PORT_BASE=${PORT_BASE:-7800}
BENCH_SOURCE=${BENCH_SOURCE:-head}
TESTS="set,get"
CLIENTS=50
REPLICAS=3
IDLE_TARGET_PERCENT=2
ELECT_NODES=5
ELECT_SHARDS=10
MARK_BEGIN='<!-- bench:sharding.sh begin -->'
MARK_END='<!-- bench:sharding.sh end -->'
DOC="$ROOT/docs/BENCHMARKS.md"
OUT="$ROOT/bench/out/sharding"

# Data directories live on the real disk (not tmpfs), so fsync costs what it costs.
WORK=$(mktemp -d /var/tmp/cohort-sharding.XXXXXX)
PIDS=()

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Stops every process this script started: SIGTERM, then SIGKILL after 10 s.
cleanup() {
    local status=$?
    local pid
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 100); do
        local alive=0
        for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [[ $alive == 0 ]] && break
        sleep 0.1
    done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops the given processes (started by this script) and waits for them.
stop() {
    local pid
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    local kept=()
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        [[ " $* " == *" $pid "* ]] || kept+=("$pid")
    done
    PIDS=(${kept[@]+"${kept[@]}"})
}

# Starts a command in the background with its output in a log; sets LAST_PID.
spawn() {
    local log_file=$1
    shift
    "$@" >"$log_file" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    LAST_PID=$pid
}

# Waits until the RESP server on a port answers PING.
wait_ping() {
    local port=$1
    for _ in $(seq 300); do
        [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && return 0
        sleep 0.1
    done
    log "nothing answers PING on port $port"
    return 1
}

# Prints the port, among those given, whose INFO cohort says role:leader.
wait_leader() {
    local port
    for _ in $(seq 300); do
        for port in "$@"; do
            if redis-cli -p "$port" info cohort 2>/dev/null | tr -d '\r' | grep -qx 'role:leader'
            then
                echo "$port"
                return 0
            fi
        done
        sleep 0.1
    done
    log "no leader among ports $*"
    return 1
}

# Median of the numbers on standard input (mean of the middle two if even).
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a" }
        else if (NR % 2) { print v[(NR + 1) / 2] }
        else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'
}

# a / b to two decimals, or n/a.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a == a + 0) printf "%.2f", a / b; else printf "n/a" }'; }
# Rounds to an integer with thousands separators.
number() { awk -v a="$1" 'BEGIN { if (a != a + 0) { print a; exit } s = sprintf("%.0f", a);
    while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]([,]|$)/, ",&", s); print s }'; }
# Two decimals, or the text as it is.
decimals() { awk -v a="$1" 'BEGIN { if (a != a + 0) print a; else printf "%.2f", a }'; }
# Milliseconds to seconds with two decimals.
seconds() { awk -v a="$1" 'BEGIN { if (a != a + 0) print a; else printf "%.2f", a / 1000 }'; }

# One field of every key=value line in the files matching a glob, one per line.
fields() {
    local pattern=$1 field=$2 file
    for file in $pattern; do
        [[ -s $file ]] || continue
        tr ' ' '\n' <"$file" | awk -F= -v f="$field" '$1 == f { print $2 }'
    done
}
field_median() { fields "$1" "$2" | median; }
field_max() { fields "$1" "$2" | sort -g | tail -1; }
# The values of one field, comma-separated (", "), in file order.
field_list() { fields "$1" "$2" | tr '\n' ' ' | sed 's/ $//; s/ /, /g'; }

# ---------------------------------------------------------------------------
# 1. Packages.
install_packages() {
    local missing=0
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null &&
        command -v redis-benchmark >/dev/null && command -v python3 >/dev/null || missing=1
    if [[ $missing == 1 ]]; then
        log "installing redis-server redis-tools python3"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools python3
    fi
}

# ---------------------------------------------------------------------------
# 2. Build; sets COHORT and COHORT_VERSION.
build() {
    local source target
    case $BENCH_SOURCE in
        head)
            source="$ROOT/target/bench-source"
            target="$ROOT/target/bench"
            rm -rf "$source"
            mkdir -p "$source"
            git -C "$ROOT" archive HEAD | tar -x -C "$source"
            COHORT_VERSION="$(git -C "$ROOT" rev-parse --short HEAD) (committed HEAD)"
            ;;
        tree)
            source="$ROOT"
            target="$ROOT/target"
            COHORT_VERSION="$(git -C "$ROOT" rev-parse --short HEAD)"
            git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock ||
                COHORT_VERSION+=" plus uncommitted changes in the working tree"
            ;;
        *)
            log "BENCH_SOURCE must be head or tree"
            return 1
            ;;
    esac
    log "building cohort (release) from $source"
    (cd "$source" && CARGO_TARGET_DIR="$target" cargo build --release -p server)
    COHORT="$target/release/cohort"
}

describe_machine() {
    local device
    device=$(findmnt -n -o SOURCE --target /var/tmp)
    {
        echo "cpu_model=$(lscpu | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2; exit }')"
        echo "cores=$(nproc)"
        echo "memory=$(free -h | awk '/^Mem:/ { print $2 }')"
        echo "kernel=$(uname -sr)"
        echo "disk=$device ($(findmnt -n -o FSTYPE --target /var/tmp)), rotational flag \
$(lsblk -dn -o ROTA "$device" 2>/dev/null | tr -d ' ' || echo '?')"
        # Synchronous 4 KiB writes per second: what one fsync costs on this disk.
        echo "dsync_writes=$(dd if=/dev/zero of="$WORK/dsync" bs=4k count=500 oflag=dsync 2>&1 |
            awk '/copied/ { s = $(NF-3); printf "%.0f/s, %.2f ms each", 500 / s, s * 2 }')"
        echo "clock_ticks=$(getconf CLK_TCK)"
    } >"$OUT/machine.txt"
    rm -f "$WORK/dsync"
}

machine() { awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); print }' "$OUT/machine.txt"; }

# ---------------------------------------------------------------------------
# The election probe (python3, standard library only). Modes:
#   keys FILE   writes one key per hash slot ("slot key" lines) for the probe;
#   wait --ports P,Q,… --start EPOCH --keys FILE --shards N [--stable S] [--timeout S]
#               times, from EPOCH, (1) until every node's CLUSTER INFO says
#               cluster_state:ok, (2) until one pass of SETs, one per slot range
#               CLUSTER SLOTS lists, each sent (pipelined per node) to the master it
#               names, is all +OK; then, with --stable, (3) until the leader of
#               every shard (from INFO cohort: each shard's role=leader line with
#               the highest term) has not changed for S seconds. Prints one line of
#               name=value pairs; exits 1 on timeout.
write_probe() {
    cat >"$WORK/probe.py" <<'PYTHON'
import socket, sys, time

def crc16(data, table=[]):
    if not table:
        for byte in range(256):
            crc = byte << 8
            for _ in range(8):
                crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            table.append(crc & 0xFFFF)
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc

class Error(str):
    pass

class Conn:
    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, *commands):
        out = []
        for command in commands:
            words = [w if isinstance(w, bytes) else str(w).encode() for w in command]
            out.append(b"*%d\r\n" % len(words))
            for word in words:
                out.append(b"$%d\r\n%s\r\n" % (len(word), word))
        self.sock.sendall(b"".join(out))

    def read(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return Error(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ConnectionError("unexpected reply %r" % line)

    def call(self, *command):
        self.send(command)
        return self.read()

conns = {}

def conn(port):
    if port not in conns:
        conns[port] = Conn(port, 6.0)
    return conns[port]

def call(port, *command):
    try:
        return conn(port).call(*command)
    except (OSError, ConnectionError):
        conns.pop(port, None)
        return None

def write_keys(path):
    keys, n = {}, 0
    while len(keys) < 16384:
        key = b"probe:%d" % n
        keys.setdefault(crc16(key) % 16384, key)
        n += 1
    with open(path, "w") as f:
        for slot in range(16384):
            f.write("%d %s\n" % (slot, keys[slot].decode()))

def leaders(ports):
    """shard -> leader node id, from each node's INFO cohort."""
    best = {}
    for port in ports:
        info = call(port, "INFO", "cohort")
        if not isinstance(info, bytes):
            continue
        node = None
        for line in info.decode().split("\r\n"):
            if line.startswith("node_id:"):
                node = int(line.split(":", 1)[1])
            elif line.startswith("shard_") and ":" in line:
                name, rest = line.split(":", 1)
                fields = dict(f.split("=", 1) for f in rest.split(",") if "=" in f)
                if fields.get("role") == "leader" and node is not None:
                    term = int(fields.get("term", 0))
                    shard = int(name[len("shard_"):])
                    if shard not in best or best[shard][0] < term:
                        best[shard] = (term, node)
    return {shard: node for shard, (term, node) in best.items()}

def per_node(mapping, nodes):
    counts = {node: 0 for node in nodes}
    for node in mapping.values():
        counts[node] = counts.get(node, 0) + 1
    return counts

def main():
    if sys.argv[1] == "keys":
        write_keys(sys.argv[2])
        return 0
    args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    ports = [int(p) for p in args["--ports"].split(",")]
    start = float(args["--start"])
    stable = float(args.get("--stable", "0"))
    shards = int(args["--shards"])
    deadline = time.time() + float(args.get("--timeout", "120"))
    slot_key = {}
    with open(args["--keys"]) as f:
        for line in f:
            slot, key = line.split()
            slot_key[int(slot)] = key.encode()
    ms = lambda: round((time.time() - start) * 1000)
    result = {}

    def finish(code):
        print(" ".join("%s=%s" % item for item in result.items()))
        return code

    # (1) Every node's CLUSTER INFO says cluster_state:ok.
    while True:
        states = [call(port, "CLUSTER", "INFO") for port in ports]
        if all(isinstance(s, bytes) and b"cluster_state:ok" in s for s in states):
            result["state_ok_ms"] = ms()
            break
        if time.time() > deadline:
            result["timeout"] = "state"
            return finish(1)
        time.sleep(0.02)

    # (2) A SET to every slot range is accepted by the master CLUSTER SLOTS names.
    passes = 0
    while True:
        passes += 1
        slots = None
        for port in ports:
            slots = call(port, "CLUSTER", "SLOTS")
            if isinstance(slots, list) and slots:
                break
        ok = isinstance(slots, list) and sum(e[1] - e[0] + 1 for e in slots) == 16384
        if ok:
            by_port = {}
            for entry in slots:
                by_port.setdefault(int(entry[2][1]), []).append(entry[0])
            for port, starts in by_port.items():
                try:
                    c = conn(port)
                    c.send(*[(b"SET", slot_key[s], b"probe") for s in starts])
                    replies = [c.read() for _ in starts]
                except (OSError, ConnectionError):
                    conns.pop(port, None)
                    ok = False
                    continue
                ok = ok and all(r == "OK" for r in replies)
        if ok:
            result["writable_ms"] = ms()
            result["ranges"] = len(slots)
            result["passes"] = passes
            break
        if time.time() > deadline:
            result["timeout"] = "writable"
            return finish(1)
        time.sleep(0.02)

    nodes = []
    for port in ports:
        info = call(port, "INFO", "cohort")
        if isinstance(info, bytes) and b"node_id:" in info:
            nodes.append(int(info.split(b"node_id:")[1].split(b"\r")[0]))
    nodes.sort()
    now = leaders(ports)
    result["shards"] = len(now)
    result["leaders_at_writable"] = "/".join(str(c) for _, c in sorted(per_node(now, nodes).items()))
    if stable <= 0:
        return finish(0)

    # (3) Leadership has not moved for `stable` seconds.
    last, changed_at, changes = now, time.time(), 0
    while True:
        time.sleep(0.2)
        now = leaders(ports)
        if now != last:
            changes += sum(1 for s in set(now) | set(last) if now.get(s) != last.get(s))
            last, changed_at = now, time.time()
        if len(now) == shards and time.time() - changed_at >= stable:
            break
        if time.time() > deadline:
            result["timeout"] = "stable"
            break
    counts = per_node(now, nodes)
    result["stable_ms"] = round((changed_at - start) * 1000)
    result["leader_changes"] = changes
    result["shards_led"] = len(now)
    result["leaders"] = "/".join(str(c) for _, c in sorted(counts.items()))
    result["max_leaders"] = max(counts.values())
    result["min_leaders"] = min(counts.values())
    return finish(1 if "timeout" in result else 0)

sys.exit(main())
PYTHON
    python3 "$WORK/probe.py" keys "$WORK/slot-keys.txt"
}

# ---------------------------------------------------------------------------
# 3. Clusters. Starts COUNT nodes on ports P..P+COUNT-1 (peers on +10000); sets
# NODE_PIDS, NODE_PORTS and START (epoch seconds just before the first node
# starts). Node 1's exact command line goes to $OUT/cmd.<name>.txt.
cohort_nodes() {
    local name=$1 count=$2 shards=$3 replicas=$4 enabled=$5 port=$6 id members=""
    for id in $(seq "$count"); do
        members="${members:+$members,}$id=127.0.0.1:$((port + 10000 + id - 1))"
    done
    NODE_PIDS=()
    NODE_PORTS=()
    START=$(date +%s.%N)
    for id in $(seq "$count"); do
        local command=("$COHORT" serve --node-id "$id" --bind 127.0.0.1
            --port $((port + id - 1)) --peer-port $((port + 10000 + id - 1))
            --data-dir "$WORK/$name/node-$id" --initial-cluster "$members" --fsync always
            --shards "$shards" --replicas "$replicas" --cluster-enabled "$enabled")
        [[ $id == 1 ]] && echo "${command[*]/#$ROOT\//}" >"$OUT/cmd.$name.txt"
        spawn "$OUT/$name.node-$id.log" "${command[@]}"
        NODE_PIDS+=("$LAST_PID")
        NODE_PORTS+=($((port + id - 1)))
    done
    for port in "${NODE_PORTS[@]}"; do wait_ping "$port"; done
}

ports_csv() { local IFS=,; echo "$*"; }

# Waits until every shard has a leader (a shard_N line with role=leader on some node;
# an unsharded cluster lists no shard lines, its node says role:leader).
wait_all_leaders() {
    local shards=$1 led
    shift
    if [[ $shards == 1 ]]; then
        wait_leader "$@" >/dev/null
        return
    fi
    for _ in $(seq 1200); do
        led=$(for port in "$@"; do redis-cli -p "$port" info cohort 2>/dev/null; done | tr -d '\r' |
            { grep '^shard_.*role=leader' || true; } | cut -d: -f1 | sort -u | wc -l)
        [[ $led -ge $shards ]] && return 0
        sleep 0.1
    done
    log "only $led of $shards shards have a leader"
    return 1
}

# CPU time (utime + stime, clock ticks) of a process.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# The same, summed over the nodes of the running cluster.
nodes_cpu_ticks() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do cpu_ticks "$pid"; done | awk '{ s += $1 } END { print s + 0 }'
}

# Idle cost of one configuration: $OUT/idle.<name>.txt, one line per node.
idle_run() {
    local name=$1 count=$2 shards=$3 replicas=$4 port=$5
    log "idle: $count node(s), --shards $shards --replicas $replicas"
    cohort_nodes "$name" "$count" "$shards" "$replicas" no "$port"
    wait_all_leaders "$shards" "${NODE_PORTS[@]}"
    log "every shard has a leader after $(awk -v s="$START" -v n="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", n - s }') s; settling for $IDLE_SETTLE_SECONDS s"
    sleep "$IDLE_SETTLE_SECONDS"
    local before=() i t0 t1
    t0=$(date +%s.%N)
    for i in "${!NODE_PIDS[@]}"; do before+=("$(cpu_ticks "${NODE_PIDS[$i]}")"); done
    log "measuring CPU for $IDLE_SECONDS s"
    sleep "$IDLE_SECONDS"
    t1=$(date +%s.%N)
    : >"$OUT/idle.$name.txt"
    for i in "${!NODE_PIDS[@]}"; do
        local pid=${NODE_PIDS[$i]} info
        info=$(redis-cli -p "${NODE_PORTS[$i]}" info cohort | tr -d '\r')
        awk -v a="${before[$i]}" -v b="$(cpu_ticks "$pid")" -v hz="$(machine clock_ticks)" \
            -v t0="$t0" -v t1="$t1" -v node=$((i + 1)) \
            -v hosted="$(grep -c '^shard_' <<<"$info")" \
            -v led="$(grep -c '^shard_.*role=leader' <<<"$info")" \
            -v hib="$(grep -c '^shard_.*hibernating=1' <<<"$info")" \
            -v role="$(awk -F: '$1 == "role" { print $2 }' <<<"$info")" \
            -v rss="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")" \
            -v threads="$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")" \
            'BEGIN { # An unsharded node lists no shard lines: one group, no hibernation figure.
                if (hosted == 0) { hosted = 1; led = (role == "leader"); hib = "n/a" }
                printf "node=%d cpu_percent=%.3f hosted=%d leading=%d hibernating=%s rss_kib=%d threads=%d\n",
                node, (b - a) / hz / (t1 - t0) * 100, hosted, led, hib, rss, threads }' \
            >>"$OUT/idle.$name.txt"
    done
    stop "${NODE_PIDS[@]}"
    rm -rf "${WORK:?}/$name"
}

# Highest commit index of every shard over the nodes: "shard commit" lines.
shard_commits() {
    local port
    for port in "$@"; do redis-cli -p "$port" info cohort; done | tr -d '\r' |
        awk -F'[:,=]' '/^shard_/ { s = substr($1, 7); for (i = 2; i < NF; i += 2) if ($i == "commit" && $(i + 1) > c[s]) c[s] = $(i + 1) }
            END { for (s in c) print s, c[s] }' | sort -n
}

# redis-benchmark against one target, with and without pipelining, REPEATS times.
# Writes $OUT/rb.<target>.<plain|pipelined>.<repeat>.csv (and .err); the exact
# command lines go to $OUT/rbcmd.<target>.<shape>.txt.
redis_benchmark_all() {
    local target=$1 port=$2 cluster=$3 repeat shape
    for shape in plain pipelined; do
        local arguments=(-h 127.0.0.1 -p "$port")
        [[ $cluster == yes ]] && arguments+=(--cluster)
        arguments+=(-t "$TESTS" -c "$CLIENTS")
        local requests=$REQUESTS_PLAIN
        [[ $shape == pipelined ]] && requests=$REQUESTS_PIPELINED
        arguments+=(-n "$requests")
        [[ $shape == pipelined ]] && arguments+=(-P 16)
        arguments+=(--csv)
        echo "redis-benchmark ${arguments[*]}" >"$OUT/rbcmd.$target.$shape.txt"
        local ticks_before wall_before
        ticks_before=$(nodes_cpu_ticks)
        wall_before=$(date +%s.%N)
        for repeat in $(seq "$REPEATS"); do
            log "redis-benchmark $target $shape run $repeat/$REPEATS"
            if ! redis-benchmark "${arguments[@]}" >"$OUT/rb.$target.$shape.$repeat.csv" \
                2>"$OUT/rb.$target.$shape.$repeat.err"; then
                log "redis-benchmark failed: $(tr '\r' '\n' <"$OUT/rb.$target.$shape.$repeat.err" |
                    grep -v '^$' | tail -1)"
            fi
        done
        # The nodes' CPU time over this shape's runs (redis-benchmark's own is not counted).
        awk -v a="$ticks_before" -v b="$(nodes_cpu_ticks)" -v hz="$(machine clock_ticks)" \
            -v t0="$wall_before" -v t1="$(date +%s.%N)" -v requests=$((REPEATS * requests * $(tr ',' '\n' <<<"$TESTS" | wc -l))) \
            'BEGIN { printf "cpu_seconds=%.2f wall_seconds=%.2f requests=%d\n",
                (b - a) / hz, t1 - t0, requests }' >"$OUT/cpu.$target.$shape.txt"
    done
}

# Median requests/s of one test (SET, GET) for a target and shape.
rb_median() {
    local target=$1 shape=$2 test=$3
    cat "$OUT"/rb."$target"."$shape".*.csv 2>/dev/null | tr -d '"' |
        awk -F, -v t="$test" '$1 == t { print $2 }' | median
}
rb_list() {
    local target=$1 shape=$2 test=$3
    cat "$OUT"/rb."$target"."$shape".*.csv 2>/dev/null | tr -d '"' |
        awk -F, -v t="$test" '$1 == t { printf "%.0f\n", $2 }' | tr '\n' ' ' | sed 's/ $//; s/ /, /g'
}
# redis-benchmark runs that exited non-zero or reported errors.
rb_failures() {
    local file count=0
    for file in "$OUT"/rb."$1".*.err; do
        [[ -e $file ]] || continue
        tr '\r' '\n' <"$file" | grep -qiE 'error|fail' && count=$((count + 1))
    done
    echo "$count"
}

# One throughput target on a fresh cluster.
throughput_run() {
    local target=$1 count=$2 shards=$3 enabled=$4 port=$5 bench_port
    log "throughput: $target ($count nodes, $shards shards, cluster mode $enabled)"
    cohort_nodes "$target" "$count" "$shards" "$REPLICAS" "$enabled" "$port"
    if [[ $enabled == yes ]]; then
        python3 "$WORK/probe.py" wait --ports "$(ports_csv "${NODE_PORTS[@]}")" --start "$START" \
            --keys "$WORK/slot-keys.txt" --shards "$shards" --stable "$STABLE_SECONDS" \
            --timeout "$ELECT_TIMEOUT_SECONDS" >"$OUT/ready.$target.txt"
        bench_port=$port
    else
        bench_port=$(wait_leader "${NODE_PORTS[@]}")
        echo "leader_node=$((bench_port - port + 1))" >"$OUT/ready.$target.txt"
    fi
    shard_commits "${NODE_PORTS[@]}" >"$OUT/commits.$target.before"
    redis_benchmark_all "$target" "$bench_port" "$enabled"
    shard_commits "${NODE_PORTS[@]}" >"$OUT/commits.$target.after"
    # Shards whose log grew by at least 1000 entries during the runs took the load.
    awk 'NR == FNR { before[$1] = $2; next } { n++; if ($2 - before[$1] >= 1000) w++ }
        END { print "shards_written=" w + 0 " shards=" n + 0 }' \
        "$OUT/commits.$target.before" "$OUT/commits.$target.after" >"$OUT/written.$target.txt"
    stop "${NODE_PIDS[@]}"
    rm -rf "${WORK:?}/$target"
}

# ---------------------------------------------------------------------------
main() {
    cd "$ROOT"
    if [[ ${SECTION_ONLY:-0} == 1 ]]; then
        COHORT_VERSION=$(cat "$OUT/version")
        # The knobs the measurements were taken with, not the current environment's.
        source "$OUT/knobs"
        section >"$OUT/section.md"
        splice "$OUT/section.md"
        log "rewrote the section of $DOC from $OUT"
        return 0
    fi
    rm -rf "$OUT"
    mkdir -p "$OUT"
    install_packages
    build
    echo "$COHORT_VERSION" >"$OUT/version"
    local knob
    for knob in REPEATS REQUESTS_PLAIN REQUESTS_PIPELINED IDLE_SHARDS IDLE_SETTLE_SECONDS \
        IDLE_SECONDS STABLE_SECONDS; do
        echo "$knob=${!knob}"
    done >"$OUT/knobs"
    describe_machine
    write_probe
    date -u '+%Y-%m-%d %H:%M UTC' >"$OUT/date"
    cut -d' ' -f1-3 /proc/loadavg >"$OUT/load_start"
    local began=$SECONDS

    local port=$PORT_BASE
    idle_run "idle-3x$IDLE_SHARDS" 3 "$IDLE_SHARDS" 3 "$port"
    idle_run "idle-3x1" 3 1 3 "$port"
    idle_run "idle-1x$IDLE_SHARDS" 1 "$IDLE_SHARDS" 1 "$port"

    throughput_run plain-3n1s 3 1 no "$port"
    throughput_run cluster-3n6s 3 6 yes "$port"
    throughput_run cluster-5n10s 5 10 yes "$port"

    local repeat
    for repeat in $(seq "$REPEATS"); do
        log "elections: $ELECT_NODES nodes, $ELECT_SHARDS shards, run $repeat/$REPEATS"
        cohort_nodes "elect-$repeat" "$ELECT_NODES" "$ELECT_SHARDS" "$REPLICAS" yes "$port"
        python3 "$WORK/probe.py" wait --ports "$(ports_csv "${NODE_PORTS[@]}")" --start "$START" \
            --keys "$WORK/slot-keys.txt" --shards "$ELECT_SHARDS" --stable "$STABLE_SECONDS" \
            --timeout "$ELECT_TIMEOUT_SECONDS" >"$OUT/elect.$repeat.txt" ||
            log "the election probe timed out: $(cat "$OUT/elect.$repeat.txt")"
        log "$(cat "$OUT/elect.$repeat.txt")"
        stop "${NODE_PIDS[@]}"
        rm -rf "${WORK:?}/elect-$repeat"
    done

    cut -d' ' -f1-3 /proc/loadavg >"$OUT/load_end"
    echo $(((SECONDS - began + 30) / 60)) >"$OUT/minutes"
    log "writing $DOC"
    section >"$OUT/section.md"
    splice "$OUT/section.md"
    log "done"
}

# ---------------------------------------------------------------------------
# 6. The generated section.
idle_row() {
    local label=$1 name=$2 file="$OUT/idle.$2.txt"
    echo "| $label | $(field_list "$file" hosted) | $(decimals "$(field_median "$file" cpu_percent)") |" \
        "$(fields "$file" cpu_percent | awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $1 }') |" \
        "$(field_list "$file" hibernating) | $(number "$(field_median "$file" rss_kib)") |" \
        "$(field_median "$file" threads) |"
}

throughput_row() {
    local label=$1 target=$2 shape=$3 set get
    set=$(rb_median "$target" "$shape" SET)
    get=$(rb_median "$target" "$shape" GET)
    echo "| $label | $(number "$set") ($(rb_list "$target" "$shape" SET)) |" \
        "$(ratio "$set" "$(rb_median plain-3n1s "$shape" SET)")× |" \
        "$(number "$get") ($(rb_list "$target" "$shape" GET)) |" \
        "$(ratio "$get" "$(rb_median plain-3n1s "$shape" GET)")× |" \
        "$(awk -v c="$(fields "$OUT/cpu.$target.$shape.txt" cpu_seconds)" \
            -v w="$(fields "$OUT/cpu.$target.$shape.txt" wall_seconds)" \
            -v r="$(fields "$OUT/cpu.$target.$shape.txt" requests)" \
            'BEGIN { if (r > 0 && w > 0) printf "%.0f | %.2f", c / r * 1e6, c / w; else printf "n/a | n/a" }') |"
}

written() { fields "$OUT/written.$1.txt" "$2"; }
# The nodes' CPU per request in µs, and the cores they kept busy, for a target and shape.
cpu_us() { awk -v c="$(fields "$OUT/cpu.$1.$2.txt" cpu_seconds)" -v r="$(fields "$OUT/cpu.$1.$2.txt" requests)" \
    'BEGIN { if (r > 0) printf "%.0f", c / r * 1e6; else printf "n/a" }'; }
cores_busy() { awk -v c="$(fields "$OUT/cpu.$1.$2.txt" cpu_seconds)" -v w="$(fields "$OUT/cpu.$1.$2.txt" wall_seconds)" \
    'BEGIN { if (w > 0) printf "%.2f\n", c / w }'; }
cores_range() {
    local target shape
    for target in plain-3n1s cluster-3n6s cluster-5n10s; do
        for shape in plain pipelined; do cores_busy "$target" "$shape"; done
    done | sort -g | sed -n '1p;$p' | tr '\n' ' ' | awk '{ printf "%s to %s", $1, $2 }'
}
masters() { grep -ho 'Cluster has [0-9]* master' "$OUT"/rb."$1".*.csv 2>/dev/null | sort -u |
    awk '{ print $3 }' | tr '\n' ' ' | sed 's/ $//; s/ /, /g'; }

elect_rows() {
    local repeat file
    for repeat in $(seq "$REPEATS"); do
        file="$OUT/elect.$repeat.txt"
        echo "| $repeat | $(seconds "$(fields "$file" state_ok_ms)") |" \
            "$(seconds "$(fields "$file" writable_ms)") | $(fields "$file" ranges) |" \
            "$(fields "$file" leaders_at_writable) | $(fields "$file" leader_changes) |" \
            "$(seconds "$(fields "$file" stable_ms)") | $(fields "$file" leaders) |" \
            "$(fields "$file" max_leaders) | $(fields "$file" timeout | grep . || echo no) |"
    done
}

section() {
    local idle big one single cap max_leaders idle_verdict spread_verdict
    big=$(field_median "$OUT/idle.idle-3x$IDLE_SHARDS.txt" cpu_percent)
    one=$(field_median "$OUT/idle.idle-3x1.txt" cpu_percent)
    single=$(field_median "$OUT/idle.idle-1x$IDLE_SHARDS.txt" cpu_percent)
    idle_verdict=$(awk -v a="$big" -v t="$IDLE_TARGET_PERCENT" 'BEGIN { if (a != a + 0) print "not measured";
        else print (a < t) ? "**met**" : "**not met**" }')
    cap=$(((ELECT_SHARDS + ELECT_NODES - 1) / ELECT_NODES + 1))
    max_leaders=$(field_max "$OUT/elect.*.txt" max_leaders)
    spread_verdict=$(awk -v a="$max_leaders" -v c="$cap" 'BEGIN { if (a != a + 0) print "not measured";
        else print (a <= c) ? "**met**" : "**not met**" }')
    local set_a set_b set_c pset_a pset_b pset_c
    set_a=$(rb_median plain-3n1s plain SET)
    set_b=$(rb_median cluster-3n6s plain SET)
    set_c=$(rb_median cluster-5n10s plain SET)
    pset_a=$(rb_median plain-3n1s pipelined SET)
    pset_b=$(rb_median cluster-3n6s pipelined SET)
    pset_c=$(rb_median cluster-5n10s pipelined SET)
    cat <<EOF
## Sharded clusters: idle groups, throughput, elections

Generated by \`bash bench/sharding.sh\`; rerunning it rewrites this section only.

- Date: $(cat "$OUT/date"); the measurements took about $(cat "$OUT/minutes") minutes.
- Machine: $(machine cpu_model), $(machine cores) cores, $(machine memory) memory, $(machine kernel)
- Disk: $(machine disk); synchronous 4 KiB writes (\`dd oflag=dsync\`): $(machine dsync_writes)
- Load average (1/5/15 min) at start: $(cat "$OUT/load_start"); at end: $(cat "$OUT/load_end").
  The machine has $(machine cores) cores and is shared with other builds and benchmarks; every
  node of a cluster and the client run on it together, over 127.0.0.1.
- Versions: $(redis-benchmark --version | cut -d' ' -f1-2); cohort $COHORT_VERSION.
  Raw outputs: bench/out/sharding/.

### Idle cost of hibernating groups

Each configuration is a fresh cluster with no client. Once every shard has a leader (a
\`shard_N:role=leader\` line in some node's \`INFO cohort\`), the script waits
$IDLE_SETTLE_SECONDS s, then reads utime + stime from \`/proc/PID/stat\` of every node at the
start and end of $IDLE_SECONDS s: CPU % of one core. "Hibernating" counts the node's
\`INFO cohort\` shard lines with \`hibernating=1\` at the end. Node 1's command line (the
others differ in \`--node-id\`, ports and data directory):

- $IDLE_SHARDS shards, 3 nodes: \`$(cat "$OUT/cmd.idle-3x$IDLE_SHARDS.txt")\`
- 1 shard, 3 nodes: \`$(cat "$OUT/cmd.idle-3x1.txt")\`
- $IDLE_SHARDS shards, 1 node: \`$(cat "$OUT/cmd.idle-1x$IDLE_SHARDS.txt")\`

| configuration | replicas per node | CPU % of a core, median of the nodes | each node | hibernating per node | VmRSS KiB (median) | threads |
|---|--:|--:|--:|--:|--:|--:|
$(idle_row "3 nodes, --shards $IDLE_SHARDS --replicas 3" "idle-3x$IDLE_SHARDS")
$(idle_row "3 nodes, --shards 1" idle-3x1)
$(idle_row "1 node, --shards $IDLE_SHARDS --replicas 1" "idle-1x$IDLE_SHARDS")

$IDLE_SHARDS idle groups cost $(decimals "$big") % of a core per node against $(decimals "$one") % for
one group (an unsharded cluster lists no shard lines and does not hibernate: its one group keeps
its heartbeats). A quiet group stops its own heartbeats once its followers have acknowledged it;
instead each node sends every peer one \`Quiesce\` message per heartbeat interval (2 ticks of
50 ms) listing the quiet groups not yet hibernating, and every 10 ticks one listing them all.
What remains is the node's own tick, 20 times a second: it walks all its groups, and gives each
hibernating replica a maintenance tick every 20 ticks. That part needs no peer, which is why
$IDLE_SHARDS groups on a single node cost $(decimals "$single") %.

### Durable throughput against shards and nodes

Every node runs \`--fsync always --replicas $REPLICAS\`; a fresh cluster per configuration;
$REPEATS runs each, medians (each run's figure in brackets); ratios are against (a) for the same
test and pipelining. Cluster-mode runs start once every slot range accepts a SET and
leadership has not moved for $STABLE_SECONDS s. Node 1's command lines:

- (a) 3 nodes, 1 shard, plain mode (a follower would proxy to the leader; the client talks
  to the leader, node $(fields "$OUT/ready.plain-3n1s.txt" leader_node), as bench/run.sh does): \`$(cat "$OUT/cmd.plain-3n1s.txt")\`
- (b) 3 nodes, 6 shards, cluster mode: \`$(cat "$OUT/cmd.cluster-3n6s.txt")\`
- (c) 5 nodes, 10 shards, cluster mode: \`$(cat "$OUT/cmd.cluster-5n10s.txt")\`

Without pipelining: \`$(cat "$OUT/rbcmd.plain-3n1s.plain.txt")\` for (a);
\`$(cat "$OUT/rbcmd.cluster-3n6s.plain.txt")\` for (b) and (c) (port 1 of each).

| configuration | SET/s | SET vs (a) | GET/s | GET vs (a) | nodes' CPU per request, µs | cores the nodes kept busy |
|---|--:|--:|--:|--:|--:|--:|
$(throughput_row "(a) 3 nodes, 1 shard, plain" plain-3n1s plain)
$(throughput_row "(b) 3 nodes, 6 shards, --cluster" cluster-3n6s plain)
$(throughput_row "(c) 5 nodes, 10 shards, --cluster" cluster-5n10s plain)

With pipelining: \`$(cat "$OUT/rbcmd.cluster-3n6s.pipelined.txt")\` (and without \`--cluster\`
for (a)):

| configuration | SET/s | SET vs (a) | GET/s | GET vs (a) | nodes' CPU per request, µs | cores the nodes kept busy |
|---|--:|--:|--:|--:|--:|--:|
$(throughput_row "(a) 3 nodes, 1 shard, plain" plain-3n1s pipelined)
$(throughput_row "(b) 3 nodes, 6 shards, --cluster" cluster-3n6s pipelined)
$(throughput_row "(c) 5 nodes, 10 shards, --cluster" cluster-5n10s pipelined)

redis-benchmark runs that reported an error: (a) $(rb_failures plain-3n1s), (b) $(rb_failures cluster-3n6s),
(c) $(rb_failures cluster-5n10s). The last two columns count the nodes' utime + stime over all runs
of a row (SET and GET together, redis-benchmark itself not included), per request and per
second of wall time.

\`redis-benchmark --cluster\` works against cohort: it reads \`CLUSTER NODES\` (it found
$(masters cluster-3n6s) masters for (b) and $(masters cluster-5n10s) for (c)), binds each of its $CLIENTS connections to one master and
follows -MOVED. It does not spread keys over the shards, though: every key it sends carries a
\`{hash tag}\` for one slot of its connection's master (the slot changes only after a -MOVED),
so each master receives all its writes in a single shard. Shards whose log grew by 1,000
entries or more during the runs: (b) $(written cluster-3n6s shards_written) of $(written cluster-3n6s shards), (c) $(written cluster-5n10s shards_written) of $(written cluster-5n10s shards): one busy shard per node.

More shards and nodes cannot add throughput on this machine: every node and the client share
$(machine cores) cores and one disk, and the nodes kept $(cores_range) of the cores busy in every row (the
client and the other tenants took the rest). What changes is the nodes' CPU per request, from
$(cpu_us plain-3n1s plain) µs in (a) to $(cpu_us cluster-3n6s plain) µs in (b) and $(cpu_us cluster-5n10s plain) µs in (c) without pipelining: each write is still
appended and fsynced by 3 replicas, but the same $CLIENTS connections are split over 3 or 5 leaders, so
each leader's batches carry fewer writes to share their fixed costs (a replication round, an
fsync on each replica, waking each task), and 5 processes cost more than 3 to schedule (an
explanation that fits the CPU figures; batch sizes were not measured). Hence SET at $(ratio "$set_b" "$set_a")× (b) and $(ratio "$set_c" "$set_a")× (c) without pipelining, and $(ratio "$pset_b" "$pset_a")× and $(ratio "$pset_c" "$pset_a")×
with it. Sharding pays where each node has cores and a disk of its own, which one machine cannot
show; these figures bound its overhead rather than its gain.

### Elections and leader spread, 5 nodes and 10 shards

$REPEATS fresh clusters of $ELECT_NODES nodes, each started with node 1's command
\`$(cat "$OUT/cmd.elect-1.txt")\`
(and likewise nodes 2–$ELECT_NODES). Times run from just before the first node is started. A
probe (python3, in the script) polls every 20 ms: "state ok" is when every node's
\`CLUSTER INFO\` says \`cluster_state:ok\`; "writable" is when one pass of SETs, one to a key of
each slot range \`CLUSTER SLOTS\` lists, sent to the master it names, is answered +OK throughout
(a node reports a shard's first replica as master until it knows a leader, so "state ok" alone
can come before the elections). Leaders per node are counted from \`INFO cohort\` (each shard's
\`role=leader\` line with the highest term), in node order 1/2/…/$ELECT_NODES; "stable" is the last
time a shard's leader changed, once none changed for $STABLE_SECONDS s.

| run | state ok, s | writable, s | slot ranges | leaders per node when writable | leader changes after | stable at, s | leaders per node, stable | most on one node | timed out |
|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|
$(elect_rows)

Median time until every slot range accepts a write: $(seconds "$(field_median "$OUT/elect.*.txt" writable_ms)") s
(state ok: $(seconds "$(field_median "$OUT/elect.*.txt" state_ok_ms)") s). Each shard's topology names a preferred leader,
spread so that every node prefers ⌊$ELECT_SHARDS/$ELECT_NODES⌋ or ⌈$ELECT_SHARDS/$ELECT_NODES⌉ shards; whichever replica wins the
first election, a leader that is not the preferred one hands the shard over once the
preferred node is alive (checked every 40 ticks, 2 s), which is the "leader changes after".

### Targets

| target | measured | verdict |
|---|---|---|
| $IDLE_SHARDS idle groups per node (3 nodes, --replicas 3) < ${IDLE_TARGET_PERCENT} % of a core | $(decimals "$big") % (median of the nodes) | $idle_verdict |
| every node leads ≤ ⌈$ELECT_SHARDS/$ELECT_NODES⌉ + 1 = $cap shards once stable | at most $max_leaders, over $REPEATS runs | $spread_verdict |
EOF
}

# Replaces the text between the markers in docs/BENCHMARKS.md (creating the file or
# appending the markers when absent), keeping everything else.
splice() {
    local section=$1
    if [[ ! -f $DOC ]]; then
        printf '# Benchmarks\n\n' >"$DOC"
    fi
    if ! grep -qF "$MARK_BEGIN" "$DOC"; then
        printf '\n%s\n%s\n' "$MARK_BEGIN" "$MARK_END" >>"$DOC"
    fi
    awk -v begin="$MARK_BEGIN" -v end="$MARK_END" -v file="$section" '
        $0 == begin { print; while ((getline line < file) > 0) print line; skip = 1; next }
        $0 == end { skip = 0 }
        !skip { print }' "$DOC" >"$DOC.new"
    mv "$DOC.new" "$DOC"
}

main "$@"
