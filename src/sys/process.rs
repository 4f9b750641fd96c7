//! Processes: forking a worker, ending at once, dying with the parent, signals, reaping, and
//! the user a server runs as.
//!
//! What rustix wraps safely (the parent-death signal, the timer slack, `getppid`, `kill`,
//! `wait`, `geteuid`) goes through it; `fork`, `_exit`, `raise`, `getpwnam_r` and the hooks
//! that run between a `fork` and an `exec` are libc calls behind the wrappers here.

use std::ffi::CString;
use std::io::{self, Read};
use std::num::NonZeroU64;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::process::Command;

use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions};

pub use rustix::process::Signal;

/// Forks this process: the child runs `child`, then ends at once with the status it returned
/// (101 if it panicked), through [`exit_now`]; the parent gets the child's pid.
///
/// A child of a process with several threads may only make async-signal-safe calls until it
/// execs (the other threads' locks are copied held, and stay held for ever), so this checks
/// first that the process has a single thread, and refuses to fork otherwise: a check of
/// ~8 µs, against a fork's hundreds.
pub fn fork_child(child: impl FnOnce() -> i32) -> io::Result<u32> {
    let threads = threads()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "a process of {threads} threads cannot fork a child that runs Rust code"
        )));
    }
    // SAFETY: this process has one thread: checked above, and no other thread can have
    // started one since, as there is none. The child is a copy of a single-threaded process,
    // whose locks and allocator are in a consistent state, so it may run any code.
    match unsafe { libc::fork() } {
        pid if pid < 0 => Err(io::Error::last_os_error()),
        0 => {
            // The child never returns into the parent's code, even by unwinding.
            let code = std::panic::catch_unwind(AssertUnwindSafe(child)).unwrap_or(101);
            exit_now(code)
        }
        pid => Ok(pid as u32),
    }
}

/// How many threads this process has (`/proc/self/stat`, read without allocating a buffer).
fn threads() -> io::Result<u32> {
    let mut stat = std::fs::File::open("/proc/self/stat")?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        match stat.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // The fields that follow the command name, which is in parentheses and may hold
    // anything: the state is the first of them, the number of threads the 18th.
    let after = buf[..len]
        .iter()
        .rposition(|&b| b == b')')
        .map_or(&[][..], |at| &buf[at + 1..len]);
    std::str::from_utf8(after)
        .ok()
        .and_then(|fields| fields.split_ascii_whitespace().nth(17))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::other("/proc/self/stat without a number of threads"))
}

/// Ends this process now with `status` (`_exit`): no destructors, no `atexit` handlers, no
/// flush of std's buffered standard output.
pub fn exit_now(status: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return; skipping destructors is
    // allowed (a leak), and every descriptor is closed by the kernel.
    unsafe { libc::_exit(status) }
}

/// Has the kernel send `signal` to this process when its parent ends (`PR_SET_PDEATHSIG`).
pub fn set_death_signal(signal: Signal) -> io::Result<()> {
    Ok(rustix::process::set_parent_process_death_signal(Some(signal))?)
}

/// Sets how late, in nanoseconds, the kernel may wake this thread from a sleep
/// (`PR_SET_TIMERSLACK`; 50 µs by default).
pub fn set_timer_slack(ns: u64) -> io::Result<()> {
    Ok(rustix::thread::set_current_timer_slack(NonZeroU64::new(ns))?)
}

/// The pid of this process's parent; 0 if it has none in this pid namespace.
pub fn parent_pid() -> u32 {
    rustix::process::getppid().map_or(0, |pid| pid.as_raw_nonzero().get() as u32)
}

/// Makes the process that `command` starts receive `signal` when this one ends, and exit at
/// once with status 3 if this one has ended already. Set between its fork and its exec,
/// after any change of user (which would clear it).
pub fn die_with_parent_after_exec(command: &mut Command, signal: Signal) {
    let parent = rustix::process::getpid();
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: it makes two system calls (prctl, getppid), through rustix's direct
    // system calls, and maybe _exit; it allocates nothing, takes no lock, and reads only the
    // two values copied into it.
    unsafe {
        command.pre_exec(move || {
            let _ = rustix::process::set_parent_process_death_signal(Some(signal));
            if rustix::process::getppid() != Some(parent) {
                exit_now(3); // the parent ended before the line above
            }
            Ok(())
        });
    }
}

/// Gives the process that `command` starts `fds` as its descriptors `first`, `first + 1`, …,
/// kept across its exec. Copies of them are made now, numbered above those (so that no
/// `dup2` in the child overwrites one still to be copied) and closed at exec; `command` holds
/// them until it is dropped.
pub fn hand_down(command: &mut Command, fds: &[BorrowedFd<'_>], first: RawFd) -> io::Result<()> {
    let above = first + fds.len() as RawFd;
    let copies = fds
        .iter()
        .map(|fd| super::fd::copy_above(fd, above))
        .collect::<io::Result<Vec<OwnedFd>>>()?;
    // SAFETY: the hook runs in the child between fork and exec: it only calls dup2, which is
    // async-signal-safe, and allocates nothing (the copies' Vec was made before). The copies
    // it reads stay open, as the hook owns them. The descriptors it overwrites belong to the
    // child's copy of this process, whose Rust objects never run again: exec replaces the
    // image, or its failure ends the child.
    unsafe {
        command.pre_exec(move || {
            for (n, copy) in copies.iter().enumerate() {
                if libc::dup2(copy.as_raw_fd(), first + n as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// A pid as rustix takes it: none for 0 (which `kill` would take for this process's group)
/// or one past `i32`.
fn to_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Sends `signal` to the process `pid`; refuses pid 0, which would signal this process's
/// whole group.
pub fn kill(pid: u32, signal: Signal) -> io::Result<()> {
    let Some(target) = to_pid(pid) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no process has pid {pid}"),
        ));
    };
    Ok(rustix::process::kill_process(target, signal)?)
}

/// Sends `signal` to every process of the group `pgid`; `false` if there was none.
pub fn kill_group(pgid: u32, signal: Signal) -> bool {
    to_pid(pgid).is_some_and(|group| rustix::process::kill_process_group(group, signal).is_ok())
}

/// Every descendant of `pid` now: its children, theirs, and so on, as `/proc` tells each
/// process's parent.
pub fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let child: u32 = e.file_name().to_str()?.parse().ok()?;
                    let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                    // `pid (comm) state ppid …`: the name may hold spaces and parentheses.
                    let parent = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
                    Some((child, parent))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = vec![pid];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(parents.iter().filter(|&&(_, p)| p == parent).map(|&(c, _)| c));
        at += 1;
    }
    found.remove(0);
    found
}

/// Whether no process numbered `pid` exists (`kill` with signal 0 says `ESRCH`); `false` when
/// one does, also another user's, or when it cannot be told (pid 0).
pub fn is_gone(pid: u32) -> bool {
    to_pid(pid).is_some_and(|target| rustix::process::test_kill_process(target) == Err(Errno::SRCH))
}

/// Sends `signal` to this process's own thread (`raise`): a `SIGSTOP` returns once the process
/// is continued; a `SIGKILL` does not return.
pub fn raise(signal: Signal) {
    // SAFETY: raise takes a signal number and touches no memory of the caller's.
    unsafe { libc::raise(signal.as_raw()) };
}

/// Waits for every child of this process to end, reaping each, and returns once none is
/// left (or waiting fails otherwise).
pub fn reap_all_children() {
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return, // ECHILD: every child is reaped
        }
    }
}

/// Whether this process runs as root (its effective user id is 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The user and group ids of the user `name`, from the system's user database
/// (`getpwnam_r`); `None` if there is no such user, or the database cannot be read.
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = CString::new(name).ok()?;
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: passwd is a plain C struct, for which all zeroes is a valid value.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `entry`, `buf` (of the length given) and `found`
        // are writable and outlive the call, which keeps no pointer to them.
        let error = unsafe { libc::getpwnam_r(name.as_ptr(), &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
        if error == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        // On success `found` points at `entry`, filled in; null means no such user.
        return (error == 0 && !found.is_null()).then_some((entry.pw_uid, entry.pw_gid));
    }
}

/// Set once SIGINT or SIGTERM came, when [`note_interrupts`] was called.
static INTERRUPTED: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> = std::sync::OnceLock::new();

/// Notes SIGINT and SIGTERM in a flag that [`interrupted`] reads, beside whatever else
/// handles them: for loops that wait long (a service's readiness) without the runner's
/// descriptor to poll.
pub fn note_interrupts() -> io::Result<()> {
    let flag = INTERRUPTED.get_or_init(Default::default);
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(flag))?;
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM came since [`note_interrupts`].
pub fn interrupted() -> bool {
    INTERRUPTED
        .get()
        .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_of_several_threads_is_not_forked() {
        let _other = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(500)));
        assert!(threads().unwrap() >= 2);
        let refused = fork_child(|| 0).unwrap_err();
        assert!(refused.to_string().contains("threads"), "{refused}");
    }

    #[test]
    fn signals_reach_live_processes_only() {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        assert!(!is_gone(child.id()));
        kill(child.id(), Signal::KILL).unwrap();
        child.wait().unwrap();
        assert!(is_gone(child.id()), "reaped");
        assert!(kill(0, Signal::KILL).is_err(), "never this process's group");
        assert!(!is_gone(0));
        assert!(!is_gone(1), "init, another user's or not, exists");
    }

    #[test]
    fn root_is_a_user_and_nobody_else_is_made_up() {
        assert_eq!(user_ids("root"), Some((0, 0)));
        assert_eq!(user_ids("no-such-user-of-sim"), None);
        assert_eq!(user_ids("nul\0inside"), None);
    }

    #[test]
    fn a_command_is_handed_descriptors_and_dies_with_its_parent() {
        use std::os::fd::AsFd;
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo handed >&5"]);
        hand_down(&mut command, &[writer.as_fd()], 5).unwrap();
        die_with_parent_after_exec(&mut command, Signal::TERM);
        assert!(command.status().unwrap().success());
        drop((command, writer)); // the copies the command held, and the writer
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "handed\n");
    }
}
