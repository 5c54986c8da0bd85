//! Files and directories that only the user running orderd may read: the database, the mail
//! directory, the JWT secret and the plugin artifact cache. New ones are created with 0700
//! (directories) and 0600 (files) whatever the umask; existing ones are checked, because a
//! file another local user can write (or one they own) is one they can replace.

use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of a directory only its owner may enter.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a file only its owner may read and write.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents with mode 0700. Directories that already exist are
/// left as they are.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Opens `path` for writing, creating it with mode 0600 when missing (`create_new`: fail if it
/// exists).
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates `path` empty with mode 0600 unless it exists (an existing file is not touched).
pub fn touch(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map(drop)
}

/// The effective user id of this process.
pub fn process_uid() -> u32 {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why a file or directory may not be trusted with code or secrets, if it may not: owned by
/// another user, or writable by the group or by everyone.
pub fn untrusted(meta: &Metadata) -> Option<String> {
    let uid = process_uid();
    if meta.uid() != uid {
        return Some(format!(
            "it is owned by uid {} while orderd runs as uid {uid}",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Some(format!("its mode {mode:03o} lets other users write to it"));
    }
    None
}

/// Whether users other than the owner may read the file (mode bits 0o044).
pub fn readable_by_others(meta: &Metadata) -> bool {
    meta.mode() & 0o044 != 0
}

/// Sets `path` to mode 0600 when others may read or write it, and says whether it did.
pub fn restrict_file(path: &Path) -> io::Result<bool> {
    let meta = std::fs::metadata(path)?;
    if meta.mode() & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_directories_and_files_are_owner_only_whatever_the_umask() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a").join("b");
        create_dir_all(&dir).unwrap();
        for d in [base.path().join("a"), dir.clone()] {
            assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, DIR_MODE);
        }
        let file = dir.join("f");
        drop(create_new(&file).unwrap());
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, FILE_MODE);
        assert!(create_new(&file).is_err());
        touch(&dir.join("g")).unwrap();
        assert_eq!(
            std::fs::metadata(dir.join("g")).unwrap().mode() & 0o777,
            FILE_MODE
        );
    }

    #[test]
    fn a_group_or_world_writable_file_is_untrusted_and_an_owner_only_one_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(untrusted(&std::fs::metadata(&file).unwrap()), None);
        for mode in [0o620, 0o602, 0o666] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let why = untrusted(&std::fs::metadata(&file).unwrap()).unwrap();
            assert!(why.contains("write"), "{why}");
        }
        assert!(restrict_file(&file).unwrap());
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        assert!(!restrict_file(&file).unwrap());
    }
}
