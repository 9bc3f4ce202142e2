//! `sotto shred`: overwrites the free space of the file system holding a profile, so that
//! blocks of deleted files (old databases, messages) are overwritten with random data.
//!
//! On SSDs and copy-on-write or journaling file systems this is best effort: the drive or
//! file system may keep old copies where no file write reaches them.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The largest file written; free space is filled with as many as needed.
const FILE_SIZE: u64 = 1 << 30;
/// The size of each write, refilled with fresh random bytes each time.
const CHUNK_SIZE: usize = 1 << 20;
/// The progress bar's layout.
const TEMPLATE: &str =
    "{spinner} {bytes}/{total_bytes} [{wide_bar}] {binary_bytes_per_sec}, {eta} left";

/// What a shred run wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShredReport {
    /// Bytes of random data written and synced to disk (and freed again).
    pub bytes_written: u64,
    /// How many temporary files held them.
    pub files: u32,
}

/// Why a shred run failed. The temporary directory is removed in any case, unless
/// [`ShredError::Remove`] says otherwise. Each I/O variant holds the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum ShredError {
    /// The free space of the file system holding the profile directory could not be queried.
    #[error("could not find out the free space at {}: {}", .0.display(), reason(.1))]
    Space(PathBuf, #[source] io::Error),
    /// The temporary directory could not be created in the profile directory.
    #[error("could not write to the profile directory {}: {}", .0.display(), reason(.1))]
    Create(PathBuf, #[source] io::Error),
    /// Writing or syncing a temporary file failed other than by the disk filling up.
    #[error("could not write {}: {}", .0.display(), reason(.1))]
    Write(PathBuf, #[source] io::Error),
    /// The temporary directory could not be removed, so its space is still taken.
    #[error("could not remove {}: {}; delete it to free the space", .0.display(), reason(.1))]
    Remove(PathBuf, #[source] io::Error),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// An operating system error in words, without its number where a plain phrase exists.
fn reason(err: &io::Error) -> String {
    match err.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::NotFound => "no such file or directory".into(),
        ErrorKind::NotADirectory => "not a directory".into(),
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only".into(),
        ErrorKind::StorageFull => "no space left on device".into(),
        _ => err.to_string(),
    }
}

/// Whether `err` means the file system is full: the expected end of a run.
fn is_disk_full(err: &io::Error) -> bool {
    err.kind() == ErrorKind::StorageFull || (cfg!(unix) && err.raw_os_error() == Some(28))
}

/// Removes the temporary directory when dropped, so that nothing stays behind on errors.
struct TempDir {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Overwrites the free space of the file system holding `dir` with random data, then frees
/// it again: writes files of up to 1 GiB, each synced to disk, into a temporary subdirectory
/// `dir/.shred-<random hex>` until `limit` bytes are written (when given: a bounded run, or
/// tests), the free space found at the start is used up, or the disk is full (the expected
/// end, not an error); then removes the subdirectory, also when an error ends the run.
/// `progress` gets the target as its length and advances with every write; finishing or
/// clearing it is left to the caller.
pub fn shred_free_space(
    dir: &Path,
    limit: Option<u64>,
    progress: &ProgressBar,
) -> Result<ShredReport, ShredError> {
    let available =
        fs4::available_space(dir).map_err(|e| ShredError::Space(dir.to_path_buf(), e))?;
    let target = limit.map_or(available, |l| l.min(available));
    progress.set_length(target);
    let mut report = ShredReport::default();
    if target == 0 {
        return Ok(report);
    }
    let suffix = sotto_core::crypto::random_array::<8>().map_err(|_| ShredError::Random)?;
    let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!(".shred-{hex}"));
    fs::create_dir(&path).map_err(|e| ShredError::Create(dir.to_path_buf(), e))?;
    let mut tmp = TempDir { path, armed: true };
    let mut buf = vec![0u8; CHUNK_SIZE];
    while report.bytes_written < target {
        let path = tmp.path.join(format!("{:06}", report.files));
        let size = FILE_SIZE.min(target - report.bytes_written);
        let written = fill_file(&path, size, &mut buf, progress)?;
        report.files += u32::from(written > 0);
        report.bytes_written += written;
        if written < size {
            break; // The disk is full.
        }
    }
    tmp.armed = false; // Removed here, to report failure.
    fs::remove_dir_all(&tmp.path).map_err(|e| ShredError::Remove(tmp.path.clone(), e))?;
    Ok(report)
}

/// Writes `size` random bytes to a new file at `path`, or fewer if the disk fills up, and
/// syncs it. Returns the bytes written.
fn fill_file(
    path: &Path,
    size: u64,
    buf: &mut [u8],
    progress: &ProgressBar,
) -> Result<u64, ShredError> {
    let write_err = |e| ShredError::Write(path.to_path_buf(), e);
    let mut file = File::create_new(path).map_err(write_err)?;
    let mut written = 0u64;
    'file: while written < size {
        let len = usize::try_from(size - written).map_or(buf.len(), |r| r.min(buf.len()));
        let chunk = &mut buf[..len];
        sotto_core::crypto::fill_random(chunk).map_err(|_| ShredError::Random)?;
        let mut rest: &[u8] = chunk;
        while !rest.is_empty() {
            match file.write(rest) {
                Ok(0) => break 'file,
                Ok(n) => {
                    rest = &rest[n..];
                    written += n as u64;
                    progress.inc(n as u64);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_disk_full(&e) => break 'file,
                Err(e) => return Err(write_err(e)),
            }
        }
    }
    match file.sync_all() {
        Err(e) if !is_disk_full(&e) => Err(write_err(e)),
        _ => Ok(written),
    }
}

/// A progress bar for [`shred_free_space`] on stderr, showing bytes written, the total, a
/// bar and the time left; hidden when `hidden` (for `--json` or when nobody watches).
pub fn progress_bar(hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeSet;

    fn entries(dir: &Path) -> BTreeSet<PathBuf> {
        let names = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
        names.collect()
    }

    #[test]
    fn writes_exactly_the_limit_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("profile.db"), b"keep").unwrap();
        let before = entries(dir.path());
        for limit in [0, 3 << 20, (3 << 20) + 17] {
            let bar = progress_bar(true);
            let report = shred_free_space(dir.path(), Some(limit), &bar).unwrap();
            let files = u32::from(limit > 0);
            assert_eq!((report.bytes_written, report.files), (limit, files));
            assert_eq!((bar.position(), bar.length()), (limit, Some(limit)));
            assert_eq!(entries(dir.path()), before);
        }
        assert_eq!(fs::read(dir.path().join("profile.db")).unwrap(), b"keep");
    }

    #[test]
    fn unusable_directories_give_readable_errors_and_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let bar = progress_bar(true);
        let gone = shred_free_space(&dir.path().join("gone"), Some(1), &bar).unwrap_err();
        assert!(gone.to_string().ends_with(": no such file or directory"));
        // A file where the profile directory should be: fails even for root.
        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        let err = shred_free_space(&file, Some(1024), &bar).unwrap_err();
        assert!(matches!(err, ShredError::Create(..)), "{err}");
        assert_eq!(entries(dir.path()), BTreeSet::from([file.clone()]));
        // The guard removes its directory, contents and all, when dropped.
        let path = dir.path().join(".shred-test");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("000000"), b"data").unwrap();
        drop(TempDir { path, armed: true });
        assert_eq!(entries(dir.path()), BTreeSet::from([file]));
    }

    #[cfg(unix)]
    #[test]
    fn read_only_directory_is_an_error_and_leaves_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores permissions: then there is nothing to test.
        if fs::write(dir.path().join("probe"), b"").is_ok() {
            return;
        }
        let err = shred_free_space(dir.path(), Some(1024), &progress_bar(true)).unwrap_err();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let text = err.to_string();
        assert!(
            text.starts_with("could not write to the profile directory /"),
            "{text}"
        );
        assert!(text.ends_with(": permission denied"), "{text}");
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn disk_full_and_progress_template() {
        assert!(is_disk_full(&io::Error::from(ErrorKind::StorageFull)));
        assert!(!is_disk_full(&io::Error::from(ErrorKind::PermissionDenied)));
        assert_eq!(is_disk_full(&io::Error::from_raw_os_error(28)), cfg!(unix));
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
        assert!(progress_bar(true).is_hidden());
    }
}
