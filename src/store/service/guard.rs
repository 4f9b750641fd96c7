//! The guard of a started service (`sim __service-guard RUNNER COMMAND`): it leads the
//! service's process group, runs the command under `sh -c`, and stops the whole group with
//! SIGTERM, then SIGKILL after [`GRACE`], when it gets SIGTERM: from the runner when the
//! variant's trials are over or the run is interrupted, and from the kernel when the runner
//! dies (`PR_SET_PDEATHSIG`), so that no process of the service outlives sim.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::sys::process::{Signal, kill_group, parent_pid, set_death_signal};

/// How long the service may take to stop on SIGTERM before it is killed.
pub const GRACE: Duration = Duration::from_secs(5);

/// Runs `command` until it ends (exiting with its status) or this guard is told to stop.
pub fn main(runner: u32, command: &str) -> Result<u8> {
    let (mut wake, signal_end) = UnixStream::pair()?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, signal_end)?;
    set_death_signal(Signal::TERM)?;
    if parent_pid() != runner {
        return Ok(0); // the runner ended before the line above: nothing was started
    }
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(super::process::shell_line(command))
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    wake.set_read_timeout(Some(Duration::from_millis(20)))?;
    let me = std::process::id();
    loop {
        if let Some(status) = child.try_wait()? {
            use std::os::unix::process::ExitStatusExt;
            return Ok(match (status.code(), status.signal()) {
                (Some(code), _) => code.clamp(0, 255) as u8,
                (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
                _ => 1,
            });
        }
        let mut byte = [0u8; 16];
        if matches!(wake.read(&mut byte), Ok(n) if n > 0) {
            break;
        }
    }
    // Told to stop: the whole group, this guard aside (it handles SIGTERM), then by force.
    kill_group(me, Signal::TERM);
    let until = Instant::now() + GRACE;
    while Instant::now() < until {
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    kill_group(me, Signal::KILL); // this guard too
    Ok(0)
}
