//! What is written into a history file: the runner makes it ([`create_file`]) before any
//! worker starts and seals it ([`seal_file`]) once all have ended; in between each worker
//! appends its operations to its own region through a [`Recorder`].

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::format::{
    END_AT, FileHeader, HEADER_LEN, MAGIC, RECORD_LEN, REGION_MAGIC, RegionHeader, UNCERTAINTY_AT, VERSION,
};
use super::{Kind, Record, Region, Role};
use crate::sys::clock::{self, Pair, Timebase};
use crate::sys::shm::{Mapping, PAGE, bytes_of, read_pod};

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
        clock_uncertainty_ns: 0,
        _rest: [0; 8],
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

/// Notes in the header of the history file at `path` the trial's clock uncertainty, measured
/// as `ticks` of [`clock::ticks`], and returns it in nanoseconds (rounded up): converted at
/// the counter's rate from the header's first pair to now, so after the workers started.
pub fn note_clock_uncertainty(path: &Path, ticks: u64) -> io::Result<u64> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut bytes = [0u8; HEADER_LEN];
    file.read_exact_at(&mut bytes, 0)?;
    let header: FileHeader = read_pod(&bytes);
    let start = Pair {
        ticks: header.start[0],
        ns: header.start[1],
    };
    let line = Timebase {
        start,
        end: Pair::now(),
    };
    let ns = line.ns(start.ticks.saturating_add(ticks)).saturating_sub(start.ns) + 1;
    file.write_all_at(bytes_of(&ns), UNCERTAINTY_AT)?;
    Ok(ns)
}

/// Notes in the header of the history file at `path` a clock uncertainty of `ns`
/// nanoseconds (at least 1: 0 stands for none measured), and returns it.
pub fn note_clock_uncertainty_ns(path: &Path, ns: u64) -> io::Result<u64> {
    let ns = ns.max(1);
    OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all_at(bytes_of(&ns), UNCERTAINTY_AT)?;
    Ok(ns)
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
        record.start_tick = clock::ticks_ordered();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::FILE_NAME;

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
}
