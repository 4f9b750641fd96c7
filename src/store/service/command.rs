//! A variant's command side: one instance of the user's command per process that buys,
//! spoken to in JSON lines on its standard input and output (docs/reference/service.md); its
//! standard error goes to service.log.

use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::http::excerpt;

/// How long an instance may take to end once its input is closed, before it is killed.
const END_GRACE: Duration = Duration::from_secs(2);

/// What an instance answered to one request.
pub enum Said {
    /// Its reply, the request's `id` taken out.
    Reply(Map<String, Value>),
    /// No reply within the timeout.
    Silent,
}

/// One running instance of the command.
pub struct Instance {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
    timeout: Duration,
}

impl Instance {
    /// Starts `command` with `sh -c`, its standard error appended to `log`; it is killed if
    /// this process dies.
    pub fn start(command: &str, log: &Path, timeout: Duration) -> io::Result<Instance> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(super::process::shell_line(command))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        crate::sys::process::die_with_parent_after_exec(&mut cmd, crate::sys::process::Signal::KILL);
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("the command has no standard output"))?;
        let (tx, lines) = channel();
        // A reader of its own, so that a silent command costs a timeout, not the buyer.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Instance {
            child,
            stdin,
            lines,
            next_id: 1,
            timeout,
        })
    }

    /// Sends `request` (an `id` is added) and waits for the reply with that `id`; replies
    /// to earlier requests that timed out are skipped. An error when the command ended or
    /// said something that is not a JSON object.
    pub fn call(&mut self, mut request: Map<String, Value>) -> io::Result<Said> {
        let id = self.next_id;
        self.next_id += 1;
        request.insert("id".into(), Value::from(id));
        let mut line = serde_json::to_vec(&request)?;
        line.push(b'\n');
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("the command's input is closed"))?;
        if let Err(e) = stdin.write_all(&line).and_then(|()| stdin.flush()) {
            return Err(self.ended(&format!("could not be written to ({e})")));
        }
        let until = Instant::now() + self.timeout;
        loop {
            let line = match self.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => return Ok(Said::Silent),
                Err(RecvTimeoutError::Disconnected) => return Err(self.ended("closed its output")),
            };
            if line.trim().is_empty() {
                continue;
            }
            let mut reply = match serde_json::from_str::<Value>(&line) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(io::Error::other(format!(
                        "the command answered a line that is not a JSON object: {}",
                        excerpt(line.as_bytes())
                    )));
                }
            };
            if reply.remove("id").and_then(|v| v.as_u64()) == Some(id) {
                return Ok(Said::Reply(reply));
            }
        }
    }

    /// Waits, up to `limit`, until the instance answers a first request (`stock`): a
    /// program that takes a while to start costs no purchase a timeout.
    pub fn await_ready(&mut self, limit: Duration) -> io::Result<()> {
        let timeout = std::mem::replace(&mut self.timeout, limit);
        let mut line = Map::new();
        line.insert("op".into(), "stock".into());
        let said = self.call(line);
        self.timeout = timeout;
        match said? {
            Said::Reply(_) => Ok(()),
            Said::Silent => Err(io::Error::other(format!(
                "the command did not answer {{\"op\": \"stock\"}} within ready_ms ({} ms)",
                limit.as_millis()
            ))),
        }
    }

    fn ended(&mut self, what: &str) -> io::Error {
        std::thread::sleep(Duration::from_millis(50));
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!("it exited ({status})"),
            _ => "it is still running".to_string(),
        };
        io::Error::other(format!("the command {what}: {status}"))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        drop(self.stdin.take()); // end of input: the command's cue to end
        let until = Instant::now() + END_GRACE;
        while Instant::now() < until {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
