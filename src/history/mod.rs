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

pub mod export;
pub mod import;
pub mod speed;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Cursor, Seek};
use std::mem::offset_of;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sys::clock::{self, Pair, Timebase, ticks};
use crate::sys::shm::{Mapping, PAGE, Pod, Zeroable, bytes_of, read_pod};

const MAGIC: [u8; 8] = *b"SIMHIST2";
const REGION_MAGIC: [u8; 8] = *b"SIMWORKR";
const VERSION: u32 = 2;
const HEADER_LEN: usize = 64;
const RECORD_LEN: usize = std::mem::size_of::<Record>();

/// The name of a trial's history file, in the trial's folder.
pub const FILE_NAME: &str = "history.bin";

/// The folder of a soak's segment files, in the trial's folder.
pub const SEGMENTS_DIR: &str = "segments";

/// The operations a soak's buyer records in one segment file at most (16 MiB of records):
/// it starts the next when one is full, or a second after it began (see
/// [`SEGMENT_SECONDS`]), whichever comes first.
pub const SEGMENT_OPS: usize = 1 << 18;

/// How long a soak's buyer records into one segment at most: the runner checks segments as
/// they are closed, so this is how far behind the buyers its count of purchases runs.
pub const SEGMENT_SECONDS: u64 = 1;

/// A segment file of a soak: a history file of one worker (as [`Recorder::create`] makes),
/// `buyer-0003-000017.bin` in [`SEGMENTS_DIR`], named `….part` while it is written and
/// renamed once sealed, so that a reader takes only whole ones.
pub fn segment_path(dir: &Path, role: Role, index: u32, seq: u64, sealed: bool) -> PathBuf {
    let ext = if sealed { "bin" } else { "part" };
    dir.join(format!("{}-{index:04}-{seq:06}.{ext}", role.name()))
}

/// `Record::value` and `Record::written` when there is none.
pub const NO_VALUE: i64 = i64::MIN;
/// `Record::entry` when the operation took no entry.
pub const NO_ENTRY: u64 = u64::MAX;

/// What a worker process is for. The number is how a history file stores it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::FromRepr,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
#[repr(u8)]
pub enum Role {
    /// Makes purchase attempts.
    Buyer = 1,
    /// Puts entries into the entry queue.
    Producer = 2,
    /// Owns the stock under `queue` and sells on the buyers' requests.
    Seller = 3,
    /// Holds the entries between producers and buyers.
    EntryQueue = 4,
    /// Holds the stock of the `manager` store.
    Manager = 5,
}

impl Role {
    /// Its name, as a person reads it: `buyer`, `entry-queue`.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// What an operation did. The number is how a history file stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::FromRepr)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
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

/// How an operation ended, as the process that made it was told. The number is how a
/// history file stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::FromRepr)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
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
    /// Purchase: the store refused the write, its lease's fencing token being older than
    /// one it had accepted; the buyer was told it failed.
    Fenced = 7,
    /// Purchase: every compare-and-set conflicted, up to `[transaction] retries`; the buyer
    /// gave up and was told it failed.
    GaveUp = 8,
}

/// One operation as it lies in a history file. Times are [`clock::ticks`], one clock for
/// every process of the machine; 0 where the moment never came. A worker fills it in as the
/// operation goes, through the setters: the bytes stay the file format's business.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Record {
    kind: u8,
    outcome: u8,
    /// [`Record::RECOVERED`] and other marks.
    flags: u8,
    _pad: u8,
    /// Conflicts retried before it ended.
    retries: u32,
    /// Invocation: before any lock or request.
    start_tick: u64,
    /// The stock was read (for a purchase).
    read_tick: u64,
    /// The stock was written (for a sold purchase).
    write_tick: u64,
    /// Completion: after the unlock or the reply.
    end_tick: u64,
    /// The stock value read: the ticket, for a sold purchase.
    value: i64,
    /// The stock value written.
    written: i64,
    /// The entry put or taken: producer index in the high 32 bits, its sequence number below.
    entry: u64,
}

// The record's layout is the file format (version 2): the reader takes records whole
// (`read_pod`), and these pin every field where other programs reading the file expect it.
const _: () = {
    assert!(RECORD_LEN == 64);
    assert!(offset_of!(Record, kind) == 0);
    assert!(offset_of!(Record, outcome) == 1);
    assert!(offset_of!(Record, flags) == 2);
    assert!(offset_of!(Record, retries) == 4);
    assert!(offset_of!(Record, start_tick) == 8);
    assert!(offset_of!(Record, read_tick) == 16);
    assert!(offset_of!(Record, write_tick) == 24);
    assert!(offset_of!(Record, end_tick) == 32);
    assert!(offset_of!(Record, value) == 40);
    assert!(offset_of!(Record, written) == 48);
    assert!(offset_of!(Record, entry) == 56);
};

impl Record {
    /// A flag: the lock was taken from a holder that had died (a robust mutex's
    /// `EOWNERDEAD`), and made consistent by this operation.
    pub const RECOVERED: u8 = 1;

    /// A record of `kind` with nothing in it yet, not even its invocation.
    pub fn new(kind: Kind) -> Record {
        Record {
            kind: kind as u8,
            outcome: Outcome::Pending as u8,
            flags: 0,
            _pad: 0,
            retries: 0,
            start_tick: 0,
            read_tick: 0,
            write_tick: 0,
            end_tick: 0,
            value: NO_VALUE,
            written: NO_VALUE,
            entry: NO_ENTRY,
        }
    }

    /// How it ended, as far as it got.
    pub fn outcome(&self) -> Outcome {
        Outcome::from_repr(self.outcome).unwrap_or(Outcome::Pending)
    }

    /// Notes how it ended, as the worker was told.
    #[inline]
    pub fn set_outcome(&mut self, outcome: Outcome) {
        self.outcome = outcome as u8;
    }

    /// Notes that the lock this operation took was recovered from a holder that died.
    pub fn mark_recovered(&mut self) {
        self.flags |= Record::RECOVERED;
    }

    /// Counts one more conflict retried.
    #[inline]
    pub fn count_retry(&mut self) {
        self.retries = self.retries.saturating_add(1);
    }

    /// The stock value read ([`NO_VALUE`] if none).
    pub fn value(&self) -> i64 {
        self.value
    }

    /// Notes the stock value read.
    #[inline]
    pub fn set_value(&mut self, value: i64) {
        self.value = value;
    }

    /// The stock value written ([`NO_VALUE`] if none).
    pub fn written(&self) -> i64 {
        self.written
    }

    /// Notes the stock value written, or about to be.
    #[inline]
    pub fn set_written(&mut self, written: i64) {
        self.written = written;
    }

    /// Notes the entry put or taken.
    pub fn set_entry(&mut self, entry: u64) {
        self.entry = entry;
    }

    /// When the stock was read, in ticks (0 if it was not).
    pub fn read_tick(&self) -> u64 {
        self.read_tick
    }

    /// When the stock was written, in ticks (0 if it was not).
    pub fn write_tick(&self) -> u64 {
        self.write_tick
    }

    /// Notes when the stock was read, as another process stamped it.
    pub fn set_read_tick(&mut self, tick: u64) {
        self.read_tick = tick;
    }

    /// Notes when the stock was written, as another process stamped it.
    pub fn set_write_tick(&mut self, tick: u64) {
        self.write_tick = tick;
    }

    /// Stamps now as the moment the stock was read.
    #[inline]
    pub fn stamp_read(&mut self) {
        self.read_tick = ticks();
    }

    /// Stamps now as the moment the stock was written.
    #[inline]
    pub fn stamp_write(&mut self) {
        self.write_tick = ticks();
    }

    /// Stamps the invocation again, now, so that no later instruction overtakes the stamp:
    /// for an operation whose work is a step in shared memory rather than a system call.
    #[inline]
    pub fn restamp_start_ordered(&mut self) {
        self.start_tick = clock::ticks_ordered();
    }

    /// Stamps now as the read, the write and the completion at once, after every earlier
    /// instruction: for a one-step operation in shared memory.
    #[inline]
    pub fn stamp_step_fenced(&mut self, wrote: bool) {
        let t = clock::ticks_fenced();
        self.read_tick = t;
        if wrote {
            self.write_tick = t;
        }
        self.end_tick = t;
    }

    /// Stamps now as the completion.
    #[inline]
    pub fn stamp_end(&mut self) {
        self.end_tick = ticks();
    }

    /// Notes the invocation at `tick`, stamped by the caller (a history written by a tool
    /// rather than lived).
    pub fn set_start_tick(&mut self, tick: u64) {
        self.start_tick = tick;
    }

    /// Notes the completion at `tick`, stamped by the caller.
    pub fn set_end_tick(&mut self, tick: u64) {
        self.end_tick = tick;
    }
}

/// The start of the file: how many regions follow, and the two clock pairs that turn the
/// records' ticks into nanoseconds (the second is 0 until the runner seals the file).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct FileHeader {
    magic: [u8; 8],
    version: u32,
    regions: u32,
    start: [u64; 2],
    end: [u64; 2],
    _rest: [u8; 16],
}

/// Where the end pair lies in the file.
const END_AT: u64 = offset_of!(FileHeader, end) as u64;

/// The start of a worker's region; `pid` is 0 until the worker opens it.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
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

// The headers' layouts are the file format too.
const _: () = {
    assert!(std::mem::size_of::<FileHeader>() == HEADER_LEN);
    assert!(std::mem::size_of::<RegionHeader>() == HEADER_LEN);
    assert!(offset_of!(FileHeader, version) == 8);
    assert!(offset_of!(FileHeader, regions) == 12);
    assert!(offset_of!(FileHeader, start) == 16);
    assert!(offset_of!(FileHeader, end) == 32);
    assert!(offset_of!(RegionHeader, role) == 8);
    assert!(offset_of!(RegionHeader, index) == 12);
    assert!(offset_of!(RegionHeader, pid) == 16);
    assert!(offset_of!(RegionHeader, capacity) == 24);
    assert!(offset_of!(RegionHeader, ready_ns) == 32);
    assert!(offset_of!(RegionHeader, finish_ns) == 40);
};

/// A worker's part of a trial's history file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// The worker it belongs to: what it is for,
    pub role: Role,
    /// and which of them.
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

/// The bytes a history file made by [`create_file`] takes, for workers of these capacities.
pub fn file_len(capacities: impl IntoIterator<Item = usize>) -> u64 {
    PAGE + capacities.into_iter().map(|c| Region::len(c as u64)).sum::<u64>()
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
    // Every block now, not sparse: on a full disk this fails here, with an error, rather than
    // killing a worker with SIGBUS at its first write to a page that has no block.
    if let Err(e) = crate::sys::shm::allocate(&file, offset) {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(io::Error::new(
            e.kind(),
            format!("allocating its {} bytes: {e}", offset),
        ));
    }
    let start = Pair::now();
    let header = FileHeader {
        magic: MAGIC,
        version: VERSION,
        regions: regions.len() as u32,
        start: [start.ticks, start.ns],
        end: [0, 0],
        _rest: [0; 16],
    };
    file.write_all_at(bytes_of(&header), 0)?;
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
        file.write_all_at(bytes_of(&header), region.offset)?;
    }
    Ok(regions)
}

/// Takes the timebase's second pair, once every worker of the trial has ended.
pub fn seal_file(path: &Path) -> io::Result<()> {
    let end = Pair::now();
    let file = OpenOptions::new().write(true).open(path)?;
    file.write_all_at(bytes_of(&[end.ticks, end.ns]), END_AT)
}

/// A worker's side: appends records to its memory-mapped region of the history file.
pub struct Recorder {
    map: Mapping,
    len: usize,
    capacity: usize,
    /// A file of its own, sealed when the recorder is dropped.
    own: Option<PathBuf>,
}

impl Recorder {
    /// Opens a worker's region of a history file made by [`create_file`].
    pub fn open(path: &Path, region: &Region) -> io::Result<Recorder> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut map = Mapping::range(&file, region.offset, Region::len(region.capacity) as usize)?;
        // Before the start gate: a first write to a page of the file costs a page fault and a
        // block allocation, which would otherwise land inside the operations being timed (a
        // third of the cost of recording one, measured).
        map.prefault();
        let mut recorder = Recorder {
            capacity: region.capacity as usize,
            len: 0,
            map,
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
        self.map.pod_mut(0)
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
    #[inline]
    pub fn begin(&mut self, kind: Kind) -> Option<&mut Record> {
        if self.len == self.capacity {
            return None;
        }
        let at = HEADER_LEN + self.len * RECORD_LEN;
        self.len += 1;
        let record: &mut Record = self.map.pod_mut(at);
        *record = Record::new(kind);
        record.start_tick = ticks();
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

/// One worker process of a trial, as its history file describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worker {
    /// What the worker was for.
    pub role: Role,
    /// Which of them.
    pub index: u32,
    /// Its process id.
    pub pid: u32,
    /// At the start gate, ns after the gate opened (negative: before it).
    pub ready_ns: i64,
    /// Finished its work normally, ns after the gate; `None` if it died or was ended first.
    pub finish_ns: Option<u64>,
}

impl Worker {
    /// `buyer 3`.
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
    /// What it did.
    pub kind: Kind,
    /// How it ended, as its process was told.
    pub outcome: Outcome,
    /// Conflicts it retried (`optimistic`), with [`Op::RECOVERED`] as its top bit.
    retries: u16,
    /// Its invocation, ns after the start gate.
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
            retries: 0,
            start,
            read: Op::NO_TIME,
            write: Op::NO_TIME,
            end: Op::NO_TIME,
            value: NO_VALUE,
            written: NO_VALUE,
            entry: NO_ENTRY,
        }
    }

    /// The bit of `retries` that says the operation recovered a lock from a dead holder.
    const RECOVERED: u16 = 1 << 15;

    /// Conflicts it retried before it ended (at most 32,767 are told apart).
    pub fn retries(&self) -> u32 {
        (self.retries & !Op::RECOVERED) as u32
    }

    /// Whether it took its lock from a holder that had died, and made it consistent.
    pub fn recovered(&self) -> bool {
        self.retries & Op::RECOVERED != 0
    }

    /// The same operation, having retried `retries` conflicts.
    pub fn with_retries(mut self, retries: u32) -> Op {
        self.retries = (self.retries & Op::RECOVERED) | retries.min(Op::RECOVERED as u32 - 1) as u16;
        self
    }

    /// The same operation, having recovered its lock from a dead holder (or not).
    pub fn with_recovered(mut self, recovered: bool) -> Op {
        self.retries = (self.retries & !Op::RECOVERED) | if recovered { Op::RECOVERED } else { 0 };
        self
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
    /// The same operation, written at `write`.
    pub fn with_write(mut self, write: Option<u64>) -> Op {
        self.write = write.unwrap_or(Op::NO_TIME);
        self
    }

    #[must_use]
    /// The same operation, completed at `end`.
    pub fn with_end(mut self, end: Option<u64>) -> Op {
        self.end = end.unwrap_or(Op::NO_TIME);
        self
    }

    #[must_use]
    /// The same operation, having read `value`.
    pub fn with_value(mut self, value: Option<i64>) -> Op {
        self.value = value.unwrap_or(NO_VALUE);
        self
    }

    #[must_use]
    /// The same operation, having written `written`.
    pub fn with_written(mut self, written: Option<i64>) -> Op {
        self.written = written.unwrap_or(NO_VALUE);
        self
    }

    #[must_use]
    /// The same operation, for `entry`.
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
    /// The trial's worker processes that started.
    pub workers: Vec<Worker>,
    /// Ordered by worker, then by the worker's own order.
    pub ops: Vec<Op>,
}

/// A history file that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be read.
    #[error("cannot read history file {path}: {source}")]
    Io {
        /// The history file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a history this sim wrote, or not a whole one.
    #[error(
        "{path} is not a sim history file ({why}); it may be truncated or from another program: run the scenario again to rebuild it"
    )]
    Corrupt {
        /// The history file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
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
        let mut bytes = [0u8; HEADER_LEN];
        r.read_exact(&mut bytes).map_err(failed)?;
        let header: FileHeader = read_pod(&bytes);
        if header.magic != MAGIC {
            return Err(corrupt("it does not start with SIMHIST2".into()));
        }
        let version = header.version;
        if version != VERSION {
            return Err(corrupt(format!("format version {version}, this sim reads {VERSION}")));
        }
        let regions = header.regions;
        let pair = |p: [u64; 2]| Pair { ticks: p[0], ns: p[1] };
        let (start, end) = (pair(header.start), pair(header.end));
        if end.ns == 0 {
            return Err(corrupt(
                "the run that wrote it never finished the trial (it is not sealed)".into(),
            ));
        }
        let timebase = Timebase { start, end };
        let rel = |t: u64| t.saturating_sub(gate_ns);
        let time = |t: u64| (t != 0).then(|| rel(timebase.ns(t)));
        let value = |v: i64| (v != NO_VALUE).then_some(v);
        // Where the reader is, so that it skips forward within what it has buffered rather
        // than seek (which drops a BufReader's buffer): a region is often a page or two.
        let mut pos = HEADER_LEN as u64;
        let mut at = PAGE;
        for n in 0..regions {
            r.seek_relative((at - pos) as i64).map_err(failed)?;
            pos = at + HEADER_LEN as u64;
            let mut bytes = [0u8; HEADER_LEN];
            r.read_exact(&mut bytes)
                .map_err(|_| corrupt(format!("it ends before the region of worker {} of {regions}", n + 1)))?;
            let head: RegionHeader = read_pod(&bytes);
            if head.magic != REGION_MAGIC {
                return Err(corrupt(format!(
                    "worker {} of {regions} has no region header at byte {at}",
                    n + 1
                )));
            }
            let role = Role::from_repr(head.role).ok_or_else(|| corrupt(format!("unknown role {}", head.role)))?;
            let (index, pid, capacity) = (head.index, head.pid, head.capacity);
            let (ready, finish) = (head.ready_ns, head.finish_ns);
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
                ready_ns: (ready as i64).saturating_sub(gate_ns as i64),
                finish_ns: (finish != 0).then(|| rel(finish)),
            });
            let mut chunk = [0u8; RECORD_LEN];
            for k in 0..capacity {
                r.read_exact(&mut chunk).map_err(failed)?;
                pos += RECORD_LEN as u64;
                let record: Record = read_pod(&chunk);
                if record.kind == 0 {
                    break; // the first slot never begun: the rest is unused
                }
                let kind = Kind::from_repr(record.kind).ok_or_else(|| {
                    corrupt(format!(
                        "record {k} of {} {index} has unknown kind {}",
                        role.name(),
                        record.kind
                    ))
                })?;
                let outcome = Outcome::from_repr(record.outcome).ok_or_else(|| {
                    corrupt(format!(
                        "record {k} of {} {index} has unknown outcome {}",
                        role.name(),
                        record.outcome
                    ))
                })?;
                self.ops.push(
                    Op::new(worker, kind, outcome, rel(timebase.ns(record.start_tick)))
                        .with_read(time(record.read_tick))
                        .with_write(time(record.write_tick))
                        .with_end(time(record.end_tick))
                        .with_value(value(record.value))
                        .with_written(value(record.written))
                        .with_entry((record.entry != NO_ENTRY).then_some(record.entry))
                        .with_retries(record.retries)
                        .with_recovered(record.flags & Record::RECOVERED != 0),
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
        op.set_value(7);
        op.stamp_read();
        op.set_written(6);
        op.stamp_write();
        op.stamp_end();
        op.set_outcome(Outcome::Sold);
        let op = rec.begin(Kind::Purchase).unwrap();
        op.set_value(6); // then the worker dies: no completion
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
