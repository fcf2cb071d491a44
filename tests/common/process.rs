//! Child processes for the tests that need more than one: this test binary re-run as the
//! other side, or the `keyseal` binary. One place spawns them, reads what they print, kills
//! them (SIGKILL on Unix) and reaps them, so a failing test never leaves one running.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Lines, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// This test binary, set to run only the test `name` (`--exact`, output not captured, one
/// thread): the other side of a multi-process test. That test does nothing unless the
/// environment the caller adds tells it what to do. Standard output is piped.
pub fn this_test_binary(name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped());
    command
}

/// A running child process, killed and reaped when dropped.
pub struct ChildProcess {
    child: Option<Child>,
    stdout: Option<Lines<BufReader<ChildStdout>>>,
}

impl ChildProcess {
    /// Starts `command`; its standard output, when piped, is read line by line with
    /// [`ChildProcess::line_with`].
    pub fn spawn(command: &mut Command) -> ChildProcess {
        let mut child = command.spawn().expect("child process starts");
        let stdout = child.stdout.take().map(|out| BufReader::new(out).lines());
        ChildProcess {
            child: Some(child),
            stdout,
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child not yet reaped")
    }

    /// Its standard input (when piped).
    pub fn stdin(&mut self) -> &mut ChildStdin {
        self.child().stdin.as_mut().expect("stdin piped")
    }

    /// Reads standard output until a line holds `marker` and returns that line from the
    /// marker on (libtest may print `test name ... ` before a child test's first line).
    /// Panics when the child closes its output first, or when a line without the marker
    /// comes after `limit` (each read blocks until the child prints a line or exits).
    pub fn line_with(&mut self, marker: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let lines = self.stdout.as_mut().expect("stdout piped");
        loop {
            let line = lines
                .next()
                .expect("child ended before printing the line")
                .expect("child output readable");
            if let Some(at) = line.find(marker) {
                return line[at..].to_owned();
            }
            assert!(Instant::now() < deadline, "no {marker:?} within {limit:?}");
        }
    }

    /// Whether it has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.child().try_wait().expect("child status").is_none()
    }

    /// Kills it (SIGKILL on Unix: no clean-up runs in the child) and reaps it.
    pub fn kill(mut self) {
        let mut child = self.child.take().expect("child not yet reaped");
        child.kill().expect("child killed");
        child.wait().expect("child reaped");
    }

    /// Waits for it to exit and returns its status and what it printed (not already read).
    pub fn wait_with_output(mut self) -> Output {
        let child = self.child.take().expect("child not yet reaped");
        if let Some(lines) = self.stdout.take() {
            // Give the pipe back, with whatever is still buffered.
            let mut rest = Vec::new();
            for line in lines {
                rest.extend_from_slice(line.expect("child output readable").as_bytes());
                rest.push(b'\n');
            }
            let mut out = child.wait_with_output().expect("child reaped");
            rest.extend_from_slice(&out.stdout);
            out.stdout = rest;
            return out;
        }
        child.wait_with_output().expect("child reaped")
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `command` with every stream piped and `input` on its standard input, written from
/// another thread in small pieces (so the child sees many short reads and a large output
/// cannot block the writer). A command refused before it reads its input closes the pipe
/// early: not an error here.
pub fn run_with_stdin(command: &mut Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("child process starts");
    let mut stdin = child.stdin.take().expect("stdin piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        for piece in input.chunks(4093) {
            let written = stdin.write_all(piece).and_then(|()| stdin.flush());
            if let Err(e) = written {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
                return;
            }
        }
    });
    let out = child.wait_with_output().expect("child reaped");
    writer.join().expect("stdin writer");
    out
}

/// Whether `python3` with `cryptography` runs here (else the caller skips, unless
/// `KEYSEAL_REQUIRE_PYTHON=1`).
pub fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("KEYSEAL_REQUIRE_PYTHON").as_deref() != Ok("1"),
            "KEYSEAL_REQUIRE_PYTHON=1 but python3 with `cryptography` is not available \
             (run scripts/setup-python.sh)"
        );
        eprintln!("SKIPPED: python3 with `cryptography` not available");
    }
    ok
}
