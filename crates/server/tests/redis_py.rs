//! redis-py (the Python client) against real `cohort` processes: each test starts nodes with
//! [`common`], runs one script from `tests/python/` with the client ports in `COHORT_PORTS`
//! (comma-separated), and fails, printing everything the script wrote, if it exits non-zero or
//! runs past its time limit.
//!
//! - `basics.py`: strings, hashes, lists, sets, pipelines, CLIENT, INFO, COMMAND COUNT, PING over
//!   redis-py's default protocol, RESP2 and RESP3.
//! - `streams.py`: stream and consumer-group commands, compared with the Python structures
//!   redis-py builds from Redis 7's replies.
//! - `locks.py`: SET NX PX with a WATCH/MULTI check-and-delete release, and `LOCK.*` with a
//!   waiter and fencing.
//! - `consumer_group_failover.py`: three nodes, the leader killed (-9) mid-way; the script
//!   prints `KILL` and waits for `KILLED <port>` on its standard input.
//! - `runner_self_check.py`: fails on purpose, proving a failing script fails its test.
//!
//! Without the `redis` Python package the tests fail under CI (which installs it, see
//! `.ci/run`) and are skipped, loudly, elsewhere.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Cluster;

/// Longest a script may run before the test kills it and fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether `python3` can import redis-py; panics under CI when it cannot.
fn redis_py_available() -> bool {
    common::tool_available(
        "python3",
        &["-c", "import redis"],
        "redis-py (python3 -c 'import redis')",
        "python3 -m pip install redis",
    )
}

fn script_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("python").join(name)
}

/// A running script: its stdout lines arrive on `lines`, stderr is collected by a thread.
struct Script {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    output: Vec<String>,
    deadline: Instant,
}

impl Script {
    fn start(name: &str, ports: &[u16]) -> Script {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(script_path(name))
            .env("COHORT_PORTS", ports.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting python3 {name}: {error}"));
        let stdout = child.stdout.take().expect("stdout piped");
        let mut stderr = child.stderr.take().expect("stderr piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Script {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: Some(stderr),
            output: Vec::new(),
            deadline: Instant::now() + SCRIPT_TIMEOUT,
        }
    }

    /// The next line of standard output; `None` once the script has closed it.
    fn next_line(&mut self) -> Option<String> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(remaining) {
            Ok(line) => {
                println!("[{}] {line}", self.name);
                self.output.push(line.clone());
                Some(line)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.fail(&format!("did not finish within {SCRIPT_TIMEOUT:?}"));
            }
        }
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        if let Err(error) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            self.fail(&format!("writing {line:?} to its standard input: {error}"));
        }
    }

    /// Reads the rest of the output and waits for the exit; panics unless it exited with 0.
    fn finish(mut self) {
        while self.next_line().is_some() {}
        self.stdin = None;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for python3") {
                break status;
            }
            if Instant::now() >= self.deadline {
                self.fail(&format!("did not exit within {SCRIPT_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !status.success() {
            self.fail(&format!("exited with {status}"));
        }
    }

    fn fail(&mut self, reason: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.stderr.take().and_then(|thread| thread.join().ok()).unwrap_or_default();
        panic!(
            "{} {reason}\n---- stdout ----\n{}\n---- stderr ----\n{stderr}",
            self.name,
            self.output.join("\n")
        );
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a script that needs nothing but the ports against a fresh single node.
fn run_on_one_node(name: &str, script: &str) {
    if !redis_py_available() {
        return;
    }
    let cluster = Cluster::start(name, 1, &[]);
    Script::start(script, &cluster.ports()).finish();
}

#[test]
fn redis_py_basics_over_resp2_and_resp3() {
    // Goal: redis-py's everyday commands give Redis 7's Python values over both protocols.
    run_on_one_node("redis-py-basics", "basics.py");
}

#[test]
fn redis_py_streams_and_consumer_groups() {
    // Goal: redis-py's stream commands return the structures it builds for Redis 7.
    run_on_one_node("redis-py-streams", "streams.py");
}

#[test]
fn redis_py_locks_without_scripting() {
    // Goal: SET NX PX with a WATCH/MULTI release, and LOCK.* waiters and fencing, via redis-py.
    run_on_one_node("redis-py-locks", "locks.py");
}

#[test]
fn redis_py_consumer_group_survives_leader_kill() {
    // Goal: acknowledged XADDs reach the group at least once and nothing XACKed comes back,
    // across a SIGKILL of the leader in the middle of the run.
    if !redis_py_available() {
        return;
    }
    let mut cluster = Cluster::start("redis-py-failover", 3, &[]);
    let mut script = Script::start("consumer_group_failover.py", &cluster.ports());
    let mut killed = false;
    while let Some(line) = script.next_line() {
        if line.trim() == "KILL" {
            assert!(!killed, "the script asked for a second kill");
            let leader = cluster.wait_for_leader(Duration::from_secs(10));
            let port = cluster.node(leader).port;
            cluster.node_mut(leader).kill();
            killed = true;
            script.send_line(&format!("KILLED {port}"));
            break;
        }
    }
    assert!(killed, "the script ended before asking for the kill: {:?}", script.output);
    script.finish();
}

#[test]
#[should_panic(expected = "runner_self_check.py exited with")]
fn redis_py_runner_fails_when_a_script_fails() {
    // Goal: a script that fails an assert fails its test (the runner is not a no-op).
    Script::start("runner_self_check.py", &[]).finish();
}
