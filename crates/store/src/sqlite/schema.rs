//! Opening connections: durability pragmas, the schema and its migrations.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::SqliteFailure;

/// Schema migrations, oldest first. `PRAGMA user_version` records how many have been
/// applied, so a new step is appended here and never edited once released.
const MIGRATIONS: &[&str] = &[
    // 1: the entries themselves. WITHOUT ROWID keeps each entry in the key's own B-tree,
    // which makes the prefix range scans of `list` and the point lookups one index walk.
    "CREATE TABLE entries (
        key TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL
    ) WITHOUT ROWID;",
];

/// The schema version this build writes and understands.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Once a checkpoint has emptied the write-ahead log, truncate it to at most this size so
/// that a burst of writes does not leave a large file behind.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Map up to this much of the database file into memory: reads of pages then cost no
/// system call, which matters most to the readers, whose page cache SQLite empties whenever
/// the writer has committed. (Writes still go through `write` and `fsync`.)
const MMAP_SIZE: i64 = 256 * 1024 * 1024;

/// The writer's page cache, in KiB (negative `cache_size` means KiB to SQLite): it keeps
/// the upper levels of the B-tree and recent leaves across transactions.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// Opens (creating if needed) the database at `path` for writing: WAL journal,
/// `synchronous=FULL` (a commit returns only once the log is on disk), and the schema
/// migrated to [`SCHEMA_VERSION`].
pub(super) fn open_writer(
    path: &Path,
    busy_timeout: Duration,
) -> Result<Connection, SqliteFailure> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SqliteFailure::NoWal(mode));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Freed pages are overwritten with zeros, so that a deleted record (a destroyed key's
    // ciphertext among them) does not stay readable in the file's free space.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens a read-only connection to a database that [`open_writer`] has prepared.
pub(super) fn open_reader(
    path: &Path,
    busy_timeout: Duration,
) -> Result<Connection, SqliteFailure> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
    Ok(conn)
}

/// Applies every migration the file lacks, in one transaction, and refuses a file written
/// by a newer build (its format may have changed in ways this one would corrupt).
fn migrate(conn: &mut Connection) -> Result<(), SqliteFailure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(SqliteFailure::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let applied = usize::try_from(found).unwrap_or(0);
    for step in MIGRATIONS.iter().skip(applied) {
        tx.execute_batch(step)?;
    }
    if found != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

/// The name SQLite's documentation gives a `synchronous` level.
pub(super) fn synchronous_name(level: i64) -> &'static str {
    match level {
        0 => "OFF",
        1 => "NORMAL",
        2 => "FULL",
        3 => "EXTRA",
        _ => "UNKNOWN",
    }
}
