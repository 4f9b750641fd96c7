//! The layout of a history file on disk: a header page, then a page-aligned region per
//! worker, each a header and then 64-byte records. The structs here are the bytes themselves
//! (`#[repr(C)]`, their offsets pinned), so that the recorder writes them in place and the
//! reader takes them whole; the names of the files and folders a trial keeps them in.

use std::mem::offset_of;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Kind, Outcome, Role};
use crate::sys::clock::{self, ticks};
use crate::sys::shm::{PAGE, Pod, Zeroable};

pub(super) const MAGIC: [u8; 8] = *b"SIMHIST2";
pub(super) const REGION_MAGIC: [u8; 8] = *b"SIMWORKR";
pub(super) const VERSION: u32 = 2;
pub(super) const HEADER_LEN: usize = 64;
pub(super) const RECORD_LEN: usize = std::mem::size_of::<Record>();

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
///
/// [`Recorder::create`]: super::Recorder::create
pub fn segment_path(dir: &Path, role: Role, index: u32, seq: u64, sealed: bool) -> PathBuf {
    let ext = if sealed { "bin" } else { "part" };
    dir.join(format!("{}-{index:04}-{seq:06}.{ext}", role.name()))
}

/// `Record::value` and `Record::written` when there is none.
pub const NO_VALUE: i64 = i64::MIN;
/// `Record::entry` when the operation took no entry.
pub const NO_ENTRY: u64 = u64::MAX;

/// One operation as it lies in a history file. Times are [`clock::ticks`], one clock for
/// every process of the machine; 0 where the moment never came. A worker fills it in as the
/// operation goes, through the setters: the bytes stay the file format's business.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Record {
    pub(super) kind: u8,
    pub(super) outcome: u8,
    /// [`Record::RECOVERED`] and other marks.
    pub(super) flags: u8,
    pub(super) _pad: u8,
    /// Conflicts retried before it ended.
    pub(super) retries: u32,
    /// Invocation: before any lock or request.
    pub(super) start_tick: u64,
    /// The stock was read (for a purchase).
    pub(super) read_tick: u64,
    /// The stock was written (for a sold purchase).
    pub(super) write_tick: u64,
    /// Completion: after the unlock or the reply.
    pub(super) end_tick: u64,
    /// The stock value read: the ticket, for a sold purchase.
    pub(super) value: i64,
    /// The stock value written.
    pub(super) written: i64,
    /// The entry put or taken: producer index in the high 32 bits, its sequence number below.
    pub(super) entry: u64,
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
    /// A flag: the ticket is an id a service gave, and `value` a number made from it.
    pub const ID_TICKET: u8 = 2;
    /// A flag: an open loop's purchase, whose invocation is its planned send time; its read
    /// is when it was sent.
    pub const PLANNED: u8 = 4;

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

    /// Notes that the ticket is an id a service gave, not the stock it was sold from.
    pub fn mark_id_ticket(&mut self) {
        self.flags |= Record::ID_TICKET;
    }

    /// Notes that the invocation is an open loop's planned send time.
    pub fn mark_planned(&mut self) {
        self.flags |= Record::PLANNED;
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

    /// Its invocation, in ticks (0 before it was stamped).
    pub fn start_tick(&self) -> u64 {
        self.start_tick
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

    /// Stamps now as the moment the stock was read, after the load or the call that read it.
    #[inline]
    pub fn stamp_read(&mut self) {
        self.read_tick = clock::ticks_fenced();
    }

    /// Stamps now as the moment the stock was written: no verdict rests on it, so the
    /// cheapest stamp.
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

    /// Stamps now as the completion, after every step before it (the unlock, the reply).
    #[inline]
    pub fn stamp_end(&mut self) {
        self.end_tick = clock::ticks_fenced();
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

/// The start of the file: how many regions follow, the two clock pairs that turn the
/// records' ticks into nanoseconds (the second is 0 until the runner seals the file), and
/// the trial's clock uncertainty in nanoseconds (0 in a file whose run measured none: an
/// earlier sim's, whose header held zeroes there).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct FileHeader {
    pub(super) magic: [u8; 8],
    pub(super) version: u32,
    pub(super) regions: u32,
    pub(super) start: [u64; 2],
    pub(super) end: [u64; 2],
    pub(super) clock_uncertainty_ns: u64,
    pub(super) _rest: [u8; 8],
}

/// Where the end pair lies in the file.
pub(super) const END_AT: u64 = offset_of!(FileHeader, end) as u64;
/// Where the clock uncertainty lies in the file.
pub(super) const UNCERTAINTY_AT: u64 = offset_of!(FileHeader, clock_uncertainty_ns) as u64;

/// The start of a worker's region; `pid` is 0 until the worker opens it.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct RegionHeader {
    pub(super) magic: [u8; 8],
    pub(super) role: u8,
    pub(super) _pad: [u8; 3],
    pub(super) index: u32,
    pub(super) pid: u32,
    pub(super) _pad2: u32,
    pub(super) capacity: u64,
    pub(super) ready_ns: u64,
    pub(super) finish_ns: u64,
    pub(super) _rest: [u8; 16],
}

// The headers' layouts are the file format too.
const _: () = {
    assert!(std::mem::size_of::<FileHeader>() == HEADER_LEN);
    assert!(std::mem::size_of::<RegionHeader>() == HEADER_LEN);
    assert!(offset_of!(FileHeader, version) == 8);
    assert!(offset_of!(FileHeader, regions) == 12);
    assert!(offset_of!(FileHeader, start) == 16);
    assert!(offset_of!(FileHeader, end) == 32);
    assert!(offset_of!(FileHeader, clock_uncertainty_ns) == 48);
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
    pub(super) fn len(capacity: u64) -> u64 {
        (HEADER_LEN as u64 + capacity * RECORD_LEN as u64).div_ceil(PAGE) * PAGE
    }
}

/// The bytes a history file made by [`create_file`] takes, for workers of these capacities.
///
/// [`create_file`]: super::create_file
pub fn file_len(capacities: impl IntoIterator<Item = usize>) -> u64 {
    PAGE + capacities.into_iter().map(|c| Region::len(c as u64)).sum::<u64>()
}
