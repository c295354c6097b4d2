//! Files readable and writable by their owner only, whatever the umask: the store's and the
//! server's files (keys, TLS material, kubeconfigs, exports) are created through these.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates `path` with mode 0700 if it does not exist (its missing parents with the usual
/// modes), whatever the umask.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        // Another process made it in between: checked like any existing directory.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    // The umask may have cleared owner bits of the mode given at creation.
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

/// Writes `contents` to `path` (replacing it whole: a temporary file, synced, then renamed),
/// readable and writable by its owner only, whatever the umask.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = private_file(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)
}

/// Creates `path`, or empties an existing one, as a file readable and writable by its owner
/// only: mode 0600 whatever the umask, and whatever mode an existing file had.
pub fn private_file(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}
