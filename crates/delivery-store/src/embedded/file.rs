//! How the delivery path's redb files (the queue, the record of sent messages) are opened: the
//! directory created on first use, a page cache sized for the server rather than redb's 1 GiB
//! default, a schema version an older build refuses instead of misreading, and "in use by
//! another process" told apart from other failures, since that one has a remedy.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Builder, Database, DatabaseError, ReadableTable, TableDefinition, WriteTransaction};

/// Counters and the schema version; the queue keeps its counters here too.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SCHEMA: &str = "schema";

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{} is in use by another process", .0.display())]
    Locked(PathBuf),
    #[error("{} has schema version {found}, this build reads {expected}", .path.display())]
    Schema {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("cannot create directory {}: {source}", .path.display())]
    Directory { path: PathBuf, source: io::Error },
    #[error("{}: {source}", .path.display())]
    Storage { path: PathBuf, source: redb::Error },
}

/// `From` each of redb's error types for an error type that has `From<redb::Error>`, so `?`
/// works on every redb call.
macro_rules! from_redb_errors {
    ($target:ty) => {
        $crate::embedded::file::from_redb_errors!(
            $target: redb::DatabaseError,
            redb::TransactionError,
            redb::TableError,
            redb::StorageError,
            redb::CommitError
        );
    };
    ($target:ty: $($source:ty),*) => {$(
        impl From<$source> for $target {
            fn from(error: $source) -> Self {
                Self::from(redb::Error::from(error))
            }
        }
    )*};
}
pub(super) use from_redb_errors;

/// Opens or creates the file at `path`. `create_tables` opens every table once, because read
/// transactions fail on tables that were never created.
pub fn open(
    path: &Path,
    cache_bytes: usize,
    schema_version: u64,
    create_tables: impl FnOnce(&WriteTransaction) -> Result<(), redb::Error>,
) -> Result<Database, OpenError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| OpenError::Directory {
            path: dir.to_owned(),
            source,
        })?;
    }
    let storage = |source: redb::Error| OpenError::Storage {
        path: path.to_owned(),
        source,
    };
    let db = Builder::new()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|error| match error {
            DatabaseError::DatabaseAlreadyOpen => OpenError::Locked(path.to_owned()),
            other => storage(other.into()),
        })?;
    let txn = db.begin_write().map_err(|e| storage(e.into()))?;
    create_tables(&txn).map_err(storage)?;
    {
        let mut meta = txn.open_table(META).map_err(|e| storage(e.into()))?;
        let found = meta
            .get(SCHEMA)
            .map_err(|e| storage(e.into()))?
            .map_or(0, |version| version.value());
        match found {
            0 => {
                meta.insert(SCHEMA, schema_version)
                    .map_err(|e| storage(e.into()))?;
            }
            found if found == schema_version => {}
            found => {
                return Err(OpenError::Schema {
                    path: path.to_owned(),
                    found,
                    expected: schema_version,
                });
            }
        }
    }
    txn.commit().map_err(|e| storage(e.into()))?;
    Ok(db)
}

/// Times are stored as milliseconds since the Unix epoch; a clock before 1970 reads as 0.
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_schema_is_refused_and_a_held_file_is_locked() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("nested").join("file.redb");
        let none = |_: &WriteTransaction| Ok(());
        let db = open(&path, 1 << 20, 2, none).unwrap();
        assert!(matches!(open(&path, 1 << 20, 2, none), Err(OpenError::Locked(p)) if p == path));
        drop(db);
        match open(&path, 1 << 20, 1, none) {
            Err(OpenError::Schema {
                found: 2,
                expected: 1,
                ..
            }) => {}
            other => panic!("expected a schema refusal, got {other:?}"),
        }
        assert!(open(&path, 1 << 20, 2, none).is_ok());
    }
}
