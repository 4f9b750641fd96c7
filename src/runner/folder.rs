//! The output folder of a run: claimed by one sim at a time, cleared of the earlier run's
//! files only once claimed, and checked for room before the first trial.
//!
//! The claim is an exclusive `flock` on the folder's marker file, which sim writes into every
//! folder it makes; the holder writes its pid into the marker, so that a second run into the
//! folder names the first. The kernel drops the lock when its holder exits however it
//! exits, so a killed run never leaves the folder locked. Unclaimed, two runs into one
//! folder would delete each other's trials mid-trial.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Written into every output folder sim makes, so that it never overwrites anything else;
/// locked by the run (or report) that is writing into the folder.
pub const MARKER: &str = ".sim-run";

/// What a run leaves in its output folder besides the marker, removed before the next run
/// into it: the trials, the results and report made from them, and a store's server folder.
const EARLIER_RUN: [&str; 4] = ["trials", "index.html", "results.json", "server"];

/// The first line of the marker, before the holder's.
const MARKER_TEXT: &str = "written by sim: `sim run` may replace what is in this folder\n";

/// The claim of one sim on an output folder: held until dropped (or the process ends).
#[derive(Debug)]
pub struct FolderLock {
    file: File,
}

impl FolderLock {
    /// Claims `out` for a run: makes it if needed (refusing a folder of files sim did not
    /// write), locks it, and only then removes what the earlier run left.
    pub fn for_run(out: &Path) -> Result<FolderLock> {
        if out.exists() {
            if !out.is_dir() {
                bail!(
                    "--out {} is a file, not a folder: give a folder for the report",
                    out.display()
                );
            }
            let empty = std::fs::read_dir(out)
                .with_context(|| format!("reading the output folder {}", out.display()))?
                .next()
                .is_none();
            if !out.join(MARKER).exists() && !empty {
                bail!(
                    "{} holds files that sim did not write; refusing to overwrite them: give another --out, or empty that folder",
                    out.display()
                );
            }
        }
        std::fs::create_dir_all(out).with_context(|| format!("creating the output folder {}", out.display()))?;
        let lock = FolderLock::take(out, "sim run", true)?;
        for old in EARLIER_RUN {
            let path = out.join(old);
            let removed = match path.is_dir() {
                true => std::fs::remove_dir_all(&path),
                false if path.exists() => std::fs::remove_file(&path),
                false => Ok(()),
            };
            removed.with_context(|| format!("removing the earlier run's {}", path.display()))?;
        }
        Ok(lock)
    }

    /// Claims the folder of an earlier run to rewrite its report: refused while a run holds
    /// it. A folder without a marker (copied by hand) is not locked: `None`.
    pub fn for_report(out: &Path) -> Result<Option<FolderLock>> {
        match out.join(MARKER).exists() {
            true => FolderLock::take(out, "sim report", false).map(Some),
            false => Ok(None),
        }
    }

    /// Locks the marker of `out` (making it if `create`) and writes `who` and the pid into it.
    fn take(out: &Path, who: &str, create: bool) -> Result<FolderLock> {
        let path = out.join(MARKER);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if fs2::FileExt::try_lock_exclusive(&file).is_err() {
            bail!(
                "{} is in use by {}: wait for it to end, or give another folder",
                out.display(),
                holder(&mut file)
            );
        }
        let text = format!(
            "{MARKER_TEXT}pid {}, {who} since {}\n",
            std::process::id(),
            jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ")
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(FolderLock { file })
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = fs2::FileExt::unlock(&self.file);
    }
}

/// Who holds a locked marker, as its holder wrote it: "another sim (pid 123, sim run since
/// …)". The holder writes it just after locking, so a moment may pass before it is there.
fn holder(file: &mut File) -> String {
    for _ in 0..20 {
        let mut text = String::new();
        let _ = file.seek(SeekFrom::Start(0));
        let _ = file.read_to_string(&mut text);
        if let Some(line) = text.lines().find(|l| l.starts_with("pid ")) {
            return format!("another sim ({line})");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    "another sim (its pid is not written yet)".into()
}
