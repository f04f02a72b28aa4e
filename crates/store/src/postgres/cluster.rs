//! Several Ward servers over one PostgreSQL database: the change feed that keeps their
//! caches right, the read fence that makes a write on one server visible to a read on any
//! other as soon as it returns, and the advisory lock that makes one of them the active
//! server (the one that runs the schedulers).
//!
//! **Change feed.** Every commit of a clustered backend sends, inside its transaction, a
//! notification naming the physical keys it changed (`pg_notify`, delivered only if the
//! transaction commits). Each server listens on a connection of its own and hands what
//! others changed to its [`ChangeSink`], one notification at a time, in commit order.
//! Whenever that connection is (re)established, the sink is told to forget everything
//! ([`ChangeSink::resync`]): changes made while nobody listened are not replayed.
//!
//! **Read fence.** PostgreSQL delivers notifications in the order their transactions
//! committed. So when a server sends a notification of its own and receives it back, every
//! transaction that committed before it was sent has been delivered, and handled, first.
//! [`PostgresCluster::fence`] does that before a request is served: a write that returned
//! to its client before the request arrived has been applied to this server's caches. Fences
//! of concurrent requests share one round trip (a request waits for the first fence sent
//! after it arrived), and the fence transaction commits without waiting for the disk
//! (`synchronous_commit = off`): it carries no data.
//!
//! **Leadership.** The active server holds a session-level advisory lock on a connection of
//! its own, taken only while the server is unsealed. It stops being active as soon as that
//! session ends or a check (every third of the lock timeout) fails, and then waits two
//! seconds before it tries again, so that a standby whose connection held takes over.
//! PostgreSQL releases the lock when the session ends (at once when the process dies, after
//! TCP keepalives when the network does). Standbys try to take the lock every second.
//! Scheduled work also claims each run with a compare-and-set in storage, so even two
//! servers that both believe they are active for a moment do not run one job twice.
//!
//! Every server also holds the table's "in use" lock in shared mode, so a server without
//! high availability (which takes it exclusively) cannot start next to clustered ones, nor
//! they next to it.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, mpsc, watch};
use tokio_postgres::AsyncMessage;

use super::{EXCLUSIVE_LOCK_CLASS, PostgresFailure, PostgresStorage};
use crate::StoreError;
use crate::cluster::{ChangeSink, Cluster, NodeStatus};

/// The advisory lock the active server holds.
const ACTIVE_LOCK_CLASS: i32 = 0x5741_5246;
/// How often a standby tries to take the active lock.
const TAKE_RETRY: Duration = Duration::from_secs(1);
/// How often every server records that it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A server silent for longer than this is left out of [`PostgresCluster::nodes`].
const NODE_FORGOTTEN_AFTER_MS: i64 = 30_000;
/// How long a request waits for its fence before it is refused as "unavailable".
const FENCE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest notification payload sent (PostgreSQL's limit is 8000 bytes); a commit whose
/// keys do not fit tells the others to forget everything instead.
const MAX_PAYLOAD: usize = 7_900;
/// The payload line that stands for "every key".
const EVERYTHING: &str = "*";

/// Who this server is, as the others and `sys/ha-status` see it.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Unique among the servers sharing the tables.
    pub node_id: String,
    /// The address clients reach this server at.
    pub api_addr: String,
    /// The address other servers reach this server at.
    pub cluster_addr: String,
    /// The Ward version this server runs.
    pub version: String,
    /// How long the active server may go without reaching its lock connection before it
    /// steps down (and so, roughly, how long a failover takes at worst).
    pub lock_timeout: Duration,
}

/// This server's membership of the cluster; dropping it stops its tasks (and so releases
/// its locks as their connections close).
pub struct PostgresCluster {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for PostgresCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresCluster")
            .field("node_id", &self.shared.options.node_id)
            .field("active", &self.is_active())
            .finish_non_exhaustive()
    }
}

struct Shared {
    options: ClusterOptions,
    connect: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    pool: deadpool_postgres::Pool,
    table: String,
    channel: String,
    active: AtomicBool,
    /// When this server became active (Unix ms), 0 while it is not.
    active_since_ms: AtomicI64,
    /// Asks the leadership task to give up the lock.
    step_down: Notify,
    /// Whether the server is unsealed (only then does it try to become active).
    serving: watch::Sender<bool>,
    fences: Fences,
    /// Asks the listener to drop its connection and start over (a fence went unanswered).
    relisten: Notify,
    /// The restore epoch this server's caches are at (shared with its commits' [`NotifyAs`]).
    epoch: Arc<AtomicI64>,
}

/// Fence numbers: `next` is the number the next fence sent carries; `done` the highest
/// whose echo has been handled (or that a resync covered).
struct Fences {
    next: Mutex<u64>,
    wake: Notify,
    done: watch::Sender<u64>,
}

impl Fences {
    fn new() -> Self {
        Self {
            next: Mutex::new(1),
            wake: Notify::new(),
            done: watch::Sender::new(0),
        }
    }

    fn peek_next(&self) -> u64 {
        *self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take_next(&self) -> u64 {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = *next;
        *next += 1;
        n
    }

    fn complete(&self, upto: u64) {
        self.done.send_if_modified(|done| {
            let moved = upto > *done;
            *done = (*done).max(upto);
            moved
        });
    }
}

impl PostgresStorage {
    /// Joins the servers sharing these tables: from now on every commit tells the others
    /// what it changed, and `sink` hears what they change. Fails if a server without high
    /// availability holds the tables.
    pub async fn join_cluster(
        &self,
        options: ClusterOptions,
        sink: Arc<dyn ChangeSink>,
    ) -> Result<PostgresCluster, PostgresFailure> {
        let shared = Arc::new(Shared {
            connect: self.connect.clone(),
            tls: self.tls.clone(),
            pool: self.pool.clone(),
            table: self.table.clone(),
            channel: format!("{}_changes", self.table),
            options,
            active: AtomicBool::new(false),
            active_since_ms: AtomicI64::new(0),
            step_down: Notify::new(),
            serving: watch::Sender::new(false),
            fences: Fences::new(),
            relisten: Notify::new(),
            epoch: Arc::new(AtomicI64::new(0)),
        });
        // The first connection is made here, so that a server another one holds exclusively
        // refuses to start rather than retrying in the background.
        let first = listen(&shared).await?;
        // Nothing is cached yet: the caches will be loaded from the tables as they are now.
        shared.epoch.store(first.epoch, Ordering::SeqCst);
        let _ = self.notify_as.set(NotifyAs {
            channel: shared.channel.clone(),
            node_id: shared.options.node_id.clone(),
            epoch: Arc::clone(&shared.epoch),
        });
        heartbeat(&shared).await?;
        let tasks = vec![
            tokio::spawn(keep_listening(Arc::clone(&shared), sink, first)),
            tokio::spawn(keep_beating(Arc::clone(&shared))),
            tokio::spawn(lead(Arc::clone(&shared))),
        ];
        Ok(PostgresCluster { shared, tasks })
    }
}

/// What a clustered backend's commits announce themselves as.
pub(super) struct NotifyAs {
    pub(super) channel: String,
    pub(super) node_id: String,
    /// The restore epoch this server's caches were loaded at (`{t}_restores`): its commits
    /// apply only while the tables are still at it.
    pub(super) epoch: Arc<AtomicI64>,
}

impl NotifyAs {
    /// The notification of a restore that brought the tables to `epoch`.
    pub(super) fn restored(&self, epoch: i64) -> String {
        format!("r:{}:{epoch}", self.node_id)
    }

    /// The notification of a commit that changed `keys`.
    pub(super) fn payload<'a>(&self, keys: impl Iterator<Item = &'a str>) -> String {
        let mut payload = format!("c:{}", self.node_id);
        for key in keys {
            if key.contains('\n') || payload.len() + key.len() + 1 > MAX_PAYLOAD {
                return format!("c:{}\n{EVERYTHING}", self.node_id);
            }
            payload.push('\n');
            payload.push_str(key);
        }
        payload
    }
}

#[async_trait]
impl Cluster for PostgresCluster {
    fn is_active(&self) -> bool {
        self.shared.active.load(Ordering::SeqCst)
    }

    fn active_since_ms(&self) -> Option<i64> {
        let since = self.shared.active_since_ms.load(Ordering::SeqCst);
        (self.is_active() && since > 0).then_some(since)
    }

    fn node_id(&self) -> &str {
        &self.shared.options.node_id
    }

    /// Sends a fence and waits for it to come back (see the module documentation).
    async fn fence(&self) -> Result<(), StoreError> {
        let fences = &self.shared.fences;
        let target = fences.peek_next();
        fences.wake.notify_one();
        let mut done = fences.done.subscribe();
        match tokio::time::timeout(FENCE_TIMEOUT, done.wait_for(|d| *d >= target)).await {
            Ok(Ok(_)) => Ok(()),
            _ => {
                // Maybe the connection died without a word: start it over.
                self.shared.relisten.notify_one();
                Err(StoreError::Unavailable(
                    "the change feed did not answer in time".into(),
                ))
            }
        }
    }

    async fn nodes(&self) -> Result<Vec<NodeStatus>, StoreError> {
        let client = self
            .shared
            .pool
            .get()
            .await
            .map_err(PostgresFailure::from)?;
        let rows = client
            .query(
                &format!(
                    "SELECT node_id, api_addr, cluster_addr, version, last_echo, active_since \
                     FROM {}_nodes WHERE last_echo > {NOW_MS} - $1 ORDER BY node_id",
                    self.shared.table
                ),
                &[&NODE_FORGOTTEN_AFTER_MS],
            )
            .await
            .map_err(|e| StoreError::from(PostgresFailure::Database(e)))?;
        Ok(rows
            .iter()
            .map(|r| NodeStatus {
                node_id: r.get(0),
                api_addr: r.get(1),
                cluster_addr: r.get(2),
                version: r.get(3),
                last_echo_ms: r.get(4),
                active_since_ms: r.get(5),
            })
            .collect())
    }

    fn set_serving(&self, serving: bool) {
        self.shared.serving.send_replace(serving);
        if !serving && self.is_active() {
            self.shared.step_down.notify_one();
        }
    }

    /// Gives up the lock if this server holds it; otherwise tells the active server, through
    /// the change feed, to give it up.
    async fn step_down(&self) -> Result<(), StoreError> {
        if self.is_active() {
            self.shared.step_down.notify_one();
            return Ok(());
        }
        let nodes = self.nodes().await?;
        let Some(active) = nodes
            .iter()
            .filter(|n| n.active_since_ms.is_some())
            .max_by_key(|n| n.active_since_ms)
        else {
            return Ok(());
        };
        let client = self
            .shared
            .pool
            .get()
            .await
            .map_err(PostgresFailure::from)?;
        client
            .execute(
                super::NOTIFY,
                &[&self.shared.channel, &format!("s:{}", active.node_id)],
            )
            .await
            .map_err(|e| StoreError::from(PostgresFailure::Database(e)))?;
        Ok(())
    }
}

/// The database's clock in Unix milliseconds (one clock for every server).
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// A connection outside the pool, its notifications forwarded to the returned channel.
async fn connect(
    shared: &Shared,
) -> Result<(tokio_postgres::Client, mpsc::UnboundedReceiver<String>), PostgresFailure> {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = match &shared.tls {
        Some(tls) => drive(shared.connect.connect(tls.clone()).await?, tx),
        None => drive(shared.connect.connect(tokio_postgres::NoTls).await?, tx),
    };
    Ok((client, rx))
}

/// Runs `connection` in a task of its own that forwards its notifications' payloads to `tx`;
/// `tx` closes when the connection ends.
fn drive<S, T>(
    (client, mut connection): (tokio_postgres::Client, tokio_postgres::Connection<S, T>),
    tx: mpsc::UnboundedSender<String>,
) -> tokio_postgres::Client
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message
                && tx.send(n.payload().to_owned()).is_err()
            {
                return;
            }
        }
    });
    client
}

/// A listening connection: holding the shared "in use" lock, `LISTEN`ing, with fences
/// committing without waiting for the disk.
struct Listener {
    client: Arc<tokio_postgres::Client>,
    notifications: mpsc::UnboundedReceiver<String>,
    /// The restore epoch once it listened: a later restore is among its notifications.
    epoch: i64,
}

async fn listen(shared: &Shared) -> Result<Listener, PostgresFailure> {
    let (client, notifications) = connect(shared).await?;
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock_shared($1, hashtext($2))",
            &[&EXCLUSIVE_LOCK_CLASS, &shared.table],
        )
        .await?;
    if !row.get::<_, bool>(0) {
        return Err(PostgresFailure::InUse(shared.table.clone()));
    }
    client
        .batch_execute(&format!(
            "SET synchronous_commit = off; LISTEN {}",
            shared.channel
        ))
        .await?;
    let epoch = client
        .query_one(
            &format!("SELECT epoch FROM {}_restores WHERE id = 1", shared.table),
            &[],
        )
        .await?
        .get(0);
    Ok(Listener {
        client: Arc::new(client),
        notifications,
        epoch,
    })
}

/// Hands notifications to `sink` for as long as the server runs, listening again (and
/// resyncing) after every lost connection.
async fn keep_listening(shared: Arc<Shared>, sink: Arc<dyn ChangeSink>, first: Listener) {
    let mut listener = first;
    loop {
        // Listening already: whatever committed before is covered by forgetting everything,
        // and so is every request waiting for a fence so far. The number taken here is
        // never sent: a request that comes later waits for the next one, a real fence.
        let covered = shared.fences.take_next();
        if listener.epoch == shared.epoch.load(Ordering::SeqCst) {
            sink.resync().await;
        } else {
            // A snapshot was restored while nobody listened.
            restored(&shared, sink.as_ref(), listener.epoch).await;
        }
        shared.fences.complete(covered);
        let sender = tokio::spawn(send_fences(
            Arc::clone(&shared),
            Arc::clone(&listener.client),
        ));
        loop {
            let payload = tokio::select! {
                payload = listener.notifications.recv() => payload,
                () = shared.relisten.notified() => None,
            };
            let Some(payload) = payload else { break };
            handle(&shared, sink.as_ref(), &payload).await;
        }
        sender.abort();
        drop(listener);
        tracing::warn!(
            "lost the database connection that carries other servers' changes; caches are \
             flushed once it is back"
        );
        let mut wait = Duration::from_millis(100);
        listener = loop {
            tokio::time::sleep(wait).await;
            match listen(&shared).await {
                Ok(l) => break l,
                Err(PostgresFailure::InUse(table)) => tracing::error!(
                    table,
                    "a Ward server without high availability took these tables while the \
                     connection was down; stop it"
                ),
                Err(_) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(2));
        };
        tracing::info!("listening to other servers' changes again");
    }
}

async fn handle(shared: &Shared, sink: &dyn ChangeSink, payload: &str) {
    let me = shared.options.node_id.as_str();
    let (head, rest) = payload.split_once('\n').unwrap_or((payload, ""));
    if let Some(from) = head.strip_prefix("c:") {
        if from == me {
            // This server's own commits invalidated its caches as they returned.
            return;
        }
        if rest == EVERYTHING {
            sink.resync().await;
        } else {
            let keys: Vec<String> = rest.split('\n').map(str::to_owned).collect();
            sink.changed(&keys).await;
        }
    } else if let Some(restore) = head.strip_prefix("r:") {
        if let Some((from, epoch)) = restore.rsplit_once(':')
            && from != me
            && let Ok(epoch) = epoch.parse()
        {
            restored(shared, sink, epoch).await;
        }
    } else if let Some(fence) = head.strip_prefix("f:") {
        if let Some((node, n)) = fence.rsplit_once(':')
            && node == me
            && let Ok(n) = n.parse()
        {
            shared.fences.complete(n);
        }
    } else if head.strip_prefix("s:") == Some(me) && shared.active.load(Ordering::SeqCst) {
        shared.step_down.notify_one();
    }
}

/// Another server restored a snapshot, bringing the tables to `epoch`: the sink reloads
/// everything (or seals), and only then do this server's commits carry the new epoch. A
/// commit made meanwhile, for the storage as it was, fails rather than landing.
async fn restored(shared: &Shared, sink: &dyn ChangeSink, epoch: i64) {
    tracing::warn!(
        epoch,
        "a snapshot was restored into the storage; reloading everything"
    );
    sink.restored().await;
    shared.epoch.store(epoch, Ordering::SeqCst);
}

/// Sends a fence whenever a request asks for one, one at a time, on the listening
/// connection (whose transactions do not wait for the disk).
async fn send_fences(shared: Arc<Shared>, client: Arc<tokio_postgres::Client>) {
    loop {
        shared.fences.wake.notified().await;
        let n = shared.fences.take_next();
        let payload = format!("f:{}:{n}", shared.options.node_id);
        if client
            .execute(super::NOTIFY, &[&shared.channel, &payload])
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Records this server in the nodes table, with the database's time as its heartbeat.
async fn heartbeat(shared: &Shared) -> Result<(), PostgresFailure> {
    let client = shared.pool.get().await?;
    let o = &shared.options;
    client
        .execute(
            &format!(
                "INSERT INTO {t}_nodes (node_id, api_addr, cluster_addr, version, last_echo) \
                 VALUES ($1, $2, $3, $4, {NOW_MS}) ON CONFLICT (node_id) DO UPDATE SET \
                 api_addr = EXCLUDED.api_addr, cluster_addr = EXCLUDED.cluster_addr, \
                 version = EXCLUDED.version, last_echo = EXCLUDED.last_echo",
                t = shared.table
            ),
            &[&o.node_id, &o.api_addr, &o.cluster_addr, &o.version],
        )
        .await?;
    Ok(())
}

async fn keep_beating(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        if let Err(e) = heartbeat(&shared).await {
            tracing::debug!(error = %e, "heartbeat failed");
        }
    }
}

/// Takes the active lock whenever it is free and this server is unsealed, and holds it while
/// the connection answers and the server stays unsealed.
async fn lead(shared: Arc<Shared>) {
    let check_every = shared.options.lock_timeout / 3;
    let mut serving = shared.serving.subscribe();
    loop {
        if serving.wait_for(|s| *s).await.is_err() {
            return;
        }
        let Ok((client, mut closed)) = connect(&shared).await else {
            tokio::time::sleep(TAKE_RETRY).await;
            continue;
        };
        // Standby: try until the lock is ours or the connection fails.
        let taken = loop {
            if !*shared.serving.borrow() {
                break false;
            }
            let row = client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, hashtext($2))",
                    &[&ACTIVE_LOCK_CLASS, &shared.table],
                )
                .await;
            match row {
                Ok(row) if row.get::<_, bool>(0) => break true,
                Ok(_) => {}
                Err(_) => break false,
            }
            tokio::select! {
                () = tokio::time::sleep(TAKE_RETRY) => {}
                _ = closed.recv() => break false,
            }
        };
        if !taken {
            tokio::time::sleep(TAKE_RETRY).await;
            continue;
        }
        let since = client
            .query_one(
                &format!(
                    "WITH now AS (SELECT {NOW_MS} AS ms), \
                     others AS (UPDATE {t}_nodes SET active_since = NULL WHERE node_id <> $1) \
                     UPDATE {t}_nodes SET active_since = (SELECT ms FROM now) \
                     WHERE node_id = $1 RETURNING active_since",
                    t = shared.table
                ),
                &[&shared.options.node_id],
            )
            .await
            .ok()
            .and_then(|row| row.get::<_, Option<i64>>(0))
            .unwrap_or(1);
        shared.active_since_ms.store(since, Ordering::SeqCst);
        shared.active.store(true, Ordering::SeqCst);
        tracing::info!(node_id = %shared.options.node_id, "this server is now the active one");
        let stepped_down = loop {
            tokio::select! {
                () = tokio::time::sleep(check_every) => {
                    if !*shared.serving.borrow() {
                        break true;
                    }
                    let alive = tokio::time::timeout(check_every, client.simple_query("SELECT 1")).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        break false;
                    }
                }
                () = shared.step_down.notified() => break true,
                // The session ended (killed, the database restarted): the lock is gone now.
                _ = closed.recv() => break false,
            }
        };
        shared.active.store(false, Ordering::SeqCst);
        shared.active_since_ms.store(0, Ordering::SeqCst);
        // Closing the session releases the lock.
        drop(client);
        if stepped_down {
            tracing::info!("stepped down: another server may take over");
            // Leave the others time to take the lock before trying again.
            if *shared.serving.borrow() {
                tokio::time::sleep(shared.options.lock_timeout).await;
            }
        } else {
            tracing::warn!("lost the database connection holding the active lock: standing by");
            // A standby whose connection held is the better candidate: let one take over.
            tokio::time::sleep(TAKE_RETRY * 2).await;
        }
    }
}
