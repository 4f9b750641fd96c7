//! The history: every operation of a trial, as each worker recorded it.
//!
//! A trial has one history file, made by the runner: a header page, then a region per worker,
//! each page-aligned. Each worker maps its own region into memory, so that recording an event
//! is a few stores (no system call) and everything recorded before the worker died is still
//! in the file: the kernel keeps a shared mapping's pages when a process is killed. One file
//! rather than one per worker, because creating a hundred files where the previous run's
//! were just deleted cost ext4 as much as starting the hundred processes. An operation is
//! recorded as an invocation (its start) and, later, a completion (its outcome); one whose
//! completion never came is indeterminate, as Jepsen's `info`. Operations are stamped in
//! [`clock::ticks`]; the header's two clock pairs turn them into nanoseconds when read.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Cursor, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};
use serde::{Deserialize, Serialize};

use crate::clock::{self, Pair, Timebase};

const MAGIC: [u8; 8] = *b"SIMHIST2";
const REGION_MAGIC: [u8; 8] = *b"SIMWORKR";
const VERSION: u32 = 2;
/// The file's header and each region start on a page of their own: a region is mapped alone.
const PAGE: u64 = 4096;
const HEADER_LEN: usize = 64;
const RECORD_LEN: usize = std::mem::size_of::<Record>();

/// The name of a trial's history file, in the trial's folder.
pub const FILE_NAME: &str = "history.bin";

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
    pub fn from_u8(b: u8) -> Option<Role> {
        Some(match b {
            1 => Role::Buyer,
            2 => Role::Producer,
            3 => Role::Seller,
            4 => Role::EntryQueue,
            5 => Role::Manager,
            _ => return None,
        })
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

/// One operation as it lies in a history file. Times are [`clock::ticks`], one clock for
/// every process of the machine; 0 where the moment never came.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub kind: u8,
    pub outcome: u8,
    pub _pad: [u8; 6],
    /// Invocation: before any lock or request.
    pub start_tick: u64,
    /// The stock was read (for a purchase).
    pub read_tick: u64,
    /// The stock was written (for a sold purchase).
    pub write_tick: u64,
    /// Completion: after the unlock or the reply.
    pub end_tick: u64,
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
        start_tick: 0,
        read_tick: 0,
        write_tick: 0,
        end_tick: 0,
        value: NO_VALUE,
        written: NO_VALUE,
        entry: NO_ENTRY,
    }
}

/// The start of the file: how many regions follow, and the two clock pairs that turn the
/// records' ticks into nanoseconds (the second is 0 until the runner seals the file).
#[repr(C)]
#[derive(Clone, Copy)]
struct FileHeader {
    magic: [u8; 8],
    version: u32,
    regions: u32,
    start: [u64; 2],
    end: [u64; 2],
    _rest: [u8; 16],
}

/// Where the end pair lies in the file.
const END_AT: u64 = 32;

/// The start of a worker's region; `pid` is 0 until the worker opens it.
#[repr(C)]
#[derive(Clone, Copy)]
struct RegionHeader {
    magic: [u8; 8],
    role: u8,
    _pad: [u8; 3],
    index: u32,
    pid: u32,
    _pad2: u32,
    capacity: u64,
    ready_ns: u64,
    finish_ns: u64,
    _rest: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<FileHeader>() == HEADER_LEN);
const _: () = assert!(std::mem::size_of::<RegionHeader>() == HEADER_LEN);

/// A worker's part of a trial's history file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub role: Role,
    pub index: u32,
    /// How many operations it has room for.
    pub capacity: u64,
    /// Its first byte in the file, a multiple of the page size.
    pub offset: u64,
}

impl Region {
    /// Its length in the file: header and records, rounded up to whole pages.
    fn len(capacity: u64) -> u64 {
        (HEADER_LEN as u64 + capacity * RECORD_LEN as u64).div_ceil(PAGE) * PAGE
    }
}

/// Creates a trial's history file with a region for each of `workers` (role, index,
/// capacity), in the order of their names, and takes the timebase's first pair: so before any
/// worker starts. Fails if the file exists.
pub fn create_file(path: &Path, workers: &[(Role, u32, usize)]) -> io::Result<Vec<Region>> {
    let mut workers = workers.to_vec();
    workers.sort_by_key(|&(role, index, _)| (role.name(), index));
    let mut offset = PAGE;
    let regions: Vec<Region> = workers
        .into_iter()
        .map(|(role, index, capacity)| {
            let region = Region {
                role,
                index,
                capacity: capacity as u64,
                offset,
            };
            offset += Region::len(region.capacity);
            region
        })
        .collect();
    let file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.set_len(offset)?;
    let start = Pair::now();
    let header = FileHeader {
        magic: MAGIC,
        version: VERSION,
        regions: regions.len() as u32,
        start: [start.ticks, start.ns],
        end: [0, 0],
        _rest: [0; 16],
    };
    file.write_all_at(as_bytes(&header), 0)?;
    for region in &regions {
        let header = RegionHeader {
            magic: REGION_MAGIC,
            role: region.role as u8,
            _pad: [0; 3],
            index: region.index,
            pid: 0,
            _pad2: 0,
            capacity: region.capacity,
            ready_ns: 0,
            finish_ns: 0,
            _rest: [0; 16],
        };
        file.write_all_at(as_bytes(&header), region.offset)?;
    }
    Ok(regions)
}

/// Takes the timebase's second pair, once every worker of the trial has ended.
pub fn seal_file(path: &Path) -> io::Result<()> {
    let end = Pair::now();
    let file = OpenOptions::new().write(true).open(path)?;
    file.write_all_at(as_bytes(&[end.ticks, end.ns]), END_AT)
}

/// A worker's side: appends records to its memory-mapped region of the history file.
pub struct Recorder {
    map: MmapMut,
    len: usize,
    capacity: usize,
    /// A file of its own, sealed when the recorder is dropped.
    own: Option<PathBuf>,
}

impl Recorder {
    /// Opens a worker's region of a history file made by [`create_file`].
    pub fn open(path: &Path, region: &Region) -> io::Result<Recorder> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        // SAFETY: the region is this worker's alone; the runner wrote its header before the
        // worker started, and readers look at it after the worker has exited.
        let mut map = unsafe {
            MmapOptions::new()
                .offset(region.offset)
                .len(Region::len(region.capacity) as usize)
                .map_mut(&file)?
        };
        let mut recorder = Recorder {
            capacity: region.capacity as usize,
            len: 0,
            map: {
                // Fault every page in now, before the start gate: a first write to a page of
                // the file costs a page fault and a block allocation, which would otherwise
                // land inside the operations being timed (a third of the cost of recording
                // one, measured).
                for at in (0..map.len()).step_by(PAGE as usize) {
                    // SAFETY: `at` is inside the map; writing the byte that is there already.
                    unsafe { std::ptr::write_volatile(map.as_mut_ptr().add(at), map[at]) };
                }
                map
            },
            own: None,
        };
        let header = recorder.header();
        if header.magic != REGION_MAGIC || header.role != region.role as u8 || header.index != region.index {
            return Err(io::Error::other(format!(
                "{} has no region for {} {} at byte {}",
                path.display(),
                region.role.name(),
                region.index,
                region.offset
            )));
        }
        header.pid = std::process::id();
        Ok(recorder)
    }

    /// A history file of one worker, with room for `capacity` operations: for tests and
    /// benches. It is sealed when the recorder is dropped.
    pub fn create(path: &Path, role: Role, index: u32, capacity: usize) -> io::Result<Recorder> {
        let regions = create_file(path, &[(role, index, capacity)])?;
        let mut recorder = Recorder::open(path, &regions[0])?;
        recorder.own = Some(path.to_path_buf());
        Ok(recorder)
    }

    fn header(&mut self) -> &mut RegionHeader {
        // SAFETY: the map starts page-aligned and holds a RegionHeader, checked in `open`
        // before anything else reads it as one (every bit pattern is a valid RegionHeader).
        unsafe { &mut *(self.map.as_mut_ptr() as *mut RegionHeader) }
    }

    /// Notes that the worker is at the start gate.
    pub fn ready(&mut self) {
        self.header().ready_ns = clock::now_ns();
    }

    /// Notes that the worker finished its work normally.
    pub fn finish(&mut self) {
        self.header().finish_ns = clock::now_ns();
    }

    /// Starts an operation and returns it, to be filled in as it goes. `None` when the region
    /// is full, which the worker's capacity makes impossible for a correct worker.
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
        record.start_tick = clock::ticks();
        Some(record)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(path) = &self.own {
            let _ = seal_file(path);
        }
    }
}

fn as_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: T is a plain repr(C) struct or array without padding bytes left uninitialised.
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
///
/// A history holds two of these per sale under `queue`, so it is kept to 64 bytes: the parts
/// an operation may lack are stored with a sentinel for "none" (`NO_TIME`, `NO_VALUE`,
/// `NO_ENTRY`) and read through the methods of the same names, which give them as `Option`s.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// Index into `History::workers`.
    pub worker: u32,
    pub kind: Kind,
    pub outcome: Outcome,
    pub start: u64,
    read: u64,
    write: u64,
    end: u64,
    value: i64,
    written: i64,
    entry: u64,
}

const _: () = assert!(std::mem::size_of::<Op>() <= 64);

impl Op {
    /// A moment that never came. (A real one `u64::MAX` ns, 584 years, after the gate would
    /// read as none too.)
    const NO_TIME: u64 = u64::MAX;

    /// An operation with only its invocation: no read, write, end, value, written or entry.
    pub fn new(worker: u32, kind: Kind, outcome: Outcome, start: u64) -> Op {
        Op {
            worker,
            kind,
            outcome,
            start,
            read: Op::NO_TIME,
            write: Op::NO_TIME,
            end: Op::NO_TIME,
            value: NO_VALUE,
            written: NO_VALUE,
            entry: NO_ENTRY,
        }
    }

    fn time(t: u64) -> Option<u64> {
        (t != Op::NO_TIME).then_some(t)
    }

    fn value_of(v: i64) -> Option<i64> {
        (v != NO_VALUE).then_some(v)
    }

    /// When the stock was read (for a purchase).
    pub fn read(&self) -> Option<u64> {
        Op::time(self.read)
    }

    /// When the stock was written (for a sold purchase).
    pub fn write(&self) -> Option<u64> {
        Op::time(self.write)
    }

    /// Completion: after the unlock or the reply; none if it never completed.
    pub fn end(&self) -> Option<u64> {
        Op::time(self.end)
    }

    /// The stock value read: the ticket, for a sold purchase.
    pub fn value(&self) -> Option<i64> {
        Op::value_of(self.value)
    }

    /// The stock value written.
    pub fn written(&self) -> Option<i64> {
        Op::value_of(self.written)
    }

    /// The entry put or taken: producer index in the high 32 bits, its sequence number below.
    pub fn entry(&self) -> Option<u64> {
        (self.entry != NO_ENTRY).then_some(self.entry)
    }

    /// The latest moment the operation recorded: its completion, else its write, its read,
    /// or its invocation. The one definition of when an operation was last seen.
    pub fn latest(&self) -> u64 {
        [self.end(), self.write(), self.read()]
            .into_iter()
            .flatten()
            .fold(self.start, u64::max)
    }

    /// A purchase's latency, invocation to completion, in ns: `None` for any other kind and
    /// for a purchase that never completed. The one definition the checker's neighbours use.
    pub fn latency(&self) -> Option<u64> {
        if self.kind != Kind::Purchase || self.outcome == Outcome::Pending {
            return None;
        }
        self.end().map(|end| end.saturating_sub(self.start))
    }

    /// The same operation with its read set; `None` for none. So for the other `with_`s.
    #[must_use]
    pub fn with_read(mut self, read: Option<u64>) -> Op {
        self.read = read.unwrap_or(Op::NO_TIME);
        self
    }

    #[must_use]
    pub fn with_write(mut self, write: Option<u64>) -> Op {
        self.write = write.unwrap_or(Op::NO_TIME);
        self
    }

    #[must_use]
    pub fn with_end(mut self, end: Option<u64>) -> Op {
        self.end = end.unwrap_or(Op::NO_TIME);
        self
    }

    #[must_use]
    pub fn with_value(mut self, value: Option<i64>) -> Op {
        self.value = value.unwrap_or(NO_VALUE);
        self
    }

    #[must_use]
    pub fn with_written(mut self, written: Option<i64>) -> Op {
        self.written = written.unwrap_or(NO_VALUE);
        self
    }

    #[must_use]
    pub fn with_entry(mut self, entry: Option<u64>) -> Op {
        self.entry = entry.unwrap_or(NO_ENTRY);
        self
    }
}

/// As it was with `Option` fields: the sentinels are shown as `None`.
impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Op")
            .field("worker", &self.worker)
            .field("kind", &self.kind)
            .field("outcome", &self.outcome)
            .field("start", &self.start)
            .field("read", &self.read())
            .field("write", &self.write())
            .field("end", &self.end())
            .field("value", &self.value())
            .field("written", &self.written())
            .field("entry", &self.entry())
            .finish()
    }
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
    /// Reads a trial's history file. `gate_ns` is the moment the start gate opened, on
    /// `CLOCK_MONOTONIC`.
    pub fn read(path: &Path, gate_ns: u64) -> Result<History, HistoryError> {
        let io = |source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut history = History::default();
        history.parse(path, &mut BufReader::with_capacity(1 << 20, file), len, gate_ns)?;
        Ok(history)
    }

    /// Adds the workers and operations of a history file given as bytes.
    pub fn add_file(&mut self, path: &Path, bytes: &[u8], gate_ns: u64) -> Result<(), HistoryError> {
        self.parse(path, &mut Cursor::new(bytes), bytes.len() as u64, gate_ns)
    }

    /// Reads the file region by region, each up to its first unused record: what a worker
    /// never used is skipped, not read.
    fn parse<R: BufRead + Seek>(&mut self, path: &Path, r: &mut R, len: u64, gate_ns: u64) -> Result<(), HistoryError> {
        let corrupt = |why: String| HistoryError::Corrupt {
            path: path.to_path_buf(),
            why,
        };
        let failed = |source: io::Error| match source.kind() {
            io::ErrorKind::UnexpectedEof => corrupt("it ends in the middle of a record".into()),
            _ => HistoryError::Io {
                path: path.to_path_buf(),
                source,
            },
        };
        if len < PAGE {
            return Err(corrupt(format!("{len} bytes, shorter than its {PAGE}-byte header")));
        }
        let mut header = [0u8; HEADER_LEN];
        r.read_exact(&mut header).map_err(failed)?;
        if header[..8] != MAGIC {
            return Err(corrupt("it does not start with SIMHIST2".into()));
        }
        let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let version = u32_at(&header, 8);
        if version != VERSION {
            return Err(corrupt(format!("format version {version}, this sim reads {VERSION}")));
        }
        let regions = u32_at(&header, 12);
        let pair = |at: usize| Pair {
            ticks: u64_at(&header, at),
            ns: u64_at(&header, at + 8),
        };
        let (start, end) = (pair(16), pair(END_AT as usize));
        if end.ns == 0 {
            return Err(corrupt(
                "the run that wrote it never finished the trial (it is not sealed)".into(),
            ));
        }
        let timebase = Timebase { start, end };
        let rel = |t: u64| t.saturating_sub(gate_ns);
        let time = |t: u64| (t != 0).then(|| rel(timebase.ns(t)));
        let value = |v: u64| (v as i64 != NO_VALUE).then_some(v as i64);
        // Where the reader is, so that it skips forward within what it has buffered rather
        // than seek (which drops a BufReader's buffer): a region is often a page or two.
        let mut pos = HEADER_LEN as u64;
        let mut at = PAGE;
        for n in 0..regions {
            r.seek_relative((at - pos) as i64).map_err(failed)?;
            pos = at + HEADER_LEN as u64;
            let mut head = [0u8; HEADER_LEN];
            r.read_exact(&mut head)
                .map_err(|_| corrupt(format!("it ends before the region of worker {} of {regions}", n + 1)))?;
            if head[..8] != REGION_MAGIC {
                return Err(corrupt(format!(
                    "worker {} of {regions} has no region header at byte {at}",
                    n + 1
                )));
            }
            let role = Role::from_u8(head[8]).ok_or_else(|| corrupt(format!("unknown role {}", head[8])))?;
            let (index, pid, capacity) = (u32_at(&head, 12), u32_at(&head, 16), u64_at(&head, 24));
            let (ready, finish) = (u64_at(&head, 32), u64_at(&head, 40));
            let region_len = capacity
                .checked_mul(RECORD_LEN as u64)
                .and_then(|b| b.checked_add(HEADER_LEN as u64 + PAGE - 1))
                .map(|b| b / PAGE * PAGE)
                .filter(|&l| at.checked_add(l).is_some_and(|end| end <= len))
                .ok_or_else(|| {
                    corrupt(format!(
                        "{} {index} has room for {capacity} records, but the file ends before them",
                        role.name()
                    ))
                })?;
            at += region_len;
            if pid == 0 {
                continue; // a worker that never started
            }
            let worker = self.workers.len() as u32;
            self.workers.push(Worker {
                role,
                index,
                pid,
                ready_ns: ready as i64 - gate_ns as i64,
                finish_ns: (finish != 0).then(|| rel(finish)),
            });
            let mut chunk = [0u8; RECORD_LEN];
            for k in 0..capacity {
                r.read_exact(&mut chunk).map_err(failed)?;
                pos += RECORD_LEN as u64;
                if chunk[0] == 0 {
                    break; // the first slot never begun: the rest is unused
                }
                let field = |at: usize| u64_at(&chunk, at);
                let kind = Kind::from_u8(chunk[0]).ok_or_else(|| {
                    corrupt(format!(
                        "record {k} of {} {index} has unknown kind {}",
                        role.name(),
                        chunk[0]
                    ))
                })?;
                let outcome = Outcome::from_u8(chunk[1]).ok_or_else(|| {
                    corrupt(format!(
                        "record {k} of {} {index} has unknown outcome {}",
                        role.name(),
                        chunk[1]
                    ))
                })?;
                self.ops.push(
                    Op::new(worker, kind, outcome, rel(timebase.ns(field(8))))
                        .with_read(time(field(16)))
                        .with_write(time(field(24)))
                        .with_end(time(field(32)))
                        .with_value(value(field(40)))
                        .with_written(value(field(48)))
                        .with_entry((field(56) != NO_ENTRY).then(|| field(56))),
                );
            }
        }
        if at != len {
            return Err(corrupt(format!(
                "its {regions} regions end at byte {at} but the file holds {len} bytes"
            )));
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
    fn what_recorders_write_reads_back_even_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let gate = clock::now_ns();
        let regions = create_file(&path, &[(Role::Seller, 0, 1), (Role::Buyer, 3, 4), (Role::Buyer, 9, 2)]).unwrap();
        // In the order of their names, each on a page of its own.
        let order: Vec<_> = regions.iter().map(|r| (r.role, r.index, r.offset)).collect();
        assert_eq!(
            order,
            [(Role::Buyer, 3, 4096), (Role::Buyer, 9, 8192), (Role::Seller, 0, 12288)]
        );
        let mut rec = Recorder::open(&path, &regions[0]).unwrap();
        rec.ready();
        let op = rec.begin(Kind::Purchase).unwrap();
        op.value = 7;
        op.read_tick = clock::ticks();
        op.written = 6;
        op.write_tick = clock::ticks();
        op.end_tick = clock::ticks();
        op.outcome = Outcome::Sold as u8;
        let op = rec.begin(Kind::Purchase).unwrap();
        op.value = 6; // then the worker dies: no completion
        drop(rec);
        let mut seller = Recorder::open(&path, &regions[2]).unwrap();
        seller.ready();
        seller.finish();
        drop(seller);
        // Buyer 9 never started.
        assert!(matches!(History::read(&path, gate), Err(HistoryError::Corrupt { .. })));
        seal_file(&path).unwrap();

        let history = History::read(&path, gate).unwrap();
        let workers: Vec<_> = history
            .workers
            .iter()
            .map(|w| (w.role, w.index, w.finish_ns.is_some()))
            .collect();
        assert_eq!(workers, [(Role::Buyer, 3, false), (Role::Seller, 0, true)]);
        assert_eq!(history.workers[0].pid, std::process::id());
        assert_eq!(history.ops.len(), 2);
        let (sold, pending) = (history.ops[0], history.ops[1]);
        assert_eq!(
            (sold.outcome, sold.value(), sold.written()),
            (Outcome::Sold, Some(7), Some(6))
        );
        assert!(sold.start <= sold.read().unwrap() && sold.read().unwrap() <= sold.end().unwrap());
        assert!(sold.end().unwrap() < clock::now_ns() - gate);
        assert_eq!(
            (pending.outcome, pending.value(), pending.end()),
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
    fn a_recorder_refuses_a_region_that_is_not_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let regions = create_file(&path, &[(Role::Buyer, 0, 1)]).unwrap();
        let elsewhere = Region { index: 1, ..regions[0] };
        assert!(Recorder::open(&path, &elsewhere).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        drop(Recorder::create(&path, Role::Buyer, 0, 1).unwrap());
        let good = std::fs::read(&path).unwrap();
        let mut h = History::default();
        assert!(h.add_file(&path, &good, 0).is_ok());
        let p = Path::new("x.bin");
        assert!(h.add_file(p, b"short", 0).is_err());
        assert!(h.add_file(p, &[7u8; 5000], 0).is_err());
        let broken = |at: usize, byte: u8| {
            let mut bytes = good.clone();
            bytes[at] = byte;
            History::default().add_file(p, &bytes, 0)
        };
        assert!(matches!(broken(12, 2), Err(HistoryError::Corrupt { .. }))); // two regions, one there
        assert!(broken(4096 + 24, 200).is_err()); // room for 200 records in one page
        assert!(broken(4096 + 8, 42).is_err()); // unknown role
        assert!(broken(4096 + 64, 99).is_err()); // unknown kind
        assert!(History::default().add_file(p, &good[..good.len() - 1], 0).is_err());
    }
}
