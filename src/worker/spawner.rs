//! The spawner: the one process per trial that the runner starts with `exec`; it forks every
//! worker of the trial on the runner's request.
//!
//! Starting a hundred workers by `exec` cost a millisecond of CPU each here (the dynamic
//! loader, glibc's CPU-feature probing, which a virtual machine makes slow, and the page
//! faults of a fresh process); a fork of the spawner, which has read the plan already, costs a
//! fraction of that.
//!
//! Its descriptors, set by the runner: 0 the start gate, 1 where it answers each request with
//! the new worker's pid, 2 the trial's `workers.log`, 3 the requests, and 4 to 7 the writers
//! of the runner's four group pipes. A worker gets its group's writer as standard output and
//! none of the others, so that a group's pipe ends when its last worker does.
//!
//! The spawner does not reap a worker until the runner has closed the requests: a dead
//! worker stays a zombie until then, so its pid cannot be given to another process while the
//! runner may still signal it.

use std::io;
use std::path::Path;

use anyhow::{Result, bail};

use super::die_with_parent;
use crate::history::Role;
use crate::plan::TrialPlan;

/// The descriptor the requests arrive on.
pub const REQUESTS: i32 = 3;
/// The descriptor of group 0's writer; groups follow it.
pub const FIRST_GROUP: i32 = 4;
/// How many groups the runner has.
pub const GROUPS: usize = 4;

/// A request: fork a worker into a group.
pub const SPAWN: u8 = 1;
/// A request: close a group's writer, every worker of it having been forked.
pub const SEAL: u8 = 2;
/// The length of a request: kind, role, group, and the index as four bytes.
pub const REQUEST_LEN: usize = 7;

/// The request for `role` `index` in `group`.
pub fn spawn(role: Role, group: usize, index: u32) -> [u8; REQUEST_LEN] {
    let i = index.to_le_bytes();
    [SPAWN, role as u8, group as u8, i[0], i[1], i[2], i[3]]
}

/// The request to close `group`'s writer.
pub fn seal(group: usize) -> [u8; REQUEST_LEN] {
    [SEAL, 0, group as u8, 0, 0, 0, 0]
}

/// The entry point of `sim __worker PLAN`: serves requests until the runner closes them,
/// then reaps every worker and exits.
pub fn main(plan_path: &Path) -> Result<()> {
    let plan = TrialPlan::read(plan_path)?;
    die_with_parent(plan.runner_pid);
    // ChaCha probes the CPU's features once per process, with `cpuid`, which a virtual
    // machine traps: probed here, before the forks, every worker inherits the answer.
    let _ = plan.rng(Role::Buyer, 0);
    let me = std::process::id();
    let mut req = [0u8; REQUEST_LEN];
    while read_request(&mut req)? {
        let (kind, group) = (req[0], req[2] as usize);
        let index = u32::from_le_bytes([req[3], req[4], req[5], req[6]]);
        match (kind, Role::from_repr(req[1])) {
            _ if group >= GROUPS => bail!("a request the spawner does not know: {req:?}"),
            (SPAWN, Some(role)) => {
                // SAFETY: this process has one thread, so the child may run anything.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    let code = worker(&plan, role, index, group, me);
                    // SAFETY: ends this process at once. A worker writes through raw
                    // descriptors and unbuffered standard error, so nothing waits in a buffer;
                    // what `exit` would add, the atexit handlers and the loader's teardown,
                    // cost a tenth of a worker's life at a thousand buyers.
                    unsafe { libc::_exit(code) };
                }
                if pid < 0 {
                    eprintln!("error: forking {} {index}: {}", role.name(), io::Error::last_os_error());
                }
                write_all(&(pid.max(0) as u32).to_le_bytes())?;
            }
            // SAFETY: closing a descriptor this process owns; its workers hold their copies.
            (SEAL, _) => unsafe {
                libc::close(FIRST_GROUP + group as i32);
            },
            _ => bail!("a request the spawner does not know: {req:?}"),
        }
    }
    loop {
        // SAFETY: waiting for any child, without keeping its status.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) };
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Ok(()); // ECHILD: every worker is reaped
        }
    }
}

/// In the forked child: takes its group's pipe as standard output, drops the spawner's
/// other descriptors, and lives the worker's life. Returns the exit status.
fn worker(plan: &TrialPlan, role: Role, index: u32, group: usize, spawner: u32) -> i32 {
    // SAFETY: descriptors this process owns; dup2 onto standard output, then closing the
    // spawner's own.
    unsafe {
        libc::dup2(FIRST_GROUP + group as i32, 1);
        for fd in REQUESTS..FIRST_GROUP + GROUPS as i32 {
            libc::close(fd);
        }
    }
    die_with_parent(spawner);
    match super::run(plan, role, index) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

/// Reads one request; `false` when the runner has closed them.
fn read_request(buf: &mut [u8; REQUEST_LEN]) -> Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into the unfilled part of a valid buffer.
        let n = unsafe { libc::read(REQUESTS, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        match n {
            0 if got == 0 => return Ok(false),
            0 => bail!("the runner closed the requests in the middle of one"),
            n if n > 0 => got += n as usize,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => bail!("reading the runner's requests: {}", io::Error::last_os_error()),
        }
    }
    Ok(true)
}

/// Writes to standard output, the runner's end of the answers.
fn write_all(bytes: &[u8]) -> Result<()> {
    // SAFETY: writing a valid buffer to fd 1; 4 bytes are below PIPE_BUF, so all or nothing.
    let n = unsafe { libc::write(1, bytes.as_ptr().cast(), bytes.len()) };
    if n != bytes.len() as isize {
        bail!("answering the runner: {}", io::Error::last_os_error());
    }
    Ok(())
}
