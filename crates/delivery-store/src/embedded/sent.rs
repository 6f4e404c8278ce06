//! What the server submitted, kept until its delivery receipt can no longer arrive.
//!
//! The gateway's receipt webhook names only the gateway message id, and may come days later and
//! after a restart; the deliver_sm built from it must still carry the ids the ESME was given, the
//! addresses and the start of the text. Recording sits on the submit_sm hot path, so callers
//! share commits: one writer thread puts everything queued into a single fsync'd transaction.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::file::{self as store, OpenError, unix_ms};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use smpp_codec::pdu::Address;

/// Gateway message id → (recorded at in unix ms, serialised record). The time is kept beside the
/// record so that overwriting it can find and drop its old `BY_AGE` entry.
const RECORDS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("records");
/// (recorded at in unix ms, message id): lets `prune` find old records without reading them all.
const BY_AGE: TableDefinition<(u64, &str), ()> = TableDefinition::new("by_age");

/// Bumped when the table layout or the record encoding changes, so an older server refuses a
/// newer file instead of misreading it.
const SCHEMA_VERSION: u64 = 1;

/// redb defaults to a 1 GiB page cache; lookups are scattered but rare next to the writes, and
/// the server has better uses for the memory.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Bounds one group commit, so that a burst cannot build a transaction whose commit stalls every
/// caller behind it for long.
const MAX_BATCH: usize = 4096;

/// Records removed per `prune` transaction: the writer thread waits for each one, so a large
/// backlog is cleared in steps that submit_sm can interleave with.
const PRUNE_BATCH: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    /// The account (crate::auth::Account::name) that submitted it.
    pub account: String,
    pub source: Address,
    pub destinations: Vec<Address>,
    pub registered_delivery: u8,
    pub submitted_at: DateTime<Utc>,
    /// The first 20 characters of the text, when it was text.
    pub text_prefix: Option<String>,
    /// The ids the ESME got in submit_sm_resp for the parts of a concatenated message, in part
    /// order; empty for a message sent whole (its receipt carries the message id itself).
    pub part_ids: Vec<String>,
    /// The session that submitted it, which its receipts go to while it is bound as a
    /// receiver. Session ids are drawn from a random start, so they do not repeat across
    /// restarts and instances.
    pub session: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SentLogError {
    #[error("sent log file {0}")]
    Open(#[from] OpenError),
    #[error("cannot start the sent log writer: {0}")]
    Spawn(io::Error),
    #[error("the sent log writer has stopped")]
    Closed,
    #[error("cannot encode the sent record for {message_id}: {source}")]
    Encode {
        message_id: String,
        source: serde_json::Error,
    },
    #[error("sent record for {message_id} is unreadable: {source}")]
    Decode {
        message_id: String,
        source: serde_json::Error,
    },
    /// Shared because one failed group commit fails every record in it.
    #[error("sent log storage: {0}")]
    Storage(Arc<redb::Error>),
    /// The shared store did not answer or refused the command.
    #[error("shared store: {0}")]
    Shared(String),
}

impl From<redb::Error> for SentLogError {
    fn from(error: redb::Error) -> Self {
        Self::Storage(Arc::new(error))
    }
}

store::from_redb_errors!(SentLogError);

/// A record waiting for the writer thread, already encoded so that serialisation runs on the
/// callers rather than serially on the writer.
struct Job {
    message_id: String,
    recorded_ms: u64,
    payload: Vec<u8>,
    done: oneshot::Sender<Result<(), SentLogError>>,
}

/// The sent log file. Methods take `&self`, so it can sit in an `Arc`; `get` and `prune` block
/// on the file, so async callers should run them off the runtime's worker threads when the file
/// is large or the disk slow.
pub struct SentLog {
    db: Arc<Database>,
    ttl: Duration,
    /// Records handed to the writer and not yet committed. `get` looks here first, so the
    /// record can be written while the gateway call runs: a receipt that arrives before the
    /// commit still finds it.
    uncommitted: Arc<Mutex<HashMap<String, SentRecord>>>,
    /// `None` only while dropping: closing the channel is what ends the writer thread.
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    #[cfg(test)]
    commits: Arc<std::sync::atomic::AtomicU64>,
}

impl SentLog {
    /// Opens/creates the file; `ttl` is how long a record is kept.
    pub fn open(path: &Path, ttl: Duration) -> Result<SentLog, SentLogError> {
        let db = store::open(path, CACHE_BYTES, SCHEMA_VERSION, |txn| {
            txn.open_table(RECORDS)?;
            txn.open_table(BY_AGE)?;
            Ok(())
        })?;
        let db = Arc::new(db);
        let uncommitted = Arc::new(Mutex::new(HashMap::new()));
        let (jobs, queued) = mpsc::channel();
        #[cfg(test)]
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writer = {
            let db = Arc::clone(&db);
            let uncommitted = Arc::clone(&uncommitted);
            #[cfg(test)]
            let commits = Arc::clone(&commits);
            std::thread::Builder::new()
                .name("sent-log-writer".into())
                .spawn(move || {
                    write_loop(
                        &db,
                        &queued,
                        &uncommitted,
                        #[cfg(test)]
                        &commits,
                    )
                })
                .map_err(SentLogError::Spawn)?
        };
        Ok(SentLog {
            db,
            ttl,
            uncommitted,
            jobs: Some(jobs),
            writer: Some(writer),
            #[cfg(test)]
            commits,
        })
    }

    /// Stores the record under the gateway message id, replacing any earlier one; resolves once
    /// it is on disk.
    ///
    /// The record is visible to `get` as soon as this is called, before the returned future is
    /// awaited, so the caller can do other work (the gateway call) while it is written.
    pub fn record(
        &self,
        message_id: &str,
        record: SentRecord,
    ) -> impl Future<Output = Result<(), SentLogError>> + use<> {
        self.record_at(message_id, record, SystemTime::now())
    }

    /// `record`, aged from `now` rather than the wall clock.
    fn record_at(
        &self,
        message_id: &str,
        record: SentRecord,
        now: SystemTime,
    ) -> impl Future<Output = Result<(), SentLogError>> + use<> {
        let queued = self.enqueue(message_id, record, now);
        async move {
            // A dropped answer means the writer thread died (panicked) holding the job.
            queued?.await.map_err(|_| SentLogError::Closed)?
        }
    }

    fn enqueue(
        &self,
        message_id: &str,
        record: SentRecord,
        now: SystemTime,
    ) -> Result<oneshot::Receiver<Result<(), SentLogError>>, SentLogError> {
        let payload = encode(message_id, &record)?;
        let (done, answer) = oneshot::channel();
        let job = Job {
            message_id: message_id.to_owned(),
            recorded_ms: unix_ms(now),
            payload,
            done,
        };
        self.uncommitted
            .lock()
            .expect("uncommitted lock")
            .insert(message_id.to_owned(), record);
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            self.uncommitted
                .lock()
                .expect("uncommitted lock")
                .remove(message_id);
            return Err(SentLogError::Closed);
        }
        Ok(answer)
    }

    /// The record stored under the gateway message id. A record past the TTL is still returned
    /// until `prune` removes it: a late receipt is better delivered than dropped.
    pub fn get(&self, message_id: &str) -> Result<Option<SentRecord>, SentLogError> {
        if let Some(record) = self
            .uncommitted
            .lock()
            .expect("uncommitted lock")
            .get(message_id)
        {
            return Ok(Some(record.clone()));
        }
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        let Some(entry) = records.get(message_id)? else {
            return Ok(None);
        };
        let (_, payload) = entry.value();
        decode(message_id, payload).map(Some)
    }

    /// Removes records older than the ttl at `now`; returns how many.
    pub fn prune(&self, now: SystemTime) -> Result<usize, SentLogError> {
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let cutoff = unix_ms(now).saturating_sub(ttl_ms);
        let mut pruned = 0;
        loop {
            let txn = self.db.begin_write()?;
            let (scanned, removed) = {
                let mut by_age = txn.open_table(BY_AGE)?;
                let mut records = txn.open_table(RECORDS)?;
                let due = by_age
                    .range(..(cutoff, ""))?
                    .take(PRUNE_BATCH)
                    .map(|entry| {
                        entry.map(|(key, _)| {
                            let (recorded_ms, message_id) = key.value();
                            (recorded_ms, message_id.to_owned())
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let mut removed = 0;
                for (recorded_ms, message_id) in &due {
                    by_age.remove((*recorded_ms, message_id.as_str()))?;
                    // Only the record this entry indexes; an overwrite has its own entry.
                    let current = records
                        .get(message_id.as_str())?
                        .map(|entry| entry.value().0);
                    if current == Some(*recorded_ms) {
                        records.remove(message_id.as_str())?;
                        removed += 1;
                    }
                }
                (due.len(), removed)
            };
            // Most calls find nothing; skipping the commit spares an fsync per tick.
            if scanned == 0 {
                txn.abort()?;
                return Ok(pruned);
            }
            txn.commit()?;
            pruned += removed;
            if scanned < PRUNE_BATCH {
                return Ok(pruned);
            }
        }
    }
}

impl Drop for SentLog {
    fn drop(&mut self) {
        self.jobs = None;
        // The writer still commits what was queued before it sees the channel closed, and holds
        // the database open until then; waiting for it lets the file be reopened at once.
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: waits for a record, takes everything queued behind it, and commits them
/// together. Records that arrive during a commit form the next batch, so the batch size follows
/// the load without any timer.
fn write_loop(
    db: &Database,
    queued: &mpsc::Receiver<Job>,
    uncommitted: &Mutex<HashMap<String, SentRecord>>,
    #[cfg(test)] commits: &std::sync::atomic::AtomicU64,
) {
    while let Ok(first) = queued.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = write_batch(db, &batch);
        #[cfg(test)]
        if result.is_ok() {
            commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let error = result.err().map(Arc::new);
        {
            // Committed ones are on disk now; failed ones are gone, as their callers are told.
            let mut uncommitted = uncommitted.lock().expect("uncommitted lock");
            for job in &batch {
                uncommitted.remove(&job.message_id);
            }
        }
        for job in batch {
            // The caller may have stopped waiting; the record is stored all the same.
            let _ = job.done.send(match &error {
                None => Ok(()),
                Some(error) => Err(SentLogError::Storage(Arc::clone(error))),
            });
        }
    }
}

fn write_batch(db: &Database, batch: &[Job]) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut records = txn.open_table(RECORDS)?;
        let mut by_age = txn.open_table(BY_AGE)?;
        for job in batch {
            let id = job.message_id.as_str();
            let previous = records
                .insert(id, (job.recorded_ms, job.payload.as_slice()))?
                .map(|entry| entry.value().0);
            if let Some(previous_ms) = previous {
                by_age.remove((previous_ms, id))?;
            }
            by_age.insert((job.recorded_ms, id), ())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// A record as every backend stores it.
pub(crate) fn encode(message_id: &str, record: &SentRecord) -> Result<Vec<u8>, SentLogError> {
    serde_json::to_vec(&Stored::from(record.clone())).map_err(|source| SentLogError::Encode {
        message_id: message_id.to_owned(),
        source,
    })
}

pub(crate) fn decode(message_id: &str, payload: &[u8]) -> Result<SentRecord, SentLogError> {
    serde_json::from_slice::<Stored>(payload)
        .map(Into::into)
        .map_err(|source| SentLogError::Decode {
            message_id: message_id.to_owned(),
            source,
        })
}

/// The encoded record. Keys are one letter because the file holds every receipt-requesting
/// message for the whole TTL, and names would be most of each record's bytes.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "a")]
    account: String,
    #[serde(rename = "s")]
    source: StoredAddress,
    #[serde(rename = "d")]
    destinations: Vec<StoredAddress>,
    #[serde(rename = "r")]
    registered_delivery: u8,
    /// (unix seconds, nanoseconds): exact, unlike milliseconds, and shorter than RFC 3339.
    #[serde(rename = "t", with = "unix_time")]
    submitted_at: DateTime<Utc>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    text_prefix: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Vec::is_empty")]
    part_ids: Vec<String>,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    session: Option<u64>,
}

/// (ton, npi, addr), serialised as an array. `Address` itself stays free of serde.
#[derive(Serialize, Deserialize)]
struct StoredAddress(u8, u8, String);

impl From<Address> for StoredAddress {
    fn from(Address { ton, npi, addr }: Address) -> Self {
        Self(ton, npi, addr)
    }
}

impl From<StoredAddress> for Address {
    fn from(StoredAddress(ton, npi, addr): StoredAddress) -> Self {
        Self { ton, npi, addr }
    }
}

impl From<SentRecord> for Stored {
    fn from(record: SentRecord) -> Self {
        Self {
            account: record.account,
            source: record.source.into(),
            destinations: record.destinations.into_iter().map(Into::into).collect(),
            registered_delivery: record.registered_delivery,
            submitted_at: record.submitted_at,
            text_prefix: record.text_prefix,
            part_ids: record.part_ids,
            session: record.session,
        }
    }
}

impl From<Stored> for SentRecord {
    fn from(stored: Stored) -> Self {
        Self {
            account: stored.account,
            source: stored.source.into(),
            destinations: stored.destinations.into_iter().map(Into::into).collect(),
            registered_delivery: stored.registered_delivery,
            submitted_at: stored.submitted_at,
            text_prefix: stored.text_prefix,
            part_ids: stored.part_ids,
            session: stored.session,
        }
    }
}

mod unix_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    pub fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        (time.timestamp(), time.timestamp_subsec_nanos()).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let (secs, nanos) = <(i64, u32)>::deserialize(deserializer)?;
        DateTime::from_timestamp(secs, nanos)
            .ok_or_else(|| D::Error::custom(format_args!("time {secs}.{nanos:09} is out of range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::sync::atomic::Ordering;

    use chrono::TimeZone;

    /// Tells a copy of the test binary to act as the process that is killed.
    const CHILD_ROLE: &str = "SMSGATE_SENT_TEST_CHILD";
    const CHILD_PATH: &str = "SMSGATE_SENT_TEST_PATH";
    const CRASH_RECORDS: usize = 200;
    const TTL: Duration = Duration::from_secs(3600);

    use tempfile::TempDir;

    fn open(dir: &TempDir) -> SentLog {
        SentLog::open(&dir.path().join("store.redb"), TTL).unwrap()
    }

    fn address(ton: u8, npi: u8, addr: &str) -> Address {
        Address {
            ton,
            npi,
            addr: addr.to_owned(),
        }
    }

    fn sample(n: usize) -> SentRecord {
        SentRecord {
            account: "alpha".to_owned(),
            source: address(5, 0, "Shop"),
            destinations: vec![address(1, 1, &format!("4479{n:08}"))],
            registered_delivery: 1,
            submitted_at: Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap(),
            text_prefix: Some(format!("message {n}")),
            part_ids: Vec::new(),
            session: None,
        }
    }

    #[test]
    fn sent_log_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SentLog>();
    }

    #[tokio::test]
    async fn record_then_get_round_trips_every_field() {
        let dir = TempDir::new().unwrap();
        let log = open(&dir);
        let full = SentRecord {
            account: "bureau-ü".to_owned(),
            source: address(5, 0, "Ünïcode"),
            destinations: vec![address(1, 1, "447900000001"), address(2, 8, "0612")],
            registered_delivery: 0x11,
            submitted_at: Utc.timestamp_opt(1_741_000_000, 123_456_789).unwrap(),
            text_prefix: Some("Привет, \"мир\" 😀\n".to_owned()),
            part_ids: vec!["a1".to_owned(), "a2".to_owned(), "a3".to_owned()],
            session: Some(u64::MAX - 7),
        };
        let bare = SentRecord {
            account: String::new(),
            source: Address::default(),
            destinations: Vec::new(),
            registered_delivery: 0,
            submitted_at: DateTime::UNIX_EPOCH,
            text_prefix: None,
            part_ids: Vec::new(),
            session: None,
        };
        log.record("gw-full", full.clone()).await.unwrap();
        log.record("gw-bare", bare.clone()).await.unwrap();
        assert_eq!(log.get("gw-full").unwrap(), Some(full));
        assert_eq!(log.get("gw-bare").unwrap(), Some(bare));
    }

    #[tokio::test]
    async fn unknown_id_is_none() {
        let dir = TempDir::new().unwrap();
        let log = open(&dir);
        assert_eq!(log.get("nope").unwrap(), None);
        log.record("known", sample(1)).await.unwrap();
        assert_eq!(log.get("nope").unwrap(), None);
        assert_eq!(log.get("").unwrap(), None);
    }

    #[tokio::test]
    async fn recording_an_id_again_overwrites_it() {
        let dir = TempDir::new().unwrap();
        let log = open(&dir);
        let t0 = SystemTime::now();
        log.record_at("gw", sample(1), t0).await.unwrap();
        let later = t0 + TTL;
        log.record_at("gw", sample(2), later).await.unwrap();
        assert_eq!(log.get("gw").unwrap(), Some(sample(2)));

        // The record is aged from its latest write, not its first.
        assert_eq!(log.prune(t0 + TTL + Duration::from_secs(1)).unwrap(), 0);
        assert_eq!(log.get("gw").unwrap(), Some(sample(2)));
        assert_eq!(log.prune(later + TTL + Duration::from_secs(1)).unwrap(), 1);
        assert_eq!(log.get("gw").unwrap(), None);
    }

    #[tokio::test]
    async fn prune_removes_old_records_and_keeps_new_ones() {
        let dir = TempDir::new().unwrap();
        let log = open(&dir);
        assert_eq!(log.prune(SystemTime::now()).unwrap(), 0);

        let t0 = SystemTime::now();
        log.record_at("old", sample(1), t0).await.unwrap();
        log.record_at("old-too", sample(2), t0).await.unwrap();
        log.record_at("new", sample(3), t0 + Duration::from_secs(600))
            .await
            .unwrap();

        // A record exactly the TTL old is still kept.
        assert_eq!(log.prune(t0 + TTL).unwrap(), 0);
        assert_eq!(log.prune(t0 + TTL + Duration::from_millis(1)).unwrap(), 2);
        assert_eq!(log.get("old").unwrap(), None);
        assert_eq!(log.get("old-too").unwrap(), None);
        assert_eq!(log.get("new").unwrap(), Some(sample(3)));
        assert_eq!(log.prune(t0 + TTL + Duration::from_millis(1)).unwrap(), 0);

        let far_future = t0 + 10 * TTL;
        assert_eq!(log.prune(far_future).unwrap(), 1);
        assert_eq!(log.get("new").unwrap(), None);
        assert_eq!(log.prune(far_future).unwrap(), 0);
    }

    #[tokio::test]
    async fn reopening_after_drop_keeps_records() {
        let dir = TempDir::new().unwrap();
        {
            let log = open(&dir);
            log.record("kept", sample(1)).await.unwrap();
            log.record("also-kept", sample(2)).await.unwrap();
        }
        let log = open(&dir);
        assert_eq!(log.get("kept").unwrap(), Some(sample(1)));
        assert_eq!(log.get("also-kept").unwrap(), Some(sample(2)));
        // The age index came back with them.
        assert_eq!(log.prune(SystemTime::now() + 2 * TTL).unwrap(), 2);
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_file_is_locked() {
        let dir = TempDir::new().unwrap();
        let log = open(&dir);
        match SentLog::open(&dir.path().join("store.redb"), TTL) {
            Err(SentLogError::Open(OpenError::Locked(path))) => {
                assert_eq!(path, dir.path().join("store.redb"))
            }
            other => panic!("expected Locked, got {:?}", other.err()),
        }
        log.record("still-works", sample(1)).await.unwrap();
        drop(log);
        assert_eq!(open(&dir).get("still-works").unwrap(), Some(sample(1)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_records_share_commits() {
        const CALLS: usize = 2000;
        let dir = TempDir::new().unwrap();
        let log = Arc::new(open(&dir));

        // Holding a write transaction stalls the writer at its first batch, so every call is
        // queued before any commits: the count below then does not depend on timing.
        let gate = log.db.begin_write().unwrap();
        let (queued, mut all_queued) = tokio::sync::mpsc::unbounded_channel();
        let tasks: Vec<_> = (0..CALLS)
            .map(|n| {
                let log = Arc::clone(&log);
                let queued = queued.clone();
                tokio::spawn(async move {
                    let id = format!("gw-{n}");
                    let mut recording = pin!(log.record(&id, sample(n)));
                    // The first poll hands the record to the writer.
                    assert!(futures::poll!(recording.as_mut()).is_pending());
                    queued.send(()).unwrap();
                    recording.await
                })
            })
            .collect();
        drop(queued);
        for _ in 0..CALLS {
            all_queued.recv().await.unwrap();
        }
        gate.abort().unwrap();
        for task in tasks {
            task.await.unwrap().unwrap();
        }

        // One batch the writer took before the gate, then the rest MAX_BATCH at a time.
        let commits = log.commits.load(Ordering::Relaxed);
        assert!(
            commits <= 1 + CALLS.div_ceil(MAX_BATCH) as u64,
            "{commits} commits for {CALLS} records"
        );
        for n in 0..CALLS {
            assert_eq!(log.get(&format!("gw-{n}")).unwrap(), Some(sample(n)));
        }
        // More than one prune transaction's worth.
        assert_eq!(log.prune(SystemTime::now() + 2 * TTL).unwrap(), CALLS);
        assert_eq!(log.get("gw-0").unwrap(), None);
    }

    #[test]
    fn records_survive_an_abort_right_after_they_resolve() {
        if std::env::var(CHILD_ROLE).as_deref() == Ok("abort") {
            let path = std::path::PathBuf::from(std::env::var_os(CHILD_PATH).unwrap());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let log = SentLog::open(&path, TTL).unwrap();
                let ids: Vec<String> = (0..CRASH_RECORDS).map(|n| format!("gw-{n}")).collect();
                let results = futures::future::join_all(
                    ids.iter()
                        .enumerate()
                        .map(|(n, id)| log.record(id, sample(n))),
                )
                .await;
                assert!(results.iter().all(Result::is_ok));
                // No drop, no flush: only what the commits put on disk survives.
                std::process::abort();
            });
        }

        let dir = TempDir::new().unwrap();
        let module = module_path!().split_once("::").unwrap().1;
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                &format!("{module}::records_survive_an_abort_right_after_they_resolve"),
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ROLE, "abort")
            .env(CHILD_PATH, dir.path().join("store.redb"))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the child was meant to abort");

        let log = open(&dir);
        for n in 0..CRASH_RECORDS {
            assert_eq!(log.get(&format!("gw-{n}")).unwrap(), Some(sample(n)));
        }
    }
}
