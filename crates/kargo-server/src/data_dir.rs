//! The data directory: private by construction, and one server's at a time.
//!
//! It holds the SQLite store (the CA key, the signing keys, the admin record and every token, in
//! clear), the serving key and the admin kubeconfig, so no one but the server's user may read
//! any of it:
//!
//! - the directory is created with mode 0700 and every file the server writes with 0600 —
//!   set explicitly after creation, so that no umask widens them (SQLite gives `kargo.db-wal`
//!   and `kargo.db-shm` the mode of `kargo.db`, which `kargo-store` creates 0600);
//! - on every start, the directory and everything in it is checked: a directory or file that
//!   others could read or write (any group or other permission bit) is tightened — group and
//!   other bits cleared — with a warning naming it; one owned by another user is refused, as
//!   it is not ours to change and that user could change it back;
//! - `kargo.lock` in the directory is locked exclusively (`flock`) for the life of the process,
//!   so a second server on the same directory fails at once with the first one's process id,
//!   instead of both running on one store.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kargo_store::files::create_private_dir;
pub use kargo_store::files::private_file;

/// The lock file's name in the data directory.
pub(crate) const LOCK_FILE: &str = "kargo.lock";

/// Permission bits of group and others: none may be set on anything in the data directory.
const OPEN_TO_OTHERS: u32 = 0o077;

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// A file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The directory, or something in it, belongs to another user.
    #[error(
        "{} belongs to uid {owner}, not to uid {user} that this server runs as: refusing a data \
         directory that another user controls (chown it to uid {user}, or choose another \
         --data-dir)",
        path.display()
    )]
    NotOwned {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The server's effective user.
        user: u32,
    },
    /// The path exists and is not a directory.
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// Another process holds the directory's lock.
    #[error(
        "another kargo server{} is using the data directory {}: it holds {}. Stop it first, or \
         give this server its own --data-dir",
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default(),
        dir.display(),
        dir.join(LOCK_FILE).display()
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The process id the holder wrote into the lock file, if readable.
        holder: Option<u32>,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DataDirError + 'a {
    move |source| DataDirError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// A data directory in use by this process: checked, tightened, and locked until dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Holds the exclusive lock; closing it (when the process ends, however) releases it.
    _lock: File,
}

impl DataDir {
    /// Creates the directory (0700) or checks an existing one, locks it, and tightens what is
    /// in it (see the module's documentation).
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        let user = rustix::process::geteuid().as_raw();
        create_private_dir(path).map_err(io("creating", path))?;
        // Absolute, so that the paths the server prints work from any directory.
        let path = fs::canonicalize(path).map_err(io("resolving", path))?;
        let meta = fs::metadata(&path).map_err(io("reading", &path))?;
        if !meta.is_dir() {
            return Err(DataDirError::NotADirectory(path));
        }
        tighten(&path, &meta, user)?;
        let lock = lock(&path)?;
        tighten_contents(&path, user)?;
        Ok(DataDir { path, _lock: lock })
    }

    /// The directory, absolute.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Refuses what another user owns; clears group and other bits, with a warning.
fn tighten(path: &Path, meta: &fs::Metadata, user: u32) -> Result<(), DataDirError> {
    if meta.uid() != user {
        return Err(DataDirError::NotOwned {
            path: path.to_owned(),
            owner: meta.uid(),
            user,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & OPEN_TO_OTHERS == 0 {
        return Ok(());
    }
    let private = mode & !OPEN_TO_OTHERS;
    fs::set_permissions(path, fs::Permissions::from_mode(private))
        .map_err(io("setting the mode of", path))?;
    tracing::warn!(
        path = %path.display(),
        was = %format!("{mode:04o}"),
        now = %format!("{private:04o}"),
        "the data directory must be private: removed the permissions of group and others"
    );
    Ok(())
}

/// [`tighten`] on everything under `dir`. Symbolic links are followed to what they name (that
/// is what the server and SQLite read and write), but not descended into.
fn tighten_contents(dir: &Path, user: u32) -> Result<(), DataDirError> {
    let entries = fs::read_dir(dir).map_err(io("reading", dir))?;
    for entry in entries {
        let entry = entry.map_err(io("reading", dir))?;
        let path = entry.path();
        let link = entry.file_type().map_err(io("reading", &path))?;
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            // A dangling link, or a file removed meanwhile: nothing to protect.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io("reading", &path)(e)),
        };
        if !(meta.is_dir() || meta.is_file()) {
            continue;
        }
        tighten(&path, &meta, user)?;
        if meta.is_dir() && link.is_dir() {
            tighten_contents(&path, user)?;
        }
    }
    Ok(())
}

/// Takes the directory's lock, or reports who holds it.
fn lock(dir: &Path) -> Result<File, DataDirError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io("opening", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(DataDirError::Locked {
                dir: dir.to_owned(),
                holder,
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io("locking", &path)(e)),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io("writing", &path))?;
    Ok(file)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kargo_store::files::write_private;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_data_directory_is_private_and_an_open_one_is_tightened_to_private() {
        let parent = tempfile::tempdir().unwrap();
        let new = parent.path().join("a").join("data");
        let dir = DataDir::open(&new).unwrap();
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(&dir.path().join(LOCK_FILE)), 0o600);
        drop(dir);

        let open = parent.path().join("open");
        fs::create_dir_all(open.join("tls")).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(open.join("tls"), fs::Permissions::from_mode(0o775)).unwrap();
        fs::write(open.join("tls").join("server.key"), b"key").unwrap();
        fs::set_permissions(
            open.join("tls").join("server.key"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        fs::write(open.join("script"), b"#!/bin/sh").unwrap();
        fs::set_permissions(open.join("script"), fs::Permissions::from_mode(0o755)).unwrap();
        let _dir = DataDir::open(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
        assert_eq!(mode(&open.join("tls")), 0o700);
        assert_eq!(mode(&open.join("tls").join("server.key")), 0o600);
        // Only group and other bits go: the owner keeps what it had.
        assert_eq!(mode(&open.join("script")), 0o700);
    }

    #[test]
    fn a_second_opener_of_a_data_directory_is_refused_with_the_holders_process_id() {
        let parent = tempfile::tempdir().unwrap();
        let first = DataDir::open(parent.path()).unwrap();
        let err = DataDir::open(parent.path()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("(process {})", std::process::id())),
            "{message}"
        );
        assert!(
            message.contains(&parent.path().display().to_string()),
            "{message}"
        );
        drop(first);
        DataDir::open(parent.path()).unwrap();
    }

    #[test]
    fn private_files_are_0600_even_when_they_existed_with_wider_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.jsonl");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        drop(private_file(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"");
        let written = dir.path().join("written");
        write_private(&written, b"secret").unwrap();
        assert_eq!(mode(&written), 0o600);
        assert_eq!(fs::read(&written).unwrap(), b"secret");
    }
}
