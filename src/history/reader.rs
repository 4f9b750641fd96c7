//! Reads a history file back into a [`History`]: region by region, each up to its first
//! unused record, the ticks turned into nanoseconds after the start gate. A file that is not
//! a whole, sealed history of this version is an error that says what is wrong, never a
//! panic.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Seek};
use std::path::{Path, PathBuf};

use super::format::{FileHeader, HEADER_LEN, MAGIC, RECORD_LEN, REGION_MAGIC, RegionHeader, VERSION};
use super::{History, Kind, NO_ENTRY, NO_VALUE, Op, Outcome, Record, Role, Worker};
use crate::sys::clock::{Pair, Timebase};
use crate::sys::shm::{PAGE, read_pod};

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

/// The clock uncertainty the history file at `path` holds, in nanoseconds: `None` for a file
/// whose run measured none (an earlier sim's, or one written by a test).
pub fn clock_uncertainty(path: &Path) -> Result<Option<u64>, HistoryError> {
    use std::os::unix::fs::FileExt;
    let mut bytes = [0u8; HEADER_LEN];
    File::open(path)
        .and_then(|f| f.read_exact_at(&mut bytes, 0))
        .map_err(|source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let header: FileHeader = read_pod(&bytes);
    if header.magic != MAGIC {
        return Err(HistoryError::Corrupt {
            path: path.to_path_buf(),
            why: "it does not start with SIMHIST2".into(),
        });
    }
    Ok((header.clock_uncertainty_ns != 0).then_some(header.clock_uncertainty_ns))
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
        let mut file = FileReader { path, r, len, pos: 0 };
        let (regions, timebase) = file.header()?;
        let times = Times { timebase, gate_ns };
        let mut at = PAGE;
        for n in 0..regions {
            let region = file.region(at, n, regions)?;
            at += region.len;
            if region.pid == 0 {
                continue; // a worker that never started
            }
            let worker = self.workers.len() as u32;
            self.workers.push(Worker {
                role: region.role,
                index: region.index,
                pid: region.pid,
                ready_ns: (region.ready_ns as i64).saturating_sub(gate_ns as i64),
                finish_ns: (region.finish_ns != 0).then(|| times.after_gate(region.finish_ns)),
            });
            file.records(&region, worker, &times, &mut self.ops)?;
        }
        if at != len {
            return Err(file.corrupt(format!(
                "its {regions} regions end at byte {at} but the file holds {len} bytes"
            )));
        }
        Ok(())
    }
}

/// A history file being read, and where the reader is in it.
struct FileReader<'a, R> {
    path: &'a Path,
    r: &'a mut R,
    /// The file's length in bytes.
    len: u64,
    /// Where the reader is, so that it skips forward within what it has buffered rather
    /// than seek (which drops a BufReader's buffer): a region is often a page or two.
    pos: u64,
}

/// A worker's region, as its header describes it.
struct RegionRead {
    role: Role,
    index: u32,
    /// 0 if the worker never started.
    pid: u32,
    capacity: u64,
    ready_ns: u64,
    finish_ns: u64,
    /// Its length in the file: header and records, in whole pages.
    len: u64,
}

/// How the records' ticks become nanoseconds after the start gate.
struct Times {
    timebase: Timebase,
    gate_ns: u64,
}

impl Times {
    fn after_gate(&self, ns: u64) -> u64 {
        ns.saturating_sub(self.gate_ns)
    }

    /// A moment stamped in ticks; `None` for 0, a moment that never came.
    fn of(&self, ticks: u64) -> Option<u64> {
        (ticks != 0).then(|| self.after_gate(self.timebase.ns(ticks)))
    }
}

impl<R: BufRead + Seek> FileReader<'_, R> {
    fn corrupt(&self, why: String) -> HistoryError {
        HistoryError::Corrupt {
            path: self.path.to_path_buf(),
            why,
        }
    }

    /// A read that failed: a file that ends too soon is corrupt, anything else is the
    /// system's error.
    fn failed(&self, source: io::Error) -> HistoryError {
        match source.kind() {
            io::ErrorKind::UnexpectedEof => self.corrupt("it ends in the middle of a record".into()),
            _ => HistoryError::Io {
                path: self.path.to_path_buf(),
                source,
            },
        }
    }

    /// The file's header: how many regions follow, and the timebase of a sealed file.
    fn header(&mut self) -> Result<(u32, Timebase), HistoryError> {
        let len = self.len;
        if len < PAGE {
            return Err(self.corrupt(format!("{len} bytes, shorter than its {PAGE}-byte header")));
        }
        let mut bytes = [0u8; HEADER_LEN];
        self.r.read_exact(&mut bytes).map_err(|e| self.failed(e))?;
        self.pos = HEADER_LEN as u64;
        let header: FileHeader = read_pod(&bytes);
        if header.magic != MAGIC {
            return Err(self.corrupt("it does not start with SIMHIST2".into()));
        }
        let version = header.version;
        if version != VERSION {
            return Err(self.corrupt(format!("format version {version}, this sim reads {VERSION}")));
        }
        let pair = |p: [u64; 2]| Pair { ticks: p[0], ns: p[1] };
        let (start, end) = (pair(header.start), pair(header.end));
        if end.ns == 0 {
            return Err(self.corrupt("the run that wrote it never finished the trial (it is not sealed)".into()));
        }
        Ok((header.regions, Timebase { start, end }))
    }

    /// The header of the `n`th of `regions` regions, which starts at byte `at`; leaves the
    /// reader at its first record.
    fn region(&mut self, at: u64, n: u32, regions: u32) -> Result<RegionRead, HistoryError> {
        self.r
            .seek_relative((at - self.pos) as i64)
            .map_err(|e| self.failed(e))?;
        self.pos = at + HEADER_LEN as u64;
        let mut bytes = [0u8; HEADER_LEN];
        self.r
            .read_exact(&mut bytes)
            .map_err(|_| self.corrupt(format!("it ends before the region of worker {} of {regions}", n + 1)))?;
        let head: RegionHeader = read_pod(&bytes);
        if head.magic != REGION_MAGIC {
            return Err(self.corrupt(format!(
                "worker {} of {regions} has no region header at byte {at}",
                n + 1
            )));
        }
        let role = Role::from_repr(head.role).ok_or_else(|| self.corrupt(format!("unknown role {}", head.role)))?;
        let (index, capacity) = (head.index, head.capacity);
        let len = capacity
            .checked_mul(RECORD_LEN as u64)
            .and_then(|b| b.checked_add(HEADER_LEN as u64 + PAGE - 1))
            .map(|b| b / PAGE * PAGE)
            .filter(|&l| at.checked_add(l).is_some_and(|end| end <= self.len))
            .ok_or_else(|| {
                self.corrupt(format!(
                    "{} {index} has room for {capacity} records, but the file ends before them",
                    role.name()
                ))
            })?;
        Ok(RegionRead {
            role,
            index,
            pid: head.pid,
            capacity,
            ready_ns: head.ready_ns,
            finish_ns: head.finish_ns,
            len,
        })
    }

    /// The operations of a region's records, up to the first never begun, as those of
    /// `worker`.
    fn records(
        &mut self,
        region: &RegionRead,
        worker: u32,
        times: &Times,
        ops: &mut Vec<Op>,
    ) -> Result<(), HistoryError> {
        let value = |v: i64| (v != NO_VALUE).then_some(v);
        let (role, index) = (region.role, region.index);
        let mut chunk = [0u8; RECORD_LEN];
        for k in 0..region.capacity {
            self.r.read_exact(&mut chunk).map_err(|e| self.failed(e))?;
            self.pos += RECORD_LEN as u64;
            let record: Record = read_pod(&chunk);
            if record.kind == 0 {
                break; // the first slot never begun: the rest is unused
            }
            let kind = Kind::from_repr(record.kind).ok_or_else(|| {
                self.corrupt(format!(
                    "record {k} of {} {index} has unknown kind {}",
                    role.name(),
                    record.kind
                ))
            })?;
            let outcome = Outcome::from_repr(record.outcome).ok_or_else(|| {
                self.corrupt(format!(
                    "record {k} of {} {index} has unknown outcome {}",
                    role.name(),
                    record.outcome
                ))
            })?;
            // A purchase or sale that never completed told its buyer nothing, whatever it had
            // recorded before its process died or its store was lost inside it: every reader
            // of the history (both checkers, the export, the report) takes it as indeterminate.
            let outcome = match (kind, times.of(record.end_tick)) {
                (Kind::Purchase | Kind::Sale, None) if outcome != Outcome::Unknown => Outcome::Pending,
                _ => outcome,
            };
            ops.push(
                Op::new(
                    worker,
                    kind,
                    outcome,
                    times.after_gate(times.timebase.ns(record.start_tick)),
                )
                .with_read(times.of(record.read_tick))
                .with_write(times.of(record.write_tick))
                .with_end(times.of(record.end_tick))
                .with_value(value(record.value))
                .with_written(value(record.written))
                .with_entry((record.entry != NO_ENTRY).then_some(record.entry))
                .with_retries(record.retries)
                .with_recovered(record.flags & Record::RECOVERED != 0)
                .with_id_ticket(record.flags & Record::ID_TICKET != 0)
                .with_planned(record.flags & Record::PLANNED != 0),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{FILE_NAME, Recorder, create_file, seal_file};
    use crate::sys::clock;

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
        op.set_value(6);
        op.set_outcome(Outcome::Sold); // then the worker dies: no completion
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
