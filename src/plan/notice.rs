//! What a worker tells the runner on its group's pipe: that it is ready, or that it is about
//! to be hit by its planned fault. Each notice is one `write` of at most 13 bytes, below
//! `PIPE_BUF`, so notices from many workers never interleave.

use serde::{Deserialize, Serialize};

use crate::sys::fd;

/// A fault a worker suffers between its read and its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL: the process dies mid-sale.
    Kill,
    /// SIGSTOP, and SIGCONT from the runner `stop_ms` later.
    Stop,
    /// SIGKILL of the store's server (`[faults] kill_store`), sent by the worker.
    KillStore,
    /// `[faults] failover` begins at this buyer's sale: the runner cuts the replicas off
    /// from the primary, for `lag_ms` while the sale goes on.
    Failover,
    /// The runner SIGKILLed the primary, at the end of the failover's cut.
    KillPrimary,
    /// From the kill until a replica was promoted.
    Promotion,
    /// `[faults] partition_ms` at this buyer's sale: the runner cuts the primary off from
    /// its replicas and the buyers, for `partition_ms`.
    Partition,
    /// One of `[[faults.commands]]`: from its `run`'s start to its `undo`'s end.
    Command,
}

impl FaultKind {
    /// Whether the runner's nemesis acts on it, rather than the worker on itself.
    pub fn by_nemesis(self) -> bool {
        matches!(self, FaultKind::Failover | FaultKind::Partition)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// A notice from a worker to the runner.
pub enum Notice {
    /// At the start gate.
    Ready,
    /// About to be hit by its planned fault.
    Fault {
        /// What hits it.
        kind: FaultKind,
        /// Its pid.
        pid: u32,
        /// When, on `CLOCK_MONOTONIC`.
        at_ns: u64,
    },
}

const READY: u8 = b'R';
const KILL: u8 = b'K';
const STOP: u8 = b'S';
const KILL_STORE: u8 = b'D';
const FAILOVER: u8 = b'F';
const PARTITION: u8 = b'P';
const FAULT_LEN: usize = 13;

impl Notice {
    /// Its bytes on the pipe.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Notice::Ready => vec![READY],
            Notice::Fault { kind, pid, at_ns } => {
                let mut b = vec![match kind {
                    FaultKind::Kill => KILL,
                    FaultKind::Stop => STOP,
                    FaultKind::KillStore => KILL_STORE,
                    FaultKind::Failover => FAILOVER,
                    FaultKind::Partition => PARTITION,
                    // Never sent: the runner's own events.
                    FaultKind::KillPrimary | FaultKind::Promotion | FaultKind::Command => return Vec::new(),
                }];
                b.extend_from_slice(&pid.to_le_bytes());
                b.extend_from_slice(&at_ns.to_le_bytes());
                b
            }
        }
    }
}

/// Reassembles notices from the bytes a pipe delivers, however the reads cut them.
#[derive(Debug, Default)]
pub struct Decoder {
    carry: Vec<u8>,
}

impl Decoder {
    /// Decodes the notices in `bytes`, keeping a notice cut in two for the next call.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Notice>) {
        self.carry.extend_from_slice(bytes);
        let mut at = 0;
        while at < self.carry.len() {
            match self.carry[at] {
                READY => {
                    out.push(Notice::Ready);
                    at += 1;
                }
                tag @ (KILL | STOP | KILL_STORE | FAILOVER | PARTITION) => {
                    if self.carry.len() - at < FAULT_LEN {
                        break; // the rest is still on its way
                    }
                    let b = &self.carry[at..at + FAULT_LEN];
                    let kind = match tag {
                        KILL => FaultKind::Kill,
                        STOP => FaultKind::Stop,
                        FAILOVER => FaultKind::Failover,
                        PARTITION => FaultKind::Partition,
                        _ => FaultKind::KillStore,
                    };
                    let pid = u32::from_le_bytes(b[1..5].try_into().expect("4 bytes"));
                    let at_ns = u64::from_le_bytes(b[5..13].try_into().expect("8 bytes"));
                    out.push(Notice::Fault { kind, pid, at_ns });
                    at += FAULT_LEN;
                }
                _ => at += 1, // not a notice: skip it
            }
        }
        self.carry.drain(..at);
    }
}

/// Sends a notice on standard output, the worker's end of its group's pipe.
pub fn send(notice: Notice) -> std::io::Result<()> {
    let bytes = notice.encode();
    // One write: below PIPE_BUF, so all of it or nothing.
    match fd::write(fd::stdout(), &bytes)? {
        n if n == bytes.len() => Ok(()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            "a notice written in part",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_survive_any_cut() {
        let sent = [
            Notice::Ready,
            Notice::Fault {
                kind: FaultKind::Stop,
                pid: 4242,
                at_ns: 123_456_789,
            },
            Notice::Ready,
            Notice::Fault {
                kind: FaultKind::Kill,
                pid: 7,
                at_ns: u64::MAX,
            },
            Notice::Fault {
                kind: FaultKind::Failover,
                pid: 8,
                at_ns: 1,
            },
            Notice::Fault {
                kind: FaultKind::Partition,
                pid: 9,
                at_ns: 2,
            },
        ];
        let bytes: Vec<u8> = sent.iter().flat_map(|n| n.encode()).collect();
        for cut in 0..bytes.len() {
            let (mut decoder, mut got) = (Decoder::default(), Vec::new());
            decoder.feed(&bytes[..cut], &mut got);
            decoder.feed(&bytes[cut..], &mut got);
            assert_eq!(got, sent, "cut at {cut}");
        }
    }
}
