//! The workers of one trial: spawning them, hearing from them, hitting and resuming them,
//! and ending every one of them whatever way the trial leaves by.

use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::Interrupts;
use crate::history::Role;
use crate::plan::notice::{Decoder, FaultKind, Notice};
use crate::sys::fd;
use crate::sys::process::{self, Signal};
use crate::worker::spawner;

/// A fault as it happened, for the report: nemesis events beside the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// Killed or stopped.
    pub kind: FaultKind,
    /// Who was hit, e.g. "buyer 3".
    pub process: String,
    /// ns after the start gate.
    pub at_ns: u64,
    /// When a stopped worker was resumed, ns after the start gate.
    pub until_ns: Option<u64>,
}

/// The workers that share one pipe: its end-of-file says every member has exited.
pub struct Group {
    /// Its number, as the spawner knows it.
    id: usize,
    reader: PipeReader,
    writer: Option<PipeWriter>,
    decoder: Decoder,
    pub open: bool,
    pub size: usize,
}

impl Group {
    pub fn new(id: usize) -> io::Result<Group> {
        let (reader, writer) = io::pipe()?;
        Ok(Group {
            id,
            reader,
            writer: Some(writer),
            decoder: Decoder::default(),
            open: true,
            size: 0,
        })
    }

    /// The descriptor to poll: none once closed, or poll would find it readable forever.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.open.then(|| self.reader.as_fd())
    }

    /// Reads what is waiting, into notices; notes end-of-file.
    pub fn drain(&mut self, notices: &mut Vec<Notice>) {
        let mut buf = [0u8; 512];
        match self.reader.read(&mut buf) {
            Ok(0) => self.open = false,
            Ok(n) => self.decoder.feed(&buf[..n], notices),
            Err(_) => {}
        }
    }
}

/// Waits until one of `fds` is readable or `timeout` passes; returns which are (none after
/// an interruption by a signal).
pub fn poll(fds: &[Option<BorrowedFd<'_>>], timeout: Duration) -> Vec<bool> {
    // In whole milliseconds, rounded up and one more: never back before the timeout.
    let ms = timeout.as_millis().min(i32::MAX as u128 - 1) as u64 + 1;
    fd::poll_readable(fds, Some(Duration::from_millis(ms))).unwrap_or_else(|_| vec![false; fds.len()])
}

pub struct Member {
    pub role: Role,
    pub index: u32,
    pub pid: u32,
}

/// Every worker of a trial, and the spawner that forks them. Dropping it ends and reaps them
/// all.
pub struct Crew {
    spawner: Child,
    requests: Option<PipeWriter>,
    answers: PipeReader,
    /// Asked for, pid not read yet.
    pending: Vec<(Role, u32)>,
    log_path: PathBuf,
    pub members: Vec<Member>,
    /// Faults heard of, and stopped workers to resume: (when, pid, fault).
    pub faults: Vec<FaultEvent>,
    resume: Vec<(Instant, u32, usize)>,
    stop_for: Duration,
    reaped: bool,
}

impl Crew {
    /// Starts the trial's spawner: standard input is the start gate, standard error the
    /// trial's log, and it holds a writer of each of `groups` to hand to its workers. It has
    /// a process group of its own, which its workers share, so that a Ctrl-C at the terminal
    /// reaches the runner alone, which ends them in order.
    pub fn new(
        exe: &Path,
        plan: &Path,
        gate: PipeReader,
        log_path: &Path,
        stop_for: Duration,
        groups: &[Group; spawner::GROUPS],
        environment: &[(&'static str, String)],
    ) -> Result<Crew> {
        // Every worker's line lands whole, with one `write` to a log opened to append.
        let log = crate::sys::file::open_log(log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let (requests_reader, requests) = io::pipe()?;
        let (answers, answers_writer) = io::pipe()?;
        // The spawner's descriptors 3 to 7.
        let mut wanted = vec![requests_reader.as_fd()];
        for g in groups {
            wanted.push(
                g.writer
                    .as_ref()
                    .context("a group sealed before its spawner started")?
                    .as_fd(),
            );
        }
        let mut command = Command::new(exe);
        command
            .arg("__worker")
            .arg(plan)
            .stdin(Stdio::from(gate))
            .stdout(Stdio::from(answers_writer))
            .stderr(Stdio::from(log))
            .process_group(0);
        // Through the environment: plan.json never holds a password or a header's value.
        for (name, value) in environment {
            command.env(name, value);
        }
        process::hand_down(&mut command, &wanted, spawner::REQUESTS)?;
        let spawner = command
            .spawn()
            .with_context(|| format!("starting the spawner ({})", exe.display()))?;
        Ok(Crew {
            spawner,
            requests: Some(requests),
            answers,
            pending: Vec::new(),
            log_path: log_path.to_path_buf(),
            members: Vec::new(),
            faults: Vec::new(),
            resume: Vec::new(),
            stop_for,
            reaped: false,
        })
    }

    /// Asks the spawner for a worker in `group`: standard input the start gate, standard
    /// output the group's pipe, standard error the trial's log. Its pid is read when the
    /// group is awaited, so that the spawner forks while the runner asks for the next.
    pub fn spawn(&mut self, group: &mut Group, role: Role, index: u32) -> Result<()> {
        self.ask(&spawner::spawn(role, group.id, index))?;
        self.pending.push((role, index));
        group.size += 1;
        Ok(())
    }

    fn ask(&mut self, request: &[u8]) -> Result<()> {
        let requests = self.requests.as_mut().context("the spawner was already told to end")?;
        requests
            .write_all(request)
            .with_context(|| format!("asking the spawner for a worker; see {}", self.log_path.display()))
    }

    /// Reads the pids of the workers asked for.
    fn collect(&mut self) -> Result<()> {
        for (role, index) in std::mem::take(&mut self.pending) {
            let mut pid = [0u8; 4];
            self.answers
                .read_exact(&mut pid)
                .with_context(|| format!("the spawner ended; see {}", self.log_path.display()))?;
            let pid = u32::from_le_bytes(pid);
            if pid == 0 {
                bail!(
                    "could not start {} {index}; see {}",
                    role.name(),
                    self.log_path.display()
                );
            }
            self.members.push(Member { role, index, pid });
        }
        Ok(())
    }

    /// Waits until every member of `group` has said it is ready; `false` if interrupted.
    /// Fails, quoting the workers' log, if a worker exits first.
    pub fn await_ready(&mut self, group: &mut Group, deadline: Instant, interrupts: &Interrupts) -> Result<bool> {
        self.collect()?;
        // From now on only the members hold the group's writer.
        self.ask(&spawner::seal(group.id))?;
        drop(group.writer.take());
        let mut ready = 0;
        let mut notices = Vec::new();
        while ready < group.size {
            let now = Instant::now();
            if now >= deadline {
                bail!("workers did not get ready within 30 s; see {}", self.log_path.display());
            }
            let readable = poll(
                &[group.fd(), interrupts.fd()],
                (deadline - now).min(Duration::from_millis(20)),
            );
            if readable[1] && interrupts.pending() {
                return Ok(false);
            }
            if readable[0] {
                notices.clear();
                group.drain(&mut notices);
                ready += notices.iter().filter(|n| **n == Notice::Ready).count();
                continue;
            }
            // Nothing said for a while: has a worker (or the spawner) died?
            let spawner_gone = self.spawner.try_wait().ok().flatten().is_some();
            let exited = self
                .members
                .iter()
                .find(|m| !is_alive(m.pid))
                .map(|m| format!("{} {}", m.role.name(), m.index))
                .or_else(|| spawner_gone.then(|| "the spawner".to_string()));
            if let Some(who) = exited {
                let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
                let last: Vec<&str> = log.lines().rev().take(5).collect();
                let last: Vec<&str> = last.into_iter().rev().collect();
                if last.is_empty() {
                    // A worker that says nothing was ended by a signal: it writes its errors.
                    bail!(
                        "{who} exited before the start gate opened, and wrote nothing to {}: a signal ended it \
                         (the out-of-memory killer's SIGKILL, or a SIGBUS or SIGSEGV); check `dmesg` and the free memory",
                        self.log_path.display()
                    );
                }
                bail!(
                    "{who} exited before the start gate opened; the last lines of {}:\n  {}",
                    self.log_path.display(),
                    last.join("\n  ")
                );
            }
        }
        if group.size == 0 {
            group.open = false;
        }
        Ok(true)
    }

    /// Acts on what workers said: records faults and schedules the resumption of the stopped.
    pub fn hear(&mut self, notices: &[Notice], gate_ns: u64) {
        for notice in notices {
            let Notice::Fault { kind, pid, at_ns } = *notice else {
                continue;
            };
            if kind.by_nemesis() {
                continue; // the nemesis records its own events
            }
            let process = self
                .members
                .iter()
                .find(|m| m.pid == pid)
                .map_or_else(|| format!("pid {pid}"), |m| format!("{} {}", m.role.name(), m.index));
            self.faults.push(FaultEvent {
                kind,
                process,
                at_ns: at_ns.saturating_sub(gate_ns),
                until_ns: None,
            });
            if kind == FaultKind::Stop {
                self.resume
                    .push((Instant::now() + self.stop_for, pid, self.faults.len() - 1));
            }
        }
    }

    /// The next moment a stopped worker is due to be resumed.
    pub fn next_resume(&self) -> Option<Instant> {
        self.resume.iter().map(|r| r.0).min()
    }

    /// Resumes the stopped workers that are due (once the kernel shows them stopped: the
    /// notice comes just before the worker stops itself).
    pub fn resume_due(&mut self, gate_ns: u64) {
        let now = Instant::now();
        let mut later = Vec::new();
        for (due, pid, fault) in std::mem::take(&mut self.resume) {
            if due > now {
                later.push((due, pid, fault));
            } else if is_stopped(pid) {
                // A worker the spawner has not reaped yet (see `kill`): its pid is its own.
                let _ = process::kill(pid, Signal::CONT);
                self.faults[fault].until_ns = Some(crate::sys::clock::now_ns().saturating_sub(gate_ns));
            } else if is_alive(pid) {
                later.push((now + Duration::from_millis(1), pid, fault));
            }
        }
        self.resume = later;
    }

    /// SIGKILLs every member, or those of one role. Until `reap`, a member that died is a
    /// zombie the spawner keeps, so its pid is still its own.
    pub fn kill(&mut self, role: Option<Role>) {
        if self.reaped {
            return;
        }
        for m in &self.members {
            if role.is_none_or(|want| want == m.role) {
                // A worker of this trial, alive or a zombie.
                let _ = process::kill(m.pid, Signal::KILL);
            }
        }
    }

    /// Tells the spawner to end, which it does once every worker has exited and been reaped,
    /// and waits for it.
    pub fn reap(&mut self) {
        drop(self.requests.take());
        let _ = self.spawner.wait();
        self.reaped = true;
    }
}

impl Drop for Crew {
    /// Whatever path a trial leaves by, no worker outlives it.
    fn drop(&mut self) {
        self.kill(None);
        self.reap();
    }
}

fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and may hold anything.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn is_stopped(pid: u32) -> bool {
    proc_state(pid) == Some('T')
}

fn is_alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}
