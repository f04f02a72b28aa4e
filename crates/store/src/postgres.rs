//! The PostgreSQL backend: several Ward servers share one database.
//!
//! One table holds the entries. Its primary key is the SHA-256 of the entry's key, not the
//! key itself: a B-tree entry must fit in a third of a page (about 2.7 KB) and the barrier's
//! keys can be longer (see [`MAX_BACKEND_KEY_LEN`](crate::MAX_BACKEND_KEY_LEN)). Prefix
//! listing walks a second index on the key's first 512 characters, in byte order (`COLLATE
//! "C"`); ordering by that prefix and then by the whole key is the order of the keys.
//!
//! Commits are written in groups, one transaction each (`group.rs`), that first take a
//! transaction-level advisory lock for each of their keys, in one global order (so two
//! groups never wait on each other in a cycle), then judge each commit's conditions and
//! apply its actions. Every write goes through such a group, so a condition, on a present
//! key or an absent one, still holds when the write lands. A commit returns once PostgreSQL
//! has made it durable (`synchronous_commit`, on by default, is the operator's to keep).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::config::SslMode;

use crate::backend::{Expect, Op, Storage, StoreError};
use crate::keys::{child_of, folder_end, validate_key, validate_prefix};

mod cluster;
mod group;
pub use cluster::{ClusterOptions, PostgresCluster};

/// Characters of the key the ordering index holds (at most 2 KiB of UTF-8, inside the limit
/// of a B-tree entry).
const ORDER_PREFIX_CHARS: usize = 512;
/// How long opening a connection, or waiting for one from the pool, may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Sends a notification (delivered when, and if, the transaction commits).
const NOTIFY: &str = "SELECT pg_notify($1, $2)";
/// Keys read per query while listing.
const LIST_PAGE: usize = 256;
/// The advisory lock serialising schema migrations of one table prefix across servers.
const MIGRATION_LOCK_CLASS: i32 = 0x5741_5244; // "WARD"
/// The advisory lock one server holds on a table prefix while it serves it alone.
const EXCLUSIVE_LOCK_CLASS: i32 = 0x5741_5245;
/// The advisory lock a restore holds exclusively, and a clustered commit shared, from
/// before the restore epoch is read or changed to the end of the transaction.
const RESTORE_LOCK_CLASS: i32 = 0x5741_5247;

/// Schema migrations, oldest first; `{t}` is the table prefix. The `{t}_schema` table
/// records how many have been applied; a step is appended, never edited once released.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE {t}_entries (
        digest bytea PRIMARY KEY,
        key text COLLATE \"C\" NOT NULL,
        value bytea NOT NULL
    );
    CREATE INDEX {t}_entries_order ON {t}_entries ((substr(key, 1, 512)));",
    // The servers of a cluster: who they are, when each last said it was alive and since
    // when the active one is active (Unix milliseconds, the database's clock).
    "CREATE TABLE {t}_nodes (
        node_id text PRIMARY KEY,
        api_addr text NOT NULL,
        cluster_addr text NOT NULL,
        version text NOT NULL,
        last_echo bigint NOT NULL,
        active_since bigint
    );",
    // How many snapshots have been restored into the tables: a clustered commit checks,
    // inside its transaction, that it was made for the storage as it is (see `group.rs`).
    "CREATE TABLE {t}_restores (
        id integer PRIMARY KEY CHECK (id = 1),
        epoch bigint NOT NULL
    );
    INSERT INTO {t}_restores (id, epoch) VALUES (1, 0);",
];

/// The schema version this build writes and understands.
const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// How to reach the database.
#[derive(Clone)]
pub struct PostgresOptions {
    /// A libpq-style URL or key=value string (`postgres://ward@db:5432/ward`).
    pub connection_url: String,
    /// The prefix of Ward's tables (`ward` makes `ward_entries`): lowercase letters, digits
    /// and `_`, starting with a letter, at most 40 characters.
    pub table: String,
    /// Connections in the pool.
    pub max_connections: usize,
    /// PEM CA bundle: when set, the connection uses TLS and verifies the server's
    /// certificate and host name against it (libpq's `sslmode=verify-full`).
    pub tls_ca_file: Option<PathBuf>,
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("PostgresOptions")
            .field("table", &self.table)
            .field("max_connections", &self.max_connections)
            .field("tls_ca_file", &self.tls_ca_file)
            .finish_non_exhaustive()
    }
}

/// Why the backend could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresFailure {
    /// The connection settings are not valid.
    #[error("invalid PostgreSQL settings: {0}")]
    Settings(String),
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use the PostgreSQL CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The database refused or failed a statement, or could not be reached.
    #[error("PostgreSQL failed: {}", describe(.0))]
    Database(tokio_postgres::Error),
    /// No connection could be had from the pool.
    #[error("no PostgreSQL connection: {}", describe(.0))]
    Pool(deadpool_postgres::PoolError),
    /// Another server holds the tables.
    #[error(
        "the tables {0}_* are in use by another Ward server (several servers on one \
         database need `ha_enabled = true` in the [storage] section of every one of them)"
    )]
    InUse(String),
    /// The tables were written by a newer Ward, whose format this one may not understand.
    #[error("the database schema is version {found}, newer than this build's {supported}")]
    SchemaTooNew {
        /// The version found.
        found: i32,
        /// The newest this build knows.
        supported: i32,
    },
}

/// An error and its causes on one line: tokio-postgres says only "db error" and keeps the
/// server's message in the cause.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let line = inner.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = inner.source();
    }
    text
}

impl From<tokio_postgres::Error> for PostgresFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Database(e)
    }
}

impl From<deadpool_postgres::PoolError> for PostgresFailure {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Pool(e)
    }
}

impl From<PostgresFailure> for StoreError {
    /// A failure to reach the database, or one the database reports as passing (a
    /// connection exception, the server shutting down or starting, out of connections),
    /// is [`StoreError::Unavailable`]; anything else is a backend failure.
    fn from(e: PostgresFailure) -> Self {
        let passing = match &e {
            PostgresFailure::Pool(_) => true,
            PostgresFailure::Database(error) => match error.as_db_error() {
                None => true,
                Some(db) => {
                    let code = db.code().code();
                    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
                }
            },
            _ => false,
        };
        if passing {
            StoreError::Unavailable(Box::new(e))
        } else {
            StoreError::Backend(Box::new(e))
        }
    }
}

/// The SQL of each operation, with the table name in it.
struct Statements {
    get: String,
    list_from: String,
    list_after: String,
    lock: &'static str,
    read_for_check: String,
    upsert: String,
    delete: String,
    vacuum: String,
    count_all: String,
    declare_export: String,
    replace_lock: String,
    delete_all: String,
    insert_all: String,
    restore_lock: String,
    commit_lock: String,
    bump_epoch: String,
    notify_fenced: String,
}

impl Statements {
    fn new(table: &str) -> Self {
        let t = format!("{table}_entries");
        let order = format!("substr(key, 1, {ORDER_PREFIX_CHARS})");
        // `key >= $1` starts at a key or seeks past a folder; `key > $1` continues after
        // the last key read. `$2` is the end of the listed folder, or NULL for the root.
        let list = |cmp: &str| {
            format!(
                "SELECT key FROM {t} WHERE {order} >= substr($1, 1, {ORDER_PREFIX_CHARS}) \
                 AND key {cmp} $1 AND ($2::text IS NULL OR key < $2) \
                 AND ($2::text IS NULL OR {order} <= substr($2, 1, {ORDER_PREFIX_CHARS})) \
                 ORDER BY {order}, key LIMIT {LIST_PAGE}"
            )
        };
        Self {
            get: format!("SELECT value FROM {t} WHERE digest = $1"),
            list_from: list(">="),
            list_after: list(">"),
            lock: "SELECT pg_advisory_xact_lock($1)",
            read_for_check: format!("SELECT digest, value FROM {t} WHERE digest = ANY($1)"),
            upsert: format!(
                "INSERT INTO {t} (digest, key, value) \
                 SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[]) \
                 ON CONFLICT (digest) DO UPDATE SET value = EXCLUDED.value"
            ),
            delete: format!("DELETE FROM {t} WHERE digest = ANY($1)"),
            vacuum: format!("VACUUM {t}"),
            count_all: format!("SELECT count(*) FROM {t}"),
            // `key` is `COLLATE "C"`: byte order, as the SQLite backend and the snapshot.
            declare_export: format!(
                "DECLARE ward_export NO SCROLL CURSOR FOR SELECT key, value FROM {t} ORDER BY key"
            ),
            // Writers wait (the group commits' INSERTs and DELETEs), readers do not.
            replace_lock: format!("LOCK TABLE {t} IN EXCLUSIVE MODE"),
            delete_all: format!("DELETE FROM {t}"),
            insert_all: format!(
                "INSERT INTO {t} (digest, key, value) \
                 SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[])"
            ),
            // Advisory locks live in memory: unlike a row lock on the epoch's row, taking
            // one shared in every commit writes nothing.
            restore_lock: format!(
                "SELECT pg_advisory_xact_lock({RESTORE_LOCK_CLASS}, hashtext('{table}'))"
            ),
            commit_lock: format!(
                "SELECT pg_advisory_xact_lock_shared({RESTORE_LOCK_CLASS}, hashtext('{table}'))"
            ),
            bump_epoch: format!(
                "UPDATE {table}_restores SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch"
            ),
            // A clustered commit's notification, sent only if no snapshot was restored since
            // this server's caches were loaded (`$3`, its epoch); no row means one was. Run
            // after `commit_lock`, so its snapshot includes any restore that committed first.
            notify_fenced: format!(
                "SELECT pg_notify($1, $2) FROM {table}_restores WHERE id = 1 AND epoch = $3"
            ),
        }
    }
}

/// Ward's storage in a PostgreSQL database.
pub struct PostgresStorage {
    pool: Pool,
    sql: Arc<Statements>,
    table: String,
    connect: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// Set once the server joins a cluster: every commit then tells the others its keys.
    notify_as: Arc<std::sync::OnceLock<cluster::NotifyAs>>,
    /// Commits go to the writer tasks, which write them in groups (`group.rs`).
    writes: tokio::sync::mpsc::UnboundedSender<group::Pending>,
}

/// This server's hold on its tables, released when dropped.
pub struct PostgresLock {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresLock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStorage").finish_non_exhaustive()
    }
}

impl PostgresStorage {
    /// Connects, creates or migrates the tables, and returns the backend.
    pub async fn connect(options: &PostgresOptions) -> Result<Self, PostgresFailure> {
        let table = &options.table;
        let valid_table = table.len() <= 40
            && table.starts_with(|c: char| c.is_ascii_lowercase())
            && table
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_table {
            return Err(PostgresFailure::Settings(format!(
                "table prefix {table:?}: use lowercase letters, digits and _, starting with a \
                 letter, at most 40 characters"
            )));
        }
        let mut config: tokio_postgres::Config = options
            .connection_url
            .parse()
            .map_err(|e: tokio_postgres::Error| PostgresFailure::Settings(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let tls = options
            .tls_ca_file
            .as_deref()
            .map(tls_connector)
            .transpose()?;
        let manager = match &tls {
            Some(tls) => Manager::from_config(config.clone(), tls.clone(), manager_config),
            None if config.get_ssl_mode() == SslMode::Require => {
                return Err(PostgresFailure::Settings(
                    "sslmode=require needs tls_ca_file: Ward verifies the database's \
                     certificate and name"
                        .into(),
                ));
            }
            None => Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config),
        };
        // A request waits this long at most for a connection, then gets "unavailable".
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| PostgresFailure::Settings(e.to_string()))?;
        migrate(&pool, table).await?;
        let sql = Arc::new(Statements::new(table));
        let notify_as = Arc::new(std::sync::OnceLock::new());
        let writes = group::Writers::start(pool.clone(), sql.clone(), notify_as.clone());
        Ok(Self {
            pool,
            sql,
            writes,
            table: table.clone(),
            connect: config,
            tls,
            notify_as,
        })
    }

    /// Takes the tables for this process alone, on a connection of its own: the caches
    /// above the backend are right only while no other server writes underneath them. When
    /// that connection is lost (a database restart), the lock goes with it; a task takes
    /// it again as soon as the database is back.
    pub async fn hold_exclusive(&self) -> Result<PostgresLock, PostgresFailure> {
        let target = Arc::new(LockTarget {
            config: self.connect.clone(),
            tls: self.tls.clone(),
            table: self.table.clone(),
        });
        let held = target.take().await?;
        let task = tokio::spawn(keep_holding(target, held));
        Ok(PostgresLock { task })
    }
}

/// What [`PostgresStorage::hold_exclusive`] locks, and how to connect to take it.
struct LockTarget {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    table: String,
}

/// A connection holding the lock; resolves when the connection ends.
type Held = (tokio_postgres::Client, tokio::task::JoinHandle<()>);

impl LockTarget {
    async fn take(&self) -> Result<Held, PostgresFailure> {
        let (client, connection) = match &self.tls {
            Some(tls) => dedicated(&self.config, tls.clone()).await?,
            None => dedicated(&self.config, tokio_postgres::NoTls).await?,
        };
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&EXCLUSIVE_LOCK_CLASS, &self.table],
            )
            .await?;
        if !row.get::<_, bool>(0) {
            return Err(PostgresFailure::InUse(self.table.clone()));
        }
        Ok((client, connection))
    }
}

/// Holds the lock for as long as the task runs, taking it again after a lost connection.
async fn keep_holding(target: Arc<LockTarget>, mut held: Held) {
    loop {
        let (_client, connection) = held;
        let _ = connection.await;
        tracing::warn!("lost the database connection holding this server's lock; retaking it");
        held = loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            match target.take().await {
                Ok(again) => break again,
                Err(PostgresFailure::InUse(table)) => tracing::error!(
                    table,
                    "another Ward server took this server's tables while its connection was \
                     down; stop one of them"
                ),
                Err(_) => {}
            }
        };
        tracing::info!("retook this server's lock on the database");
    }
}

/// A connection outside the pool, with the task driving its I/O.
async fn dedicated<T>(config: &tokio_postgres::Config, tls: T) -> Result<Held, PostgresFailure>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, task))
}

impl PostgresStorage {
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await.map_err(PostgresFailure::from)?)
    }
}

/// A rustls connector trusting only the CA bundle at `path`.
fn tls_connector(
    path: &std::path::Path,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PostgresFailure> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let failure = |reason: String| PostgresFailure::CaFile {
        path: path.to_owned(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| failure(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| failure(e.to_string()))?;
        roots.add(cert).map_err(|e| failure(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(failure("no certificate in it".into()));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Creates or migrates the tables of prefix `table`, one server at a time.
async fn migrate(pool: &Pool, table: &str) -> Result<(), PostgresFailure> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&MIGRATION_LOCK_CLASS, &table],
    )
    .await?;
    // (Without the notice PostgreSQL sends when the table is already there.)
    tx.batch_execute(&format!(
        "SET LOCAL client_min_messages = warning;
         CREATE TABLE IF NOT EXISTS {table}_schema (version integer NOT NULL)"
    ))
    .await?;
    let row = tx
        .query_opt(&format!("SELECT version FROM {table}_schema"), &[])
        .await?;
    let found: i32 = row.map_or(0, |r| r.get(0));
    if found > SCHEMA_VERSION {
        return Err(PostgresFailure::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let applied = usize::try_from(found).unwrap_or(0);
    for step in MIGRATIONS.iter().skip(applied) {
        tx.batch_execute(&step.replace("{t}", table)).await?;
    }
    if found == 0 {
        tx.execute(
            &format!("INSERT INTO {table}_schema (version) VALUES ($1)"),
            &[&SCHEMA_VERSION],
        )
        .await?;
    } else if found != SCHEMA_VERSION {
        tx.execute(
            &format!("UPDATE {table}_schema SET version = $1"),
            &[&SCHEMA_VERSION],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn digest(key: &str) -> Vec<u8> {
    ward_crypto::sha256(key.as_bytes()).to_vec()
}

/// The advisory lock of a key: the first 8 bytes of its digest.
fn lock_id(digest: &[u8]) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

fn database(e: tokio_postgres::Error) -> StoreError {
    PostgresFailure::Database(e).into()
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        validate_key(key)?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.sql.get)
            .await
            .map_err(database)?;
        let row = client
            .query_opt(&statement, &[&digest(key)])
            .await
            .map_err(database)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.commit(vec![Op::put(key, Expect::Any, value.to_vec())])
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.commit(vec![Op::delete(key, Expect::Any)]).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        let client = self.client().await?;
        let from = client
            .prepare_cached(&self.sql.list_from)
            .await
            .map_err(database)?;
        let after = client
            .prepare_cached(&self.sql.list_after)
            .await
            .map_err(database)?;
        // One snapshot for every page, as the SQLite backend reads in one transaction.
        let mut client = client;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(database)?;
        let end = folder_end(prefix);
        let mut children: Vec<String> = Vec::new();
        let (mut start, mut inclusive) = (prefix.to_owned(), true);
        loop {
            let statement = if inclusive { &from } else { &after };
            let rows = tx
                .query(statement, &[&start, &end])
                .await
                .map_err(database)?;
            let full_page = rows.len() == LIST_PAGE;
            let mut next = None;
            for row in &rows {
                let key: &str = row.get(0);
                let Some(child) = child_of(prefix, key) else {
                    continue;
                };
                if children.last().map(String::as_str) != Some(child) {
                    children.push(child.to_owned());
                }
                if child.ends_with('/') {
                    // Seek past the whole sub-folder rather than read it.
                    next = Some((folder_end(&format!("{prefix}{child}")), true));
                    break;
                }
                next = Some((Some(key.to_owned()), false));
            }
            match next {
                Some((Some(key), true)) => (start, inclusive) = (key, true),
                Some((Some(key), false)) if full_page => (start, inclusive) = (key, false),
                _ => break,
            }
        }
        tx.commit().await.map_err(database)?;
        Ok(children)
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        for op in &ops {
            validate_key(&op.key)?;
        }
        if ops.is_empty() {
            return Ok(());
        }
        let (done, outcome) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::Backend("the PostgreSQL writers have stopped".into());
        self.writes
            .send(group::Pending { ops, done })
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }

    /// One REPEATABLE READ, read-only transaction counts the entries and reads them through
    /// a cursor, a batch at a time, in a task of its own.
    async fn export(&self) -> Result<crate::Export, StoreError> {
        let mut client = self.client().await?;
        let sql = Arc::clone(&self.sql);
        let (count_tx, count_rx) = tokio::sync::oneshot::channel();
        let (sender, batches) = tokio::sync::mpsc::channel(crate::backend::EXPORT_QUEUE);
        tokio::spawn(async move {
            let mut count_tx = Some(count_tx);
            let result = async {
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(database)?;
                let total: i64 = tx
                    .query_one(&sql.count_all, &[])
                    .await
                    .map_err(database)?
                    .get(0);
                if let Some(count) = count_tx.take()
                    && count.send(Ok(u64::try_from(total).unwrap_or(0))).is_err()
                {
                    return Ok(());
                }
                tx.batch_execute(&sql.declare_export)
                    .await
                    .map_err(database)?;
                let fetch = format!("FETCH {} FROM ward_export", crate::EXPORT_BATCH);
                loop {
                    let rows = tx.query(&fetch, &[]).await.map_err(database)?;
                    if rows.is_empty() {
                        break;
                    }
                    let batch: crate::Entries = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
                    if sender.send(Ok(batch)).await.is_err() {
                        break;
                    }
                }
                tx.commit().await.map_err(database)
            }
            .await;
            if let Err(e) = result {
                match count_tx.take() {
                    Some(tx) => {
                        let _ = tx.send(Err(e));
                    }
                    None => {
                        let _ = sender.send(Err(e)).await;
                    }
                }
            }
        });
        let count = count_rx
            .await
            .map_err(|_| StoreError::Backend("the PostgreSQL export stopped".into()))??;
        Ok(crate::Export { count, batches })
    }

    /// One transaction: the table locked against writers, emptied, filled, committed only
    /// at [`Import::Commit`](crate::Import::Commit). Dropping it uncommitted rolls it back.
    async fn replace_all(
        &self,
        mut steps: tokio::sync::mpsc::Receiver<crate::Import>,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(database)?;
        // Clustered commits that hold the restore lock end first; those that come later
        // wait for this transaction's end, then find the new epoch and fail.
        tx.batch_execute(&self.sql.restore_lock)
            .await
            .map_err(database)?;
        let epoch: i64 = tx
            .query_one(&self.sql.bump_epoch, &[])
            .await
            .map_err(database)?
            .get(0);
        tx.batch_execute(&self.sql.replace_lock)
            .await
            .map_err(database)?;
        tx.batch_execute(&self.sql.delete_all)
            .await
            .map_err(database)?;
        let insert = tx.prepare(&self.sql.insert_all).await.map_err(database)?;
        let mut written = 0u64;
        loop {
            match steps.recv().await {
                Some(crate::Import::Entries(batch)) => {
                    let mut digests = Vec::with_capacity(batch.len());
                    let mut keys = Vec::with_capacity(batch.len());
                    let mut values = Vec::with_capacity(batch.len());
                    for (key, value) in batch {
                        validate_key(&key)?;
                        digests.push(digest(&key));
                        keys.push(key);
                        values.push(value);
                    }
                    written += keys.len() as u64;
                    tx.execute(&insert, &[&digests, &keys, &values])
                        .await
                        .map_err(database)?;
                }
                Some(crate::Import::Commit) => break,
                None => return Err(StoreError::ImportAborted),
            }
        }
        let clustered = self.notify_as.get();
        if let Some(notify) = clustered {
            tx.execute(NOTIFY, &[&notify.channel, &notify.restored(epoch)])
                .await
                .map_err(database)?;
        }
        tx.commit().await.map_err(database)?;
        // This server's writes are held above the storage while a restore runs, and its
        // caches reload before they go on: they are made for the restored storage.
        if let Some(notify) = clustered {
            notify
                .epoch
                .store(epoch, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(written)
    }

    /// `VACUUM` makes the space of deleted rows reusable, so later writes overwrite it;
    /// PostgreSQL has no way to zero it at once, and its write-ahead log keeps the deleted
    /// rows until the log segment is recycled.
    async fn erase_deleted(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .batch_execute(&self.sql.vacuum)
            .await
            .map_err(database)?;
        Ok(())
    }
}
