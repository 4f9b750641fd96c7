//! The workers of one trial: spawning them, hearing from them, hitting and resuming them,
//! and ending every one of them whatever way the trial leaves by.

use std::fs::File;
use std::io::{self, PipeReader, PipeWriter, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::Interrupts;
use crate::history::Role;
use crate::notice::{Decoder, FaultKind, Notice};

/// A fault as it happened, for the report: nemesis events beside the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEvent {
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
    reader: PipeReader,
    writer: Option<PipeWriter>,
    decoder: Decoder,
    pub open: bool,
    pub size: usize,
}

impl Group {
    pub fn new() -> io::Result<Group> {
        let (reader, writer) = io::pipe()?;
        Ok(Group {
            reader,
            writer: Some(writer),
            decoder: Decoder::default(),
            open: true,
            size: 0,
        })
    }

    /// The descriptor to poll: none once closed, or poll would find it readable forever.
    pub fn fd(&self) -> i32 {
        if self.open { self.reader.as_raw_fd() } else { -1 }
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

/// Waits until one of `fds` is readable or `timeout` passes; returns which are readable.
pub fn poll(fds: &[i32], timeout: Duration) -> Vec<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128 - 1) as i32 + 1;
    // SAFETY: a valid array of pollfds for the duration of the call.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return vec![false; fds.len()];
    }
    pfds.iter().map(|p| p.revents != 0).collect()
}

pub struct Member {
    pub role: Role,
    pub index: u32,
    child: Child,
}

/// Every worker of a trial. Dropping it ends and reaps them all.
pub struct Crew {
    exe: PathBuf,
    plan: PathBuf,
    gate: PipeReader,
    log: File,
    log_path: PathBuf,
    pub members: Vec<Member>,
    /// Faults heard of, and stopped workers to resume: (when, pid, fault).
    pub faults: Vec<FaultEvent>,
    resume: Vec<(Instant, u32, usize)>,
    stop_for: Duration,
}

impl Crew {
    pub fn new(exe: &Path, plan: &Path, gate: PipeReader, log_path: &Path, stop_for: Duration) -> Result<Crew> {
        let log = File::create(log_path).with_context(|| format!("creating {}", log_path.display()))?;
        Ok(Crew {
            exe: exe.to_path_buf(),
            plan: plan.to_path_buf(),
            gate,
            log,
            log_path: log_path.to_path_buf(),
            members: Vec::new(),
            faults: Vec::new(),
            resume: Vec::new(),
            stop_for,
        })
    }

    /// Starts a worker: standard input is the start gate, standard output its group's pipe,
    /// standard error the trial's log. All workers share a process group of their own, so
    /// that a Ctrl-C at the terminal reaches the runner alone, which ends them in order.
    pub fn spawn(&mut self, group: &mut Group, role: Role, index: u32) -> Result<()> {
        let writer = group.writer.as_ref().expect("spawning into a sealed group");
        let process_group = self.members.first().map_or(0, |m| m.child.id() as i32);
        let child = Command::new(&self.exe)
            .arg("__worker")
            .arg(&self.plan)
            .arg(role.name())
            .arg(index.to_string())
            .stdin(Stdio::from(self.gate.try_clone()?))
            .stdout(Stdio::from(writer.try_clone()?))
            .stderr(Stdio::from(self.log.try_clone()?))
            .process_group(process_group)
            .spawn()
            .with_context(|| format!("starting {} {index} ({})", role.name(), self.exe.display()))?;
        self.members.push(Member { role, index, child });
        group.size += 1;
        Ok(())
    }

    /// Waits until every member of `group` has said it is ready; `false` if interrupted.
    /// Fails, quoting the workers' log, if a worker exits first.
    pub fn await_ready(&mut self, group: &mut Group, deadline: Instant, interrupts: &Interrupts) -> Result<bool> {
        drop(group.writer.take()); // from now on only the members hold the writer
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
            }
            let exited = self.members.iter_mut().find_map(|m| {
                let status = m.child.try_wait().ok().flatten()?;
                Some(format!("{} {} ({status})", m.role.name(), m.index))
            });
            if let Some(who) = exited {
                let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
                let last: Vec<&str> = log.lines().rev().take(5).collect();
                let last: Vec<&str> = last.into_iter().rev().collect();
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
            let process = self
                .members
                .iter()
                .find(|m| m.child.id() == pid)
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
                // SAFETY: sending SIGCONT to our own child.
                unsafe { libc::kill(pid as i32, libc::SIGCONT) };
                self.faults[fault].until_ns = Some(crate::clock::now_ns().saturating_sub(gate_ns));
            } else if is_alive(pid) {
                later.push((now + Duration::from_millis(1), pid, fault));
            }
        }
        self.resume = later;
    }

    /// SIGKILLs every member, or those of one role.
    pub fn kill(&mut self, role: Option<Role>) {
        for m in &mut self.members {
            if role.is_none_or(|want| want == m.role) {
                let _ = m.child.kill();
            }
        }
    }

    pub fn reap(&mut self) {
        for m in &mut self.members {
            let _ = m.child.wait();
        }
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
