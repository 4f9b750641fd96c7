//! Files that sim makes or rewrites inside an output folder, made so that a symbolic link
//! planted there is never followed: a run as root would otherwise write through it into any
//! file on the machine. A file rewritten whole is written into a new file beside it (made
//! with `O_CREAT | O_EXCL`, which refuses to follow a link) and renamed over it, which
//! replaces a link rather than writing through it; a file opened in place is opened with
//! `O_NOFOLLOW`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Opens `path` to read and write in place, making it if `create`; a symbolic link there is
/// refused (`ELOOP`), never followed: see [`is_link_refused`].
pub fn open_in_place(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens `path` to add lines at its end, making it if needed, with `O_APPEND`: each line
/// written with one `write` lands whole after the others, whichever process writes it. A
/// symbolic link there is refused, never followed.
pub fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Makes `path` anew (removing a file or link that is there) to write into: a symbolic link
/// is removed, never followed.
pub fn create(path: &Path) -> io::Result<File> {
    remove_if_there(path)?;
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Writes `bytes` to `path` whole or not at all: into `.NAME.tmp` beside it, then renamed over
/// it. A link at either name is replaced, never followed; on an error (a full disk) the file
/// beside it is removed again and `path` is left as it was.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let aside = aside(path);
    let written = create(&aside)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| std::fs::rename(&aside, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&aside);
    }
    written
}

/// Whether `e` is the refusal of a symbolic link by [`open_in_place`] or [`open_log`].
pub fn is_link_refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// `.NAME.tmp` in the folder of `path`.
fn aside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp"))
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with `precious.txt` outside it and `link` inside pointing at it.
    fn planted() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("precious.txt");
        std::fs::write(&precious, "precious").unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        (dir, precious, out)
    }

    #[test]
    fn no_way_of_writing_follows_a_planted_link() {
        let (_dir, precious, out) = planted();
        let link = out.join("results.json");
        std::os::unix::fs::symlink(&precious, &link).unwrap();
        std::os::unix::fs::symlink(&precious, out.join(".results.json.tmp")).unwrap();
        replace(&link, b"written by sim").unwrap();
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "written by sim");
        assert!(!std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());

        let marker = out.join(".sim-run");
        std::os::unix::fs::symlink(&precious, &marker).unwrap();
        let e = open_in_place(&marker, true).unwrap_err();
        assert!(is_link_refused(&e), "{e}");
        let log = out.join("workers.log");
        std::os::unix::fs::symlink(&precious, &log).unwrap();
        assert!(is_link_refused(&open_log(&log).unwrap_err()));
        let export = out.join("history.jsonl");
        std::os::unix::fs::symlink(&precious, &export).unwrap();
        create(&export).unwrap().write_all(b"ops").unwrap();
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
    }

    #[test]
    fn a_log_is_opened_to_append() {
        let (_dir, _precious, out) = planted();
        let path = out.join("workers.log");
        let file = open_log(&path).unwrap();
        use std::os::fd::AsRawFd;
        let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd())).unwrap();
        let flags = fdinfo.lines().find_map(|l| l.strip_prefix("flags:")).unwrap().trim();
        let flags = u32::from_str_radix(flags, 8).unwrap();
        assert_ne!(flags & libc::O_APPEND as u32, 0, "{fdinfo}");
    }
}
