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
use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::die_with_parent;
use crate::history::Role;
use crate::plan::TrialPlan;
use crate::sys::{fd, process};

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
    let mut fds = Descriptors::inherit().context("taking the descriptors the runner set up")?;
    let me = std::process::id();
    let mut req = [0u8; REQUEST_LEN];
    while read_request(&fds, &mut req)? {
        let (kind, group) = (req[0], req[2] as usize);
        let index = u32::from_le_bytes([req[3], req[4], req[5], req[6]]);
        match (kind, Role::from_repr(req[1])) {
            _ if group >= GROUPS => bail!("a request the spawner does not know: {req:?}"),
            (SPAWN, Some(role)) => {
                // The worker ends with `_exit` (see fork_child). It writes through raw
                // descriptors and unbuffered standard error, so nothing waits in a buffer;
                // what `exit` would add, the atexit handlers and the loader's teardown, cost
                // a tenth of a worker's life at a thousand buyers.
                let forked = if fds.groups[group].is_some() {
                    process::fork_child(|| worker(&plan, role, index, group, &mut fds, me))
                } else {
                    Err(io::Error::other(format!("group {group} is sealed")))
                };
                let pid = forked.unwrap_or_else(|e| {
                    log_line(&format!("error: forking {} {index}: {e}", role.name()));
                    0
                });
                write_all(&pid.to_le_bytes())?;
            }
            // Its workers hold their copies.
            (SEAL, _) => fds.groups[group] = None,
            _ => bail!("a request the spawner does not know: {req:?}"),
        }
    }
    process::reap_all_children();
    Ok(())
}

/// The spawner's descriptors beyond the standard three, which the runner set up.
struct Descriptors {
    /// Where the requests arrive; `None` in a worker.
    requests: Option<OwnedFd>,
    /// The writers of the runner's group pipes; `None` once sealed (and in a worker).
    groups: [Option<OwnedFd>; GROUPS],
}

impl Descriptors {
    fn inherit() -> io::Result<Descriptors> {
        let mut groups: [Option<OwnedFd>; GROUPS] = Default::default();
        for (g, writer) in groups.iter_mut().enumerate() {
            *writer = Some(fd::inherited(FIRST_GROUP + g as i32)?);
        }
        Ok(Descriptors {
            requests: Some(fd::inherited(REQUESTS)?),
            groups,
        })
    }

    /// In a forked worker: makes its group's writer its standard output, and closes the
    /// spawner's own descriptors, so that a group's pipe ends when its last worker does.
    fn hand_to_worker(&mut self, group: usize) -> io::Result<()> {
        let writer = self.groups[group].take();
        self.requests = None;
        self.groups = Default::default();
        fd::set_stdout(writer.ok_or_else(|| io::Error::other("its group is sealed"))?)
    }
}

/// In the forked child: takes its group's pipe as standard output, drops the spawner's
/// other descriptors, and lives the worker's life. Returns the exit status.
fn worker(plan: &TrialPlan, role: Role, index: u32, group: usize, fds: &mut Descriptors, spawner: u32) -> i32 {
    if let Err(e) = fds.hand_to_worker(group) {
        log_line(&format!("error: {} {index}: taking its group's pipe: {e}", role.name()));
        return 2;
    }
    die_with_parent(spawner);
    match super::run(plan, role, index) {
        Ok(()) => 0,
        Err(e) => {
            log_line(&format!("error: {e:#}"));
            2
        }
    }
}

/// Reads one request; `false` when the runner has closed them.
fn read_request(fds: &Descriptors, buf: &mut [u8; REQUEST_LEN]) -> Result<bool> {
    let requests = fds.requests.as_ref().context("the requests were closed")?;
    let mut got = 0;
    while got < buf.len() {
        match fd::read(requests, &mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => bail!("the runner closed the requests in the middle of one"),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => bail!("reading the runner's requests: {e}"),
        }
    }
    Ok(true)
}

/// Writes to standard output, the runner's end of the answers.
fn write_all(bytes: &[u8]) -> Result<()> {
    // One write: 4 bytes are below PIPE_BUF, so all or nothing.
    match fd::write(fd::stdout(), bytes) {
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(_) => bail!("answering the runner: a short write"),
        Err(e) => bail!("answering the runner: {e}"),
    }
}

/// Writes `line` and its newline to the trial's log (standard error) with one `write`: the log
/// is opened to append, so that the lines of workers that fail at once land whole, one after
/// the other, where `eprintln!` would write each piece of its format on its own.
fn log_line(line: &str) {
    let _ = write_line(&mut io::stderr(), line);
}

fn write_line(to: &mut impl io::Write, line: &str) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    to.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `write` call it takes, as it came.
    struct Calls(Vec<Vec<u8>>);

    impl io::Write for Calls {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_line_is_one_write() {
        let mut calls = Calls(Vec::new());
        let e = anyhow::anyhow!("Connection reset by peer").context("buyer 8");
        write_line(&mut calls, &format!("error: {e:#}")).unwrap();
        assert_eq!(calls.0, [b"error: buyer 8: Connection reset by peer\n".to_vec()]);
    }
}
