//! A variant's `start` command, run for its trials: under a guard (`sim __service-guard`,
//! see [`super::guard`]) that leads a process group of its own, so that a Ctrl-C at the
//! terminal reaches the runner alone, and stopping it stops every process the command made.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::guard::GRACE;
use crate::sys::process::{Signal, kill_group};

/// A started service: its guard, the leader of its process group.
pub struct Started {
    guard: Child,
}

impl Started {
    /// Starts `start` (of variant `name`) under a guard, its output appended to `log`.
    pub fn spawn(name: &str, start: &str, log: &Path) -> Result<Started> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        use std::io::Write;
        let _ = writeln!(&file, "== sim starts service.{name}: {start}");
        let exe = std::env::current_exe().context("finding the sim binary to guard the service")?;
        let mut command = Command::new(exe);
        command
            .arg("__service-guard")
            .arg(std::process::id().to_string())
            .arg(start)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let guard = command
            .spawn()
            .with_context(|| format!("service.{name}.start: starting {start:?}"))?;
        Ok(Started { guard })
    }

    /// How the service ended, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.guard.try_wait().ok().flatten()
    }
}

impl Drop for Started {
    /// SIGTERM to the guard, which passes it to the group and SIGKILLs it after a grace;
    /// then SIGKILL to whatever of the group is left.
    fn drop(&mut self) {
        let pgid = self.guard.id();
        if self.exited().is_none() {
            kill_group(pgid, Signal::TERM);
            let until = Instant::now() + GRACE + Duration::from_secs(1);
            while self.exited().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        kill_group(pgid, Signal::KILL);
        let _ = self.guard.kill();
        let _ = self.guard.wait();
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now: `{port}`.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The command line for `sh -c`: a plain command is `exec`ed, so that the shell does not
/// stay between sim and the program.
pub fn shell_line(command: &str) -> String {
    if command.contains(['&', ';', '|', '\n', '(', '`', '$', '<', '>']) {
        command.to_string()
    } else {
        format!("exec {command}")
    }
}
