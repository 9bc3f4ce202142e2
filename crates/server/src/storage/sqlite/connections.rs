//! The SQLite back-end's connections: one writer, on a thread of its own, that commits
//! concurrent writes together; and a small pool of readers.
//!
//! **Group commit.** With `synchronous = FULL` every commit waits for the disk (an `fsync`
//! of the WAL, a few milliseconds here), so one transaction per request would cap the
//! server at a few hundred writes per second. Hot writes (appends and acknowledgements)
//! are therefore queued to the writer thread, which runs every write waiting in the queue
//! inside one transaction — each in a `SAVEPOINT` of its own, so a write that fails is
//! rolled back alone, exactly as its own transaction would have been — and commits them
//! with one `fsync`. No caller is answered before that commit has returned, so a write
//! that was acknowledged is on disk, as before. Other writes run alone, in the order they
//! were queued.
//!
//! **Readers.** WAL lets readers run beside the writer, each reading the last committed
//! state as of its start. Reads run on the blocking pool on connections of their own
//! (at most [`READERS`] at once), each in one read transaction, so a read neither waits
//! for a commit's `fsync` nor sees a half-done batch.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use rusqlite::config::DbConfig;
use rusqlite::{ffi, Connection};
use tokio::sync::{oneshot, Semaphore};

use crate::storage::StoreError;

/// Most writes committed together.
const MAX_BATCH: usize = 256;
/// Most reads at once (and reader connections kept).
pub(super) const READERS: usize = 4;

/// Answers a batched write's caller once the batch's fate is known.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A batched write: run on the connection inside the batch (`None`: the batch failed
/// before its turn, so it is not run) and say whether it succeeded.
type Batched = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;
/// A write that runs alone (it manages its own transaction).
type Exclusive = Box<dyn FnOnce(&mut Connection) + Send>;

enum Job {
    Exclusive(Exclusive),
    Batched(Batched),
}

/// Why a batch failed, kept to tell each of its callers.
struct Failed(Option<(ffi::Error, Option<String>)>);

impl Failed {
    fn of(error: &rusqlite::Error) -> Self {
        match error {
            rusqlite::Error::SqliteFailure(code, message) => Self(Some((*code, message.clone()))),
            _ => Self(None),
        }
    }

    /// SQLite rolled the batch's transaction back by itself (after an I/O error, say).
    fn lost() -> Self {
        Self(Some((
            ffi::Error::new(ffi::SQLITE_ABORT),
            Some("the transaction of a batch of writes was rolled back".into()),
        )))
    }

    fn error(&self) -> StoreError {
        match &self.0 {
            Some((code, message)) => {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
            }
            None => StoreError::Task,
        }
    }
}

/// The writer thread's queue.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`; it ends when every clone of the writer is gone.
    pub fn start(conn: Connection) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("sotto-sqlite-w".into())
            .spawn(move || serve(conn, queue))
            .map_err(|_| StoreError::Task)?;
        Ok(Self { jobs })
    }

    /// Runs `f` alone on the writer connection.
    pub async fn exclusive<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job: Exclusive = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.jobs
            .send(Job::Exclusive(job))
            .map_err(|_| StoreError::Task)?;
        answer.await.map_err(|_| StoreError::Task)?
    }

    /// Runs `f` inside the next batch and answers once the batch is committed. `f` must
    /// not begin or end transactions: it runs inside a savepoint, rolled back if it fails.
    pub async fn batched<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job: Batched = Box::new(move |conn| match conn {
            None => (
                false,
                Box::new(move |outcome: Result<(), StoreError>| {
                    let _ = reply.send(Err(outcome.err().unwrap_or(StoreError::Task)));
                }),
            ),
            Some(conn) => {
                let result = f(conn);
                let ok = result.is_ok();
                (
                    ok,
                    Box::new(move |outcome: Result<(), StoreError>| {
                        let _ = reply.send(match (result, outcome) {
                            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                            (Ok(value), Ok(())) => Ok(value),
                        });
                    }),
                )
            }
        });
        self.jobs
            .send(Job::Batched(job))
            .map_err(|_| StoreError::Task)?;
        answer.await.map_err(|_| StoreError::Task)?
    }
}

/// The writer thread: jobs in queue order; consecutive batched jobs share a commit.
fn serve(mut conn: Connection, queue: mpsc::Receiver<Job>) {
    let mut held = None;
    loop {
        let job = match held.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            // A panic drops the job's reply, and its caller sees StoreError::Task; a
            // transaction it had open was rolled back as it unwound.
            Job::Exclusive(f) => {
                let _ = catch_unwind(AssertUnwindSafe(|| f(&mut conn)));
            }
            Job::Batched(first) => held = batch(&conn, first, &queue),
        }
    }
}

/// Runs `first` and the batched jobs queued behind it in one transaction, commits, and
/// answers them all; returns the non-batched job that ended the batch, if any.
fn batch(conn: &Connection, first: Batched, queue: &mpsc::Receiver<Job>) -> Option<Job> {
    let mut finishes: Vec<Finish> = Vec::new();
    let mut failed = conn
        .execute_batch("BEGIN IMMEDIATE")
        .err()
        .map(|e| Failed::of(&e));
    let mut next = Some(first);
    let mut held = None;
    while let Some(job) = next.take() {
        finishes.push(run_in_batch(conn, job, &mut failed));
        if finishes.len() >= MAX_BATCH {
            break;
        }
        match queue.try_recv() {
            Ok(Job::Batched(job)) => next = Some(job),
            Ok(other) => held = Some(other),
            Err(_) => {}
        }
    }
    let outcome = match failed {
        None => conn.execute_batch("COMMIT").map_err(|e| Failed::of(&e)),
        Some(failed) => Err(failed),
    };
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for finish in finishes {
        finish(outcome.as_ref().map(|_| ()).map_err(Failed::error));
    }
    held
}

/// Runs one job of a batch in a savepoint; once the batch has failed, only fails it.
fn run_in_batch(conn: &Connection, job: Batched, failed: &mut Option<Failed>) -> Finish {
    if failed.is_none() && conn.is_autocommit() {
        *failed = Some(Failed::lost());
    }
    if failed.is_some() {
        return job(None).1;
    }
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        *failed = Some(Failed::of(&e));
        return job(None).1;
    }
    let (ok, finish) = match catch_unwind(AssertUnwindSafe(|| job(Some(conn)))) {
        Ok(ran) => ran,
        // The job's reply went with the panic: its caller sees StoreError::Task.
        Err(_) => (false, Box::new(|_| {}) as Finish),
    };
    let end = if ok {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    if conn.is_autocommit() {
        *failed = Some(Failed::lost());
    } else if let Err(e) = conn.execute_batch(end) {
        *failed = Some(Failed::of(&e));
    }
    finish
}

/// Turns on the query planner stability guarantee. Without it, a statement whose plan
/// looked at a bound value (any `LIMIT ?1`) is thrown away and prepared again each time
/// that parameter is bound: a cached inbox statement was re-parsed on every read, a fifth
/// of the server's CPU under load. Plans here never depend on values (no `ANALYZE`).
pub(super) fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Read-only connections, opened as needed (at most [`READERS`]) and kept.
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Readers of the database at `path` (which the writer has opened and migrated).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(READERS)),
        }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open(&self.path)?;
        stable_plans(&conn)?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(conn)
    }

    /// Runs `f` in a read transaction on a reader connection, on the blocking pool.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Task)?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let idle = readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => readers.open()?,
            };
            let result = (|| {
                let tx = conn.transaction()?;
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            })();
            readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            drop(permit);
            result
        })
        .await
        .map_err(|_| StoreError::Task)?
    }
}
