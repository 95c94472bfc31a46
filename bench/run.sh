#!/usr/bin/env bash
# Side-by-side benchmark of cohort against Redis and etcd on this machine.
#
# Run by hand, as root, from anywhere: `bash bench/run.sh` (not part of CI; it
# takes 10-20 minutes). In one run it:
#   1. installs redis-server, redis-tools, etcd-server and etcd-client if missing;
#   2. builds cohort and the load generator (crates/loadgen) in release, from the
#      committed HEAD (exported to target/bench-source, built into target/bench) so
#      that work in progress in the tree neither breaks nor colours the figures;
#      BENCH_SOURCE=tree builds the working tree as it is instead;
#   3. runs redis-benchmark (-t set,get,incr,lpush,rpop -c 50, with and without
#      -P 16, REPEATS times each, medians) against Redis without persistence,
#      Redis with appendfsync always, cohort 1 node fsync always, cohort 1 node
#      fsync no and cohort 3 nodes fsync always (client on the leader);
#   4. compares durable writes at 64 connections: cohort 3 nodes against a
#      3-member etcd cluster, both driven by loadgen (closed loop, unique keys);
#   5. loads 1,000,000 keys with 16-byte values into Redis and into cohort 1
#      node and compares their resident memory (VmRSS);
#   6. rewrites its own section of docs/BENCHMARKS.md (between the markers
#      below), keeping every other section of that file.
# Everything listens on 127.0.0.1 only; every process started here is stopped
# on exit. Raw outputs are kept in bench/out/ (not committed).
#
# Knobs (environment): REPEATS (3), REQUESTS_PLAIN (50000), REQUESTS_PIPELINED
# (200000), DURABLE_SECONDS (10), MEMORY_KEYS (1000000), PORT_BASE (7600),
# BENCH_SOURCE (head | tree).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPEATS=${REPEATS:-3}
REQUESTS_PLAIN=${REQUESTS_PLAIN:-50000}
REQUESTS_PIPELINED=${REQUESTS_PIPELINED:-200000}
DURABLE_SECONDS=${DURABLE_SECONDS:-10}
MEMORY_KEYS=${MEMORY_KEYS:-1000000}
PORT_BASE=${PORT_BASE:-7600}
TESTS="set,get,incr,lpush,rpop"
CLIENTS=50
DURABLE_CONNECTIONS=64
MARK_BEGIN='<!-- bench:run.sh begin -->'
MARK_END='<!-- bench:run.sh end -->'
DOC="$ROOT/docs/BENCHMARKS.md"
OUT="$ROOT/bench/out"
BENCH_SOURCE=${BENCH_SOURCE:-head}

# Data directories live on the real disk (not tmpfs), so fsync costs what it costs.
WORK=$(mktemp -d /var/tmp/cohort-bench.XXXXXX)
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

# Starts a command in the background with its output in a log; prints its pid.
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

# Prints the port, among those given, whose INFO replication says role:master.
wait_leader() {
    local port
    for _ in $(seq 300); do
        for port in "$@"; do
            if redis-cli -p "$port" info replication 2>/dev/null | grep -q '^role:master'; then
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
# Microseconds to milliseconds with two decimals.
milliseconds() { awk -v a="$1" 'BEGIN { printf "%.2f", a / 1000 }'; }
# "met" when a >= factor * b.
verdict() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (a != a + 0 || b != b + 0) print "not measured";
    else print (a >= f * b) ? "**met**" : "**not met**" }'; }

# ---------------------------------------------------------------------------
# 1. Packages.
install_packages() {
    local missing=0
    command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || missing=1
    command -v etcd >/dev/null && command -v etcdctl >/dev/null || missing=1
    if [[ $missing == 1 ]]; then
        log "installing redis-server redis-tools etcd-server etcd-client"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools etcd-server \
            etcd-client
    fi
}

# ---------------------------------------------------------------------------
# 3. redis-benchmark against one target, both with and without pipelining.
# Writes $OUT/rb.<target>.<plain|pipelined>.<repeat>.csv; error replies go to .err.
redis_benchmark_all() {
    local target=$1 port=$2 repeat shape
    for shape in plain pipelined; do
        for repeat in $(seq "$REPEATS"); do
            local arguments=(-h 127.0.0.1 -p "$port" -t "$TESTS" -c "$CLIENTS" --csv -e)
            if [[ $shape == plain ]]; then
                arguments+=(-n "$REQUESTS_PLAIN")
            else
                arguments+=(-n "$REQUESTS_PIPELINED" -P 16)
            fi
            log "redis-benchmark $target $shape run $repeat/$REPEATS"
            # redis-benchmark stops at the first error reply; the tests it finished still count,
            # the rest are reported as not measured, and the error text goes into the report.
            if ! redis-benchmark "${arguments[@]}" >"$OUT/rb.$target.$shape.$repeat.csv" \
                2>"$OUT/rb.$target.$shape.$repeat.err"; then
                log "redis-benchmark stopped early: $(rb_error_texts "$target")"
            fi
        done
    done
}

# Median requests/s of one test (SET, GET, …) for a target and shape.
rb_median() {
    local target=$1 shape=$2 test=$3
    cat "$OUT"/rb."$target"."$shape".*.csv | tr -d '"' |
        awk -F, -v t="$test" '$1 == t { print $2 }' | median
}

# Error replies seen by redis-benchmark for a target (all runs).
rb_errors() { cat "$OUT"/rb."$1".*.err | tr '\r' '\n' | grep -c 'Error from server' || true; }
# The distinct error texts, with the run each first appeared in.
rb_error_texts() {
    local file
    for file in "$OUT"/rb."$1".*.err; do
        tr '\r' '\n' <"$file" | grep 'Error from server' | sort -u |
            sed "s|^|$(basename "$file" .err | cut -d. -f3-): |"
    done | sort -u -t: -k2 | tr '\n' ' '
}

# ---------------------------------------------------------------------------
# 4. loadgen runs: $OUT/lg.<target>.<repeat>.txt, one line of name=value pairs.
loadgen_all() {
    local target=$1 mode=$2 port=$3 repeat
    for repeat in $(seq "$REPEATS"); do
        log "loadgen $mode $target run $repeat/$REPEATS ($DURABLE_SECONDS s)"
        "$LOADGEN" "$mode" --address "127.0.0.1:$port" --connections "$DURABLE_CONNECTIONS" \
            --duration-seconds "$DURABLE_SECONDS" --key-prefix "durable:$repeat:" \
            >"$OUT/lg.$target.$repeat.txt"
    done
}

# Median of one field (ops_per_second, p50_us, …) over a target's loadgen runs.
lg_median() {
    cat "$OUT"/lg."$1".*.txt | tr ' ' '\n' | awk -F= -v f="$2" '$1 == f { print $2 }' | median
}

cohort_single() {
    local name=$1 port=$2 fsync=$3
    spawn "$OUT/$name.log" "$COHORT" serve --bind 127.0.0.1 --port "$port" \
        --peer-port $((port + 10000)) --data-dir "$WORK/$name" --fsync "$fsync"
    wait_ping "$port"
    wait_leader "$port" >/dev/null
}

# Starts a 3-node cohort cluster on ports P..P+2; sets CLUSTER_PIDS and LEADER_PORT.
cohort_cluster() {
    local name=$1 port=$2 fsync=$3 id members=""
    for id in 1 2 3; do members="${members:+$members,}$id=127.0.0.1:$((port + 10000 + id - 1))"; done
    CLUSTER_PIDS=()
    for id in 1 2 3; do
        spawn "$OUT/$name.node-$id.log" "$COHORT" serve --node-id "$id" --bind 127.0.0.1 \
            --port $((port + id - 1)) --peer-port $((port + 10000 + id - 1)) \
            --data-dir "$WORK/$name/node-$id" --initial-cluster "$members" --fsync "$fsync"
        CLUSTER_PIDS+=("$LAST_PID")
    done
    for id in 1 2 3; do wait_ping $((port + id - 1)); done
    LEADER_PORT=$(wait_leader "$port" $((port + 1)) $((port + 2)))
    LEADER_NODE=$((LEADER_PORT - port + 1))
}

# Starts a 3-member etcd cluster; sets ETCD_PIDS and ETCD_LEADER_PORT.
etcd_cluster() {
    local client=$1 peer=$2 id members=""
    for id in 1 2 3; do members="${members:+$members,}m$id=http://127.0.0.1:$((peer + id - 1))"; done
    ETCD_PIDS=()
    for id in 1 2 3; do
        spawn "$OUT/etcd.m$id.log" etcd --name "m$id" --data-dir "$WORK/etcd/m$id" \
            --listen-client-urls "http://127.0.0.1:$((client + id - 1))" \
            --advertise-client-urls "http://127.0.0.1:$((client + id - 1))" \
            --listen-peer-urls "http://127.0.0.1:$((peer + id - 1))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((peer + id - 1))" \
            --initial-cluster "$members" --initial-cluster-state new \
            --initial-cluster-token cohort-bench
        ETCD_PIDS+=("$LAST_PID")
    done
    local endpoint
    for _ in $(seq 300); do
        for id in 1 2 3; do
            endpoint="127.0.0.1:$((client + id - 1))"
            if ETCDCTL_API=3 etcdctl --endpoints="$endpoint" --command-timeout=1s endpoint status \
                -w fields 2>/dev/null |
                awk '/"MemberID"/ { m = $3 } /"Leader"/ { l = $3 } END { exit !(m != "" && m == l) }'
            then
                ETCD_LEADER_PORT=$((client + id - 1))
                ETCD_LEADER_MEMBER=m$id
                return 0
            fi
        done
        sleep 0.2
    done
    log "etcd elected no leader"
    return 1
}

# VmRSS of a process in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Loads MEMORY_KEYS keys with 16-byte values, checks DBSIZE, prints the RSS in KiB.
memory_load() {
    local name=$1 port=$2 pid=$3
    echo "$(rss_kib "$pid")" >"$OUT/mem.$name.empty_kib"
    log "loading $MEMORY_KEYS keys into $name"
    "$LOADGEN" resp --address "127.0.0.1:$port" --connections 8 --pipeline 64 \
        --operations "$MEMORY_KEYS" --value-size-bytes 16 --key-prefix "key:" \
        >"$OUT/mem.$name.load.txt"
    local keys
    keys=$(redis-cli -p "$port" dbsize)
    echo "$keys" >"$OUT/mem.$name.dbsize"
    if [[ $keys != "$MEMORY_KEYS" ]]; then
        log "$name holds $keys keys, expected $MEMORY_KEYS"
        return 1
    fi
    # Let background work (snapshots, log compaction, lazy frees) settle.
    sleep 5
    rss_kib "$pid" >"$OUT/mem.$name.loaded_kib"
}

# ---------------------------------------------------------------------------
# 2. Build; sets COHORT, LOADGEN and COHORT_VERSION.
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
    log "building cohort and loadgen (release) from $source"
    (cd "$source" && CARGO_TARGET_DIR="$target" cargo build --release -p server -p loadgen)
    COHORT="$target/release/cohort"
    LOADGEN="$target/release/loadgen"
}

# ---------------------------------------------------------------------------
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
    } >"$OUT/machine.txt"
    rm -f "$WORK/dsync"
}

machine() { awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); print }' "$OUT/machine.txt"; }

# ---------------------------------------------------------------------------
main() {
    cd "$ROOT"
    rm -rf "$OUT"
    mkdir -p "$OUT"
    install_packages
    build
    describe_machine
    date -u '+%Y-%m-%d %H:%M UTC' >"$OUT/date"
    cut -d' ' -f1-3 /proc/loadavg >"$OUT/load_start"

    local port=$PORT_BASE
    log "Redis, no persistence"
    mkdir -p "$WORK/redis-none"
    spawn "$OUT/redis-none.log" redis-server --bind 127.0.0.1 --port "$port" --save "" \
        --appendonly no --dir "$WORK/redis-none"
    local redis_pid=$LAST_PID
    wait_ping "$port"
    redis_benchmark_all redis-none "$port"
    stop "$redis_pid"

    log "Redis, appendfsync always"
    mkdir -p "$WORK/redis-aof"
    spawn "$OUT/redis-aof.log" redis-server --bind 127.0.0.1 --port "$port" --save "" \
        --appendonly yes --appendfsync always --dir "$WORK/redis-aof"
    redis_pid=$LAST_PID
    wait_ping "$port"
    redis_benchmark_all redis-aof "$port"
    stop "$redis_pid"

    log "cohort, 1 node, fsync always"
    cohort_single cohort1-always "$port" always
    local cohort_pid=$LAST_PID
    redis_benchmark_all cohort1-always "$port"
    stop "$cohort_pid"

    log "cohort, 1 node, fsync no"
    cohort_single cohort1-no "$port" no
    cohort_pid=$LAST_PID
    redis_benchmark_all cohort1-no "$port"
    stop "$cohort_pid"

    log "cohort, 3 nodes, fsync always"
    cohort_cluster cohort3-always "$port" always
    echo "$LEADER_NODE" >"$OUT/cohort3.leader"
    log "leader is node $LEADER_NODE (port $LEADER_PORT)"
    redis_benchmark_all cohort3-always "$LEADER_PORT"
    # The durable-write comparison against etcd uses a fresh cluster, like etcd's.
    stop "${CLUSTER_PIDS[@]}"
    cohort_cluster cohort3-durable "$port" always
    echo "$LEADER_NODE" >"$OUT/cohort3-durable.leader"
    loadgen_all cohort3 resp "$LEADER_PORT"
    stop "${CLUSTER_PIDS[@]}"

    log "etcd, 3 members"
    etcd_cluster $((port + 100)) $((port + 200))
    echo "$ETCD_LEADER_MEMBER" >"$OUT/etcd.leader"
    loadgen_all etcd etcd "$ETCD_LEADER_PORT"
    stop "${ETCD_PIDS[@]}"

    log "memory at $MEMORY_KEYS keys"
    mkdir -p "$WORK/redis-memory"
    spawn "$OUT/redis-memory.log" redis-server --bind 127.0.0.1 --port "$port" --save "" \
        --appendonly no --dir "$WORK/redis-memory"
    redis_pid=$LAST_PID
    wait_ping "$port"
    memory_load redis "$port" "$redis_pid"
    stop "$redis_pid"
    cohort_single cohort-memory "$port" always
    cohort_pid=$LAST_PID
    memory_load cohort "$port" "$cohort_pid"
    stop "$cohort_pid"

    cut -d' ' -f1-3 /proc/loadavg >"$OUT/load_end"
    log "writing $DOC"
    section >"$OUT/section.md"
    splice "$OUT/section.md"
    log "done"
}

# ---------------------------------------------------------------------------
# 6. The generated section.
rb_table() {
    local shape=$1 test upper
    echo "| test | Redis, no persistence | Redis, appendfsync always | cohort 1 node, fsync always |" \
        "cohort 1 node, fsync no | cohort 3 nodes, fsync always |"
    echo "|---|--:|--:|--:|--:|--:|"
    for test in ${TESTS//,/ }; do
        upper=${test^^}
        local none aof always no three
        none=$(rb_median redis-none "$shape" "$upper")
        aof=$(rb_median redis-aof "$shape" "$upper")
        always=$(rb_median cohort1-always "$shape" "$upper")
        no=$(rb_median cohort1-no "$shape" "$upper")
        three=$(rb_median cohort3-always "$shape" "$upper")
        echo "| $upper | $(number "$none") | $(number "$aof") |" \
            "$(number "$always") ($(ratio "$always" "$aof")× AOF) |" \
            "$(number "$no") ($(ratio "$no" "$none")× none) |" \
            "$(number "$three") ($(ratio "$three" "$aof")× AOF) |"
    done
}

section() {
    local set_always set_aof get_no get_none durable_cohort durable_etcd rss_redis rss_cohort
    set_always=$(rb_median cohort1-always plain SET)
    set_aof=$(rb_median redis-aof plain SET)
    get_no=$(rb_median cohort1-no plain GET)
    get_none=$(rb_median redis-none plain GET)
    durable_cohort=$(lg_median cohort3 ops_per_second)
    durable_etcd=$(lg_median etcd ops_per_second)
    rss_redis=$(cat "$OUT/mem.redis.loaded_kib")
    rss_cohort=$(cat "$OUT/mem.cohort.loaded_kib")
    local memory_verdict
    memory_verdict=$(awk -v a="$rss_cohort" -v b="$rss_redis" \
        'BEGIN { print (a <= 2 * b) ? "**met**" : "**not met**" }')
    cat <<EOF
## Side by side with Redis and etcd

Generated by \`bash bench/run.sh\`; rerunning it rewrites this section only.

- Date: $(cat "$OUT/date")
- Machine: $(machine cpu_model), $(machine cores) cores, $(machine memory) memory, $(machine kernel)
- Disk: $(machine disk); synchronous 4 KiB writes (\`dd oflag=dsync\`): $(machine dsync_writes)
- Load average (1/5/15 min) at start: $(cat "$OUT/load_start"); at end: $(cat "$OUT/load_end").
  The machine is shared with other builds, so every figure is the median of $REPEATS runs.
- Versions: $(redis-server --version | cut -d' ' -f1-3); $(etcd --version | head -1);
  cohort $COHORT_VERSION
- Every server and client runs on this machine over 127.0.0.1; the client competes with the
  server for the same $(machine cores) cores.

### redis-benchmark, requests per second (median of $REPEATS)

\`redis-benchmark -t $TESTS -c $CLIENTS -n $REQUESTS_PLAIN --csv\` against each server in
turn (a fresh server and data directory each). cohort ratios are against Redis with
\`appendfsync always\` (AOF) for durable cohort and against Redis without persistence (none)
for \`fsync no\`. The 3-node client talks to the leader (node $(cat "$OUT/cohort3.leader")).

$(rb_table plain)

With pipelining (\`-P 16 -n $REQUESTS_PIPELINED\`):

$(rb_table pipelined)

Error replies reported by redis-benchmark, all runs (it stops a run at the first one, so the
tests after it in that run are missing from the medians; "n/a" means no run measured it):
$(for target in redis-none redis-aof cohort1-always cohort1-no cohort3-always; do
    printf -- '- %s: %s %s\n' "$target" "$(rb_errors "$target")" "$(rb_error_texts "$target")"
done)

### Durable writes on 3 nodes at $DURABLE_CONNECTIONS connections (median of $REPEATS)

\`loadgen\` (crates/loadgen): $DURABLE_CONNECTIONS connections, closed loop, one request in
flight per connection, a unique key per write, 16-byte values, $DURABLE_SECONDS s per run,
sent to the leader. cohort: RESP \`SET\`, 3 nodes, \`--fsync always\` (leader node
$(cat "$OUT/cohort3-durable.leader")). etcd: \`POST /v3/kv/put\` through its JSON gateway over
HTTP/1.1 keep-alive, 3 members with default settings (the WAL is always fsynced), leader
$(cat "$OUT/etcd.leader").

| system | writes/s | p50 ms | p99 ms | failed writes (median) |
|---|--:|--:|--:|--:|
| cohort 3 nodes | $(number "$durable_cohort") | $(milliseconds "$(lg_median cohort3 p50_us)") | $(milliseconds "$(lg_median cohort3 p99_us)") | $(lg_median cohort3 errors) |
| etcd 3 members | $(number "$durable_etcd") | $(milliseconds "$(lg_median etcd p50_us)") | $(milliseconds "$(lg_median etcd p99_us)") | $(lg_median etcd errors) |
| ratio cohort / etcd | $(ratio "$durable_cohort" "$durable_etcd")× | | | |

### Memory at $(number "$MEMORY_KEYS") keys

$(number "$MEMORY_KEYS") unique keys (\`key:000000000000\` …) with 16-byte values, written by
\`loadgen resp --connections 8 --pipeline 64\`; DBSIZE checked afterwards (Redis
$(cat "$OUT/mem.redis.dbsize"), cohort $(cat "$OUT/mem.cohort.dbsize")); VmRSS from
/proc/<pid>/status 5 s after the load. cohort runs 1 node, \`--fsync always\`.

| process | VmRSS empty | VmRSS loaded |
|---|--:|--:|
| redis-server (no persistence) | $(number "$(cat "$OUT/mem.redis.empty_kib")") KiB | $(number "$rss_redis") KiB |
| cohort (1 node) | $(number "$(cat "$OUT/mem.cohort.empty_kib")") KiB | $(number "$rss_cohort") KiB |
| ratio cohort / Redis | | $(ratio "$rss_cohort" "$rss_redis")× |

### Targets

| target | measured | verdict |
|---|---|---|
| 1 node fsync always ≥ 1.0× Redis appendfsync always, SET | $(ratio "$set_always" "$set_aof")× | $(verdict "$set_always" "$set_aof" 1.0) |
| 1 node fsync no ≥ 0.8× Redis no persistence, GET | $(ratio "$get_no" "$get_none")× | $(verdict "$get_no" "$get_none" 0.8) |
| 3 nodes ≥ 10× etcd, durable writes at $DURABLE_CONNECTIONS clients | $(ratio "$durable_cohort" "$durable_etcd")× | $(verdict "$durable_cohort" "$durable_etcd" 10) |
| RSS at $(number "$MEMORY_KEYS") keys ≤ 2× Redis | $(ratio "$rss_cohort" "$rss_redis")× | $memory_verdict |

How each side works, which is what these ratios measure (targets without pipelining):

- **SET, durable.** Redis with \`appendfsync always\` writes the AOF and fsyncs once per
  event-loop iteration, before replying to every client served in that iteration: a group
  commit on one thread. cohort's connection tasks hand each command to the node task, which
  proposes it to Raft; the disk thread appends every pending entry to the write-ahead log and
  fsyncs once per batch (group commit), and the reply goes out after apply. Both pay about one
  fsync per batch of concurrent clients; cohort adds channel hops between tasks and the log
  framing, Redis adds nothing.
- **GET, no persistence.** Redis answers a GET inline on its one thread. cohort's reads are
  linearizable: each goes through the node task and ReadIndex (on one node the quorum is the
  leader itself, so there is no network round trip, but the read still waits for the node
  task and the apply point) before reading the state machine.
- **Durable writes on 3 nodes.** Both are Raft with an fsynced log on each member and a
  quorum of 2. etcd fsyncs its WAL per Ready batch and applies through bbolt (its own
  fsync on commit every 100 ms or 10,000 writes) behind a gRPC server that the JSON gateway
  reaches through a loopback gRPC connection. cohort batches proposals into pipelined
  AppendEntries and fsyncs per batch on each node. At $DURABLE_CONNECTIONS closed-loop
  clients, throughput is bounded by how many writes each fsync carries and by CPU per write;
  on one machine all three members of each system share $(machine cores) cores and one disk.
- **Memory.** Redis stores a short string value as an embedded-string object in one hash
  table. cohort keeps its keyspace in an ordered \`BTreeMap\` (ordered so that SCAN stays
  correct under churn) of boxed byte strings with per-key metadata, plus the Raft log entries
  held in memory until the next snapshot (every 10,000 applied entries by default).
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
