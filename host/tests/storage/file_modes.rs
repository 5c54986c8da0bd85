//! Data at rest is private to the user running orderd: the SQLite database (and its WAL) and
//! the data directory it creates are owner-only whatever the umask, and an existing database
//! others may read is narrowed to 0600.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use orderd::storage::Store as _;
use orderd::storage::sqlite::{DATABASE_FILE, SqliteStore};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o777
}

#[tokio::test]
async fn a_new_database_and_its_directory_are_owner_only() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("data");
    let path = dir.join(DATABASE_FILE);
    let store = SqliteStore::open(&path).unwrap();
    store.ping().await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&path), 0o600);
    let wal = dir.join(format!("{DATABASE_FILE}-wal"));
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
}

#[tokio::test]
async fn an_existing_database_others_may_read_is_narrowed_to_owner_only() {
    let base = tempfile::tempdir().unwrap();
    let path = base.path().join(DATABASE_FILE);
    drop(SqliteStore::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    store.ping().await.unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn the_mail_directory_and_every_written_email_are_owner_only() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("data").join("mail");
    let mailer = orderd::mail::Mailer::file("orderd <orders@example.com>", dir.clone()).unwrap();
    mailer
        .send(&orderd::mail::OutgoingEmail {
            to: "ada@example.com".into(),
            to_name: "Ada".into(),
            subject: "Order confirmed".into(),
            text: "Thanks".into(),
            html: "<p>Thanks</p>".into(),
            message_id: "<65f0c0ffee0000000000abcd@orderd>".into(),
        })
        .await
        .unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&base.path().join("data")), 0o700);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600);
}
