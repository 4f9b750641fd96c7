//! The history: every operation of a trial, as each worker recorded it.
//!
//! Each worker writes its operations into a file of its own that it maps into memory, so that
//! recording an event is a few stores (no system call) and everything recorded before the
//! worker died is still in the file: the kernel keeps a shared mapping's pages when a process
//! is killed. An operation is recorded as an invocation (its start) and, later, a completion
//! (its outcome); one whose completion never came is indeterminate, as Jepsen's `info`.

use std::fmt;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;
use serde::{Deserialize, Serialize};

use crate::clock;

const MAGIC: [u8; 8] = *b"SIMHIST1";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 64;
const RECORD_LEN: usize = std::mem::size_of::<Record>();

/// `Record::value` and `Record::written` when there is none.
pub const NO_VALUE: i64 = i64::MIN;
/// `Record::entry` when the operation took no entry.
pub const NO_ENTRY: u64 = u64::MAX;

/// What a worker process is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Buyer = 1,
    Producer = 2,
    Seller = 3,
    EntryQueue = 4,
    Manager = 5,
}

impl Role {
    fn from_u8(b: u8) -> Option<Role> {
        Some(match b {
            1 => Role::Buyer,
            2 => Role::Producer,
            3 => Role::Seller,
            4 => Role::EntryQueue,
            5 => Role::Manager,
            _ => return None,
        })
    }

    pub fn parse(name: &str) -> Option<Role> {
        (1..=5).filter_map(Role::from_u8).find(|r| r.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Producer => "producer",
            Role::Seller => "seller",
            Role::EntryQueue => "entry-queue",
            Role::Manager => "manager",
        }
    }
}

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Read the stock, hold, write stock − 1 if it was above zero.
    Purchase = 1,
    /// A producer puts an entry into the entry queue.
    Put = 2,
    /// A buyer takes an entry from the entry queue.
    Take = 3,
    /// The seller's side of a purchase under `queue`: what it read and wrote for a request.
    Sale = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Purchase,
            2 => Kind::Put,
            3 => Kind::Take,
            4 => Kind::Sale,
            _ => return None,
        })
    }
}

/// How an operation ended, as the process that made it was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Invoked and never completed: the process died or was ended inside it.
    Pending = 0,
    /// Purchase: the stock was above zero and the buyer wrote it down by one.
    Sold = 1,
    /// Purchase: the stock read 0.
    SoldOut = 2,
    /// Purchase: the stock file was empty or unparseable.
    Unreadable = 3,
    /// Put or take: done.
    Ok = 4,
    /// Put: the queue was full and the put did not wait.
    Dropped = 5,
    /// Take: the producers are done and the queue is empty.
    Closed = 6,
}

impl Outcome {
    fn from_u8(b: u8) -> Option<Outcome> {
        Some(match b {
            0 => Outcome::Pending,
            1 => Outcome::Sold,
            2 => Outcome::SoldOut,
            3 => Outcome::Unreadable,
            4 => Outcome::Ok,
            5 => Outcome::Dropped,
            6 => Outcome::Closed,
            _ => return None,
        })
    }
}

/// One operation as it lies in a history file. Times are `CLOCK_MONOTONIC` nanoseconds,
/// one clock for every process of the machine; 0 where the moment never came.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub kind: u8,
    pub outcome: u8,
    pub _pad: [u8; 6],
    /// Invocation: before any lock or request.
    pub start_ns: u64,
    /// The stock was read (for a purchase).
    pub read_ns: u64,
    /// The stock was written (for a sold purchase).
    pub write_ns: u64,
    /// Completion: after the unlock or the reply.
    pub end_ns: u64,
    /// The stock value read: the ticket, for a sold purchase.
    pub value: i64,
    /// The stock value written.
    pub written: i64,
    /// The entry put or taken: producer index in the high 32 bits, its sequence number below.
    pub entry: u64,
}

const _: () = assert!(RECORD_LEN == 64);

/// A record with nothing in it yet.
pub fn blank_record() -> Record {
    Record {
        kind: 0,
        outcome: Outcome::Pending as u8,
        _pad: [0; 6],
        start_ns: 0,
        read_ns: 0,
        write_ns: 0,
        end_ns: 0,
        value: NO_VALUE,
        written: NO_VALUE,
        entry: NO_ENTRY,
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Header {
    magic: [u8; 8],
    version: u32,
    role: u8,
    _pad: [u8; 3],
    index: u32,
    pid: u32,
    capacity: u64,
    ready_ns: u64,
    finish_ns: u64,
    _rest: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_LEN);

/// The file name of a worker's history inside the trial's `history/` folder.
pub fn file_name(role: Role, index: u32) -> String {
    format!("{}-{index:04}.bin", role.name())
}

/// A worker's side: appends records to its memory-mapped history file.
pub struct Recorder {
    map: MmapMut,
    len: usize,
    capacity: usize,
}

impl Recorder {
    /// Creates the history file with room for `capacity` operations.
    pub fn create(path: &Path, role: Role, index: u32, capacity: usize) -> std::io::Result<Recorder> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        file.set_len((HEADER_LEN + capacity * RECORD_LEN) as u64)?;
        // SAFETY: the file was just created by this process and is only ever written through
        // this mapping; readers look at it after the worker has exited.
        let mut map = unsafe { MmapMut::map_mut(&file)? };
        let header = Header {
            magic: MAGIC,
            version: VERSION,
            role: role as u8,
            _pad: [0; 3],
            index,
            pid: std::process::id(),
            capacity: capacity as u64,
            ready_ns: 0,
            finish_ns: 0,
            _rest: [0; 16],
        };
        map[..HEADER_LEN].copy_from_slice(as_bytes(&header));
        // Fault every page in now, before the start gate: a first write to a page of the
        // file costs a page fault and a block allocation, which would otherwise land inside
        // the operations being timed (a third of the cost of recording one, measured).
        for at in (0..map.len()).step_by(4096) {
            // SAFETY: `at` is inside the map; writing the zero that is there already.
            unsafe { std::ptr::write_volatile(map.as_mut_ptr().add(at), map[at]) };
        }
        Ok(Recorder { map, len: 0, capacity })
    }

    fn header(&mut self) -> &mut Header {
        // SAFETY: the map starts page-aligned and holds a Header, written in `create`.
        unsafe { &mut *(self.map.as_mut_ptr() as *mut Header) }
    }

    /// Notes that the worker is at the start gate.
    pub fn ready(&mut self) {
        self.header().ready_ns = clock::now_ns();
    }

    /// Notes that the worker finished its work normally.
    pub fn finish(&mut self) {
        self.header().finish_ns = clock::now_ns();
    }

    /// Starts an operation and returns it, to be filled in as it goes. `None` when the file is
    /// full, which the worker's capacity makes impossible for a correct worker.
    pub fn begin(&mut self, kind: Kind) -> Option<&mut Record> {
        if self.len == self.capacity {
            return None;
        }
        let at = HEADER_LEN + self.len * RECORD_LEN;
        self.len += 1;
        // SAFETY: `at` is inside the map, 8-aligned (page start + multiples of 64), and the
        // bytes there are zero or an earlier Record; every bit pattern is a valid Record.
        let record = unsafe { &mut *(self.map.as_mut_ptr().add(at) as *mut Record) };
        *record = Record {
            kind: kind as u8,
            ..blank_record()
        };
        record.start_ns = clock::now_ns();
        Some(record)
    }
}

fn as_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: T is a plain repr(C) struct without padding bytes left uninitialised in use.
    unsafe { std::slice::from_raw_parts(value as *const T as *const u8, std::mem::size_of::<T>()) }
}

/// One worker process of a trial, as its history file describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worker {
    pub role: Role,
    pub index: u32,
    pub pid: u32,
    /// At the start gate, ns after the gate opened (negative: before it).
    pub ready_ns: i64,
    /// Finished its work normally, ns after the gate; `None` if it died or was ended first.
    pub finish_ns: Option<u64>,
}

impl Worker {
    pub fn label(&self) -> String {
        format!("{} {}", self.role.name(), self.index)
    }
}

/// One operation, read back from a history; times in ns after the start gate opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// Index into `History::workers`.
    pub worker: u32,
    pub kind: Kind,
    pub outcome: Outcome,
    pub start: u64,
    pub read: Option<u64>,
    pub write: Option<u64>,
    pub end: Option<u64>,
    pub value: Option<i64>,
    pub written: Option<i64>,
    pub entry: Option<u64>,
}

/// Every operation of one trial.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub workers: Vec<Worker>,
    /// Ordered by worker, then by the worker's own order.
    pub ops: Vec<Op>,
}

/// A history file that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot read history file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} is not a sim history file ({why}); it may be truncated or from another program: run the scenario again to rebuild it"
    )]
    Corrupt { path: PathBuf, why: String },
}

impl History {
    /// Reads every `*.bin` history file of a trial's `history/` folder. `gate_ns` is the
    /// moment the start gate opened, on the workers' clock.
    pub fn read_dir(dir: &Path, gate_ns: u64) -> Result<History, HistoryError> {
        let io = |source| HistoryError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .collect();
        paths.sort();
        let mut history = History::default();
        for path in paths {
            let bytes = std::fs::read(&path).map_err(|source| HistoryError::Io {
                path: path.clone(),
                source,
            })?;
            history.add_file(&path, &bytes, gate_ns)?;
        }
        Ok(history)
    }

    /// Adds one worker's history file, given as bytes.
    pub fn add_file(&mut self, path: &Path, bytes: &[u8], gate_ns: u64) -> Result<(), HistoryError> {
        let corrupt = |why: String| HistoryError::Corrupt {
            path: path.to_path_buf(),
            why,
        };
        if bytes.len() < HEADER_LEN {
            return Err(corrupt(format!(
                "{} bytes, shorter than its {HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        if bytes[..8] != MAGIC {
            return Err(corrupt("it does not start with SIMHIST1".into()));
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version != VERSION {
            return Err(corrupt(format!("format version {version}, this sim reads {VERSION}")));
        }
        let role = Role::from_u8(bytes[12]).ok_or_else(|| corrupt(format!("unknown role {}", bytes[12])))?;
        let (index, pid, capacity) = (u32_at(16), u32_at(20), u64_at(24));
        let (ready, finish) = (u64_at(32), u64_at(40));
        let body = &bytes[HEADER_LEN..];
        if !body.len().is_multiple_of(RECORD_LEN) || (body.len() / RECORD_LEN) as u64 != capacity {
            return Err(corrupt(format!(
                "its header promises {capacity} records but the file holds {} bytes of them",
                body.len()
            )));
        }
        let rel = |t: u64| t.saturating_sub(gate_ns);
        let worker = self.workers.len() as u32;
        self.workers.push(Worker {
            role,
            index,
            pid,
            ready_ns: ready as i64 - gate_ns as i64,
            finish_ns: (finish != 0).then(|| rel(finish)),
        });
        for (n, chunk) in body.chunks_exact(RECORD_LEN).enumerate() {
            if chunk[0] == 0 {
                break; // the first slot never begun: the rest is unused
            }
            let field = |at: usize| u64::from_le_bytes(chunk[at..at + 8].try_into().expect("8 bytes"));
            let kind =
                Kind::from_u8(chunk[0]).ok_or_else(|| corrupt(format!("record {n} has unknown kind {}", chunk[0])))?;
            let outcome = Outcome::from_u8(chunk[1])
                .ok_or_else(|| corrupt(format!("record {n} has unknown outcome {}", chunk[1])))?;
            let time = |t: u64| (t != 0).then(|| rel(t));
            let value = |v: u64| (v as i64 != NO_VALUE).then_some(v as i64);
            self.ops.push(Op {
                worker,
                kind,
                outcome,
                start: rel(field(8)),
                read: time(field(16)),
                write: time(field(24)),
                end: time(field(32)),
                value: value(field(40)),
                written: value(field(48)),
                entry: (field(56) != NO_ENTRY).then(|| field(56)),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:?} at {:.3} ms",
            self.kind,
            self.outcome,
            self.start as f64 / 1e6
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_recorder_writes_reads_back_even_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(Role::Buyer, 3));
        let gate = clock::now_ns();
        let mut rec = Recorder::create(&path, Role::Buyer, 3, 4).unwrap();
        rec.ready();
        let op = rec.begin(Kind::Purchase).unwrap();
        op.value = 7;
        op.read_ns = clock::now_ns();
        op.written = 6;
        op.write_ns = clock::now_ns();
        op.end_ns = clock::now_ns();
        op.outcome = Outcome::Sold as u8;
        let op = rec.begin(Kind::Purchase).unwrap();
        op.value = 6; // then the worker dies: no completion
        drop(rec);

        let history = History::read_dir(dir.path(), gate).unwrap();
        assert_eq!(history.workers.len(), 1);
        assert_eq!(history.workers[0].role, Role::Buyer);
        assert_eq!(history.workers[0].index, 3);
        assert_eq!(history.workers[0].finish_ns, None);
        assert_eq!(history.ops.len(), 2);
        let (sold, pending) = (history.ops[0], history.ops[1]);
        assert_eq!(
            (sold.outcome, sold.value, sold.written),
            (Outcome::Sold, Some(7), Some(6))
        );
        assert!(sold.end.unwrap() >= sold.start);
        assert_eq!(
            (pending.outcome, pending.value, pending.end),
            (Outcome::Pending, Some(6), None)
        );
    }

    #[test]
    fn a_full_recorder_refuses_rather_than_overruns() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(&dir.path().join("b.bin"), Role::Buyer, 0, 1).unwrap();
        assert!(rec.begin(Kind::Purchase).is_some());
        assert!(rec.begin(Kind::Purchase).is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut h = History::default();
        let p = Path::new("x.bin");
        assert!(h.add_file(p, b"short", 0).is_err());
        assert!(h.add_file(p, &[7u8; 200], 0).is_err());
        let mut bytes = vec![0u8; HEADER_LEN + RECORD_LEN];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8] = 1;
        bytes[12] = 1;
        bytes[24] = 5; // promises 5 records, holds 1
        assert!(matches!(h.add_file(p, &bytes, 0), Err(HistoryError::Corrupt { .. })));
        bytes[24] = 1;
        bytes[HEADER_LEN] = 99; // unknown kind
        assert!(h.add_file(p, &bytes, 0).is_err());
    }
}
