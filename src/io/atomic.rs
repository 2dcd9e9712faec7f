//! Files that are whole or absent: everything goes to a temporary with a random name in the
//! target directory (created exclusively, never through a symlink), is synced, and is renamed
//! into place only when complete.
//!
//! Live temporaries are registered, so the CLI's signal handler (SIGTERM/SIGINT, what a batch
//! system's time limit sends) and the panic hook remove them before the process ends.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Temporaries that exist right now, removed by [`remove_temporaries`].
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The registry of live temporaries (a shard's backup of the file it replaces is one too).
pub(super) fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while the lock was held must not stop the cleanup.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remove every temporary output file this process has not committed yet. Called from signal
/// handlers and the panic hook: it only takes a lock and unlinks.
pub fn remove_temporaries() {
    for p in live().drain(..) {
        let _ = std::fs::remove_file(p);
    }
}

/// A temporary file beside `path`: random name, `O_EXCL` (so a planted file or symlink is never
/// opened), with the permissions of the file it will replace (new files: 0666 minus the umask).
pub(super) fn create_temp(path: &Path) -> std::io::Result<(File, PathBuf)> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let old_mode = std::fs::metadata(path).ok().filter(|m| m.is_file()).map(|m| m.permissions().mode() & 0o7777);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(old_mode.unwrap_or(0o666)))
        .tempfile_in(dir)?;
    let (file, tmp_path) = tmp.into_parts();
    let tmp_path = tmp_path.keep().map_err(|e| e.error)?;
    live().push(tmp_path.clone());
    if let Some(mode) = old_mode {
        // The umask applied at creation; the replaced file's mode is what the user chose.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok((file, tmp_path))
}

pub(super) fn forget_temp(tmp: &Path) {
    live().retain(|p| p != tmp);
}

pub(super) fn discard_temp(tmp: &Path) {
    let _ = std::fs::remove_file(tmp);
    forget_temp(tmp);
}

/// Write `bytes` to `path` atomically (temporary + fsync + rename).
pub fn write_atomic(path: &Path, bytes: &[u8], rank: usize) -> Result<()> {
    write_atomic_with(path, rank, &mut |w| w.write_all(bytes))
}

/// [`write_atomic`] of what `write` writes, streamed through a buffer: a large model need not
/// be held in memory as one byte string.
pub fn write_atomic_with(path: &Path, rank: usize, write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let err = |e: std::io::Error| Error::Output { rank, path: path.display().to_string(), msg: e.to_string() };
    let (f, tmp) = create_temp(path).map_err(err)?;
    let mut buffered = std::io::BufWriter::with_capacity(1 << 20, f);
    let res = write(&mut buffered)
        .and_then(|_| buffered.into_inner().map_err(|e| e.into_error()))
        .and_then(|f| f.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path));
    match res {
        Ok(()) => forget_temp(&tmp),
        Err(_) => discard_temp(&tmp),
    }
    res.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::ShardWriter;

    #[test]
    fn a_streamed_write_that_fails_midway_leaves_the_old_file_and_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("m.json");
        std::fs::write(&model, "old").unwrap();
        let big = vec![b'x'; 3 << 20]; // past the buffer: some bytes reach the temporary
        let err = write_atomic_with(&model, 2, &mut |w| {
            w.write_all(&big)?;
            Err(std::io::Error::other("the serialiser failed"))
        });
        let err = err.unwrap_err().to_string();
        assert!(err.contains("rank 2") && err.contains("m.json") && err.contains("the serialiser failed"), "{err}");
        assert_eq!(std::fs::read_to_string(&model).unwrap(), "old");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "a temporary was left behind");
        write_atomic_with(&model, 0, &mut |w| w.write_all(&big)).unwrap();
        assert_eq!(std::fs::read(&model).unwrap(), big);
    }

    #[test]
    fn temporaries_are_random_exclusive_and_keep_the_replaced_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let model = dir.join("m.json");
        std::fs::write(&model, "old").unwrap();
        std::fs::set_permissions(&model, std::fs::Permissions::from_mode(0o600)).unwrap();
        // A symlink planted at the old predictable name is never followed.
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(format!(".m.json.tmp{}", std::process::id()))).unwrap();
        write_atomic(&model, b"new", 0).unwrap();
        assert_eq!(std::fs::read_to_string(&model).unwrap(), "new");
        assert_eq!(std::fs::metadata(&model).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        // Other tests run alongside and have temporaries of their own: only ours must be gone.
        assert!(!live().iter().any(|p| p.starts_with(dir)));
        // A committed shard can be undone: the old file comes back.
        let mut w = ShardWriter::create(&model, &["a".to_string()], 0).unwrap();
        w.write_rows(&[1.0]).unwrap();
        w.finish().unwrap();
        w.commit().unwrap().undo();
        assert_eq!(std::fs::read_to_string(&model).unwrap(), "new");
        let names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names.len(), 3, "{names:?}"); // m.json, victim, the planted link
    }
}
