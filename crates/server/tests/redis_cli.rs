//! The real `redis-cli` (Debian's `redis-tools`) against a real `cohort` process: a scripted
//! session on one connection whose output must match, line for line, what `redis-cli` prints
//! for Redis. Replies whose order Redis leaves unspecified (HGETALL, SMEMBERS) are compared as
//! sorted lines from their own invocations.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Cluster;

/// `redis-cli` if installed. Without it the tests fail under CI (which installs it) and are
/// skipped, loudly, elsewhere.
fn redis_cli() -> Option<&'static str> {
    let found = Command::new("redis-cli")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Some("redis-cli");
    }
    if std::env::var_os("CI").is_some() {
        panic!("redis-cli is not installed; CI must install redis-tools (see .ci/run)");
    }
    eprintln!("=================================================================");
    eprintln!("NOTICE: redis-cli not found; the redis-cli tests did NOT run.");
    eprintln!("Install it with: apt-get install -y redis-tools");
    eprintln!("=================================================================");
    None
}

/// Runs `redis-cli -p <port> <arguments>` with `input` on standard input; returns stdout.
fn run(program: &str, port: u16, arguments: &[&str], input: &str) -> String {
    let mut child = Command::new(program)
        .args(["-p", &port.to_string()])
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting redis-cli");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("writing the script");
    let output = wait_with_timeout(child, Duration::from_secs(30));
    assert!(output.status.success(), "redis-cli failed: {output:?}");
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn wait_with_timeout(mut child: std::process::Child, timeout: Duration) -> std::process::Output {
    let deadline = std::time::Instant::now() + timeout;
    while child.try_wait().expect("waiting for redis-cli").is_none() {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("redis-cli did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collecting redis-cli output")
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Stands for the reply of `TTL` on a key given 100 seconds: Redis rounds to the nearest second,
/// so a slow machine may see 99.
const TTL_LINE: &str = "<ttl of 100 seconds>";

/// Each command of the script and the exact lines `redis-cli` prints for it (raw output, as
/// when standard output is not a terminal; an error reply is followed by an empty line).
const SCRIPT: &[(&str, &[&str])] = &[
    ("SET greeting hello", &["OK"]),
    ("GET greeting", &["hello"]),
    ("GET missing", &[""]),
    ("INCR counter", &["1"]),
    ("INCRBY counter 41", &["42"]),
    ("LPUSH list a b c", &["3"]),
    ("LRANGE list 0 -1", &["c", "b", "a"]),
    ("LRANGE nolist 0 -1", &[""]),
    ("HSET hash field1 v1 field2 v2", &["2"]),
    ("SADD set x y z x", &["3"]),
    ("EXPIRE greeting 100", &["1"]),
    ("TTL greeting", &[TTL_LINE]),
    ("TTL counter", &["-1"]),
    ("TTL missing", &["-2"]),
    ("MULTI", &["OK"]),
    ("INCR counter", &["QUEUED"]),
    ("SET other \"two words\"", &["QUEUED"]),
    ("GET other", &["QUEUED"]),
    ("EXEC", &["43", "OK", "two words"]),
    ("MULTI", &["OK"]),
    ("SET a 1", &["QUEUED"]),
    ("NOSUCH", &["ERR unknown command 'NOSUCH', with args beginning with: ", ""]),
    ("EXEC", &["EXECABORT Transaction discarded because of previous errors.", ""]),
    ("EXISTS a", &["0"]),
    (
        "NOSUCHCOMMAND a b",
        &["ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'a' 'b' ", ""],
    ),
    ("GET", &["ERR wrong number of arguments for 'get' command", ""]),
    ("GET list", &["WRONGTYPE Operation against a key holding the wrong kind of value", ""]),
    ("INCR greeting", &["ERR value is not an integer or out of range", ""]),
    ("DEL list other", &["2"]),
    ("EXISTS list", &["0"]),
    ("ECHO \"a\\tb\"", &["a\tb"]),
];

#[test]
fn redis_cli_scripted_session_matches_redis_output() {
    // Goal: a real redis-cli session on one connection prints exactly what it prints for Redis.
    let Some(program) = redis_cli() else { return };
    let cluster = Cluster::start("redis-cli", 1, &[]);
    let port = cluster.node(1).port;

    let input: String = SCRIPT.iter().map(|(command, _)| format!("{command}\n")).collect();
    let output = run(program, port, &[], &input);
    let actual: Vec<&str> = output.lines().collect();
    let expected: Vec<(&str, &str)> = SCRIPT
        .iter()
        .flat_map(|(command, lines)| lines.iter().map(move |line| (*command, *line)))
        .collect();
    assert_eq!(actual.len(), expected.len(), "line count differs; output:\n{output}");
    for (number, ((command, want), got)) in expected.iter().zip(&actual).enumerate() {
        if *want == TTL_LINE {
            assert!(matches!(*got, "99" | "100"), "line {number} ({command}): TTL {got:?}");
        } else {
            assert_eq!(got, want, "line {number} ({command}); output:\n{output}");
        }
    }

    // Orderless replies, each from its own invocation with the command in the arguments.
    let hash = run(program, port, &["HGETALL", "hash"], "");
    let mut pairs: Vec<String> =
        hash.lines().collect::<Vec<_>>().chunks(2).map(|pair| pair.join("=")).collect();
    pairs.sort();
    assert_eq!(pairs, ["field1=v1", "field2=v2"], "HGETALL output:\n{hash}");
    let members = run(program, port, &["SMEMBERS", "set"], "");
    assert_eq!(sorted_lines(&members), ["x", "y", "z"], "SMEMBERS output:\n{members}");

    // RESP3 (`redis-cli -3` sends HELLO 3): a map reply prints as "field value" lines.
    let map = run(program, port, &["-3", "HGETALL", "hash"], "");
    assert_eq!(sorted_lines(&map), ["field1 v1", "field2 v2"], "RESP3 HGETALL output:\n{map}");
    let ttl = run(program, port, &["-3", "TTL", "missing"], "");
    assert_eq!(ttl, "-2\n");
}

#[test]
fn redis_cli_reaches_every_node_of_a_cluster() {
    // Goal: a write through one node is read back by redis-cli through each of the others.
    let Some(program) = redis_cli() else { return };
    let cluster = Cluster::start("redis-cli-cluster", 3, &[]);
    let ports = cluster.ports();
    assert_eq!(run(program, ports[0], &["SET", "shared", "across nodes"], ""), "OK\n");
    for port in &ports {
        assert_eq!(run(program, *port, &["GET", "shared"], ""), "across nodes\n");
        let hits = run(program, *port, &["INCR", "hits"], "");
        assert!(hits.trim().parse::<u32>().is_ok(), "INCR replied {hits:?}");
    }
    assert_eq!(run(program, ports[2], &["GET", "hits"], ""), "3\n");
}
