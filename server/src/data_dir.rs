//! The data directory and the private files in it: the SQLite store (API key hashes, device
//! token hashes, SMS texts and numbers) and the self-signed TLS key.
//!
//! On unix the directory is made `0700` and the files `0600`, set explicitly so that a lax
//! umask does not widen them. A file of ours found wider (made by an older relay) is narrowed
//! to `0600`; an existing directory that others can enter is left alone (the operator may
//! share it on purpose) with a warning. SQLite gives its `-wal` and `-shm` files the mode of
//! the database file, so making that one `0600` before SQLite opens it covers all three.

use std::io;
use std::path::Path;

/// Creates `dir` (and its parents) if missing, `0700`; warns when an existing one is open to
/// its group or others.
pub fn prepare(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        warn_if_open(dir)?;
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let made = create_dir_private(dir);
    match made {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => warn_if_open(dir),
        other => other,
    }
}

#[cfg(unix)]
fn create_dir_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    // The umask may have taken bits away; set exactly 0700.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn create_dir_private(dir: &Path) -> io::Result<()> {
    std::fs::create_dir(dir)
}

#[cfg(unix)]
fn warn_if_open(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:o}", mode & 0o777),
            "the data directory is open to other users; make it private: chmod 700"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn warn_if_open(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Makes sure `path` exists as a file only its owner can read and write: created empty
/// `0600` if missing, narrowed to `0600` if wider.
pub fn private_file(path: &Path) -> io::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    drop(open.open(path)?);
    narrow(path)
}

/// Writes `contents` to a new or existing `path` that only its owner can read and write.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    private_file(path)?;
    std::fs::write(path, contents)
}

/// Narrows an existing file to `0600` if it is open to its group or others.
#[cfg(unix)]
pub fn narrow(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        tracing::info!(file = %path.display(), "narrowed the file's permissions to 0600");
    }
    Ok(())
}

/// Narrows an existing file to `0600` if it is open to its group or others.
#[cfg(not(unix))]
pub fn narrow(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Prepares the store's files at `db` (the SQLite file): the database made or narrowed to
/// `0600` before SQLite opens it, and `-wal`/`-shm` left by an older relay narrowed too.
pub fn private_store(db: &Path) -> io::Result<()> {
    private_file(db)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let side = Path::new(&side);
        if side.exists() {
            narrow(side)?;
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_and_files_are_private_and_wide_files_are_narrowed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a").join("data");
        prepare(&dir).expect("made");
        assert_eq!(mode(&dir), 0o700);
        prepare(&dir).expect("an existing directory is fine");
        let f = dir.join("key.pem");
        write_private(&f, b"secret").expect("written");
        assert_eq!(mode(&f), 0o600);
        assert_eq!(std::fs::read(&f).expect("read"), b"secret");
        let db = dir.join("relay.sqlite");
        std::fs::write(&db, b"").expect("old file");
        std::fs::write(dir.join("relay.sqlite-wal"), b"").expect("old wal");
        for p in [&db, &dir.join("relay.sqlite-wal")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        private_store(&db).expect("narrowed");
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.join("relay.sqlite-wal")), 0o600);
    }
}
