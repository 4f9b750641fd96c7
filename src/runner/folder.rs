//! The output folder of a run: claimed by one sim at a time, cleared of the earlier run's
//! files only once claimed, and checked for room before the first trial.
//!
//! The claim is an exclusive `flock` on the folder's marker file, which sim writes into every
//! folder it makes; the holder writes its pid into the marker, so that a second run into the
//! folder names the first. The kernel drops the lock when its holder exits however it
//! exits, so a killed run never leaves the folder locked. Unclaimed, two runs into one
//! folder would delete each other's trials mid-trial.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Written into every output folder sim makes, so that it never overwrites anything else;
/// locked by the run (or report) that is writing into the folder.
pub const MARKER: &str = ".sim-run";

/// What a run leaves in its output folder besides the marker, removed before the next run
/// into it: the trials, the results and report made from them, a store's server folder, and
/// the page `sim compare` writes beside them.
const EARLIER_RUN: [&str; 5] = ["trials", "index.html", "results.json", SERVER_DIR, "compare.html"];

/// The folder a store's throwaway server keeps its files in.
pub const SERVER_DIR: &str = "server";

/// What sim writes aside and renames into place (see `sys::file::replace`): left only by a
/// sim that was killed in between, and no file of the user's.
const WRITTEN_ASIDE: [&str; 3] = [".index.html.tmp", ".results.json.tmp", ".compare.html.tmp"];

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
            let marked = std::fs::symlink_metadata(out.join(MARKER)).is_ok();
            if let Some(stranger) = stranger(out, marked)? {
                match marked {
                    true => bail!(
                        "{} holds {}, which no sim run wrote; refusing to remove it or to keep it beside a new run: \
                         move it out of the folder, or give another --out",
                        out.display(),
                        out.join(stranger).display()
                    ),
                    false => bail!(
                        "{} holds files that sim did not write ({} among them); refusing to overwrite them: give another \
                         --out, or empty that folder",
                        out.display(),
                        out.join(stranger).display()
                    ),
                }
            }
        }
        std::fs::create_dir_all(out).with_context(|| format!("creating the output folder {}", out.display()))?;
        let lock = FolderLock::take(out, "sim run", true)?;
        for old in EARLIER_RUN.iter().chain(&WRITTEN_ASIDE) {
            let path = out.join(old);
            // A link is removed, never followed.
            let removed = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
                Ok(_) => std::fs::remove_file(&path),
                Err(_) => Ok(()),
            };
            removed.with_context(|| format!("removing the earlier run's {}", path.display()))?;
        }
        Ok(lock)
    }

    /// Claims the folder of an earlier run for `who` (`sim report`, `sim check`) to rewrite
    /// its results and report: refused while a run holds it. A folder without a marker
    /// (copied by hand) is not locked: `None`.
    pub fn for_report(out: &Path, who: &str) -> Result<Option<FolderLock>> {
        match std::fs::symlink_metadata(out.join(MARKER)) {
            Ok(_) => FolderLock::take(out, who, false).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Locks the marker of `out` (making it if `create`) and writes `who` and the pid into it.
    fn take(out: &Path, who: &str, create: bool) -> Result<FolderLock> {
        let path = out.join(MARKER);
        let mut file = crate::sys::file::open_in_place(&path, create).map_err(|e| {
            match crate::sys::file::is_link_refused(&e) {
                true => anyhow::anyhow!(
                    "{} is a symbolic link, where sim keeps the folder's lock file: sim never writes through a link in \
                 its output folder; remove the link, or give another folder",
                    path.display()
                ),
                false => anyhow::Error::new(e).context(format!("opening {}", path.display())),
            }
        })?;
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

/// The first entry of `out` that no sim run wrote, if there is one: anything but an earlier
/// run's files and the marker in a folder that is `marked`, anything at all in one that is not.
fn stranger(out: &Path, marked: bool) -> Result<Option<std::ffi::OsString>> {
    let entries = std::fs::read_dir(out).with_context(|| format!("reading the output folder {}", out.display()))?;
    for entry in entries {
        let name = entry
            .with_context(|| format!("reading the output folder {}", out.display()))?
            .file_name();
        let ours = marked && (name == MARKER || EARLIER_RUN.iter().chain(&WRITTEN_ASIDE).any(|&n| name == n));
        if !ours {
            return Ok(Some(name));
        }
    }
    Ok(None)
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
