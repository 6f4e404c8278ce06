//! The bound sessions as operators see them: who bound, from where, how, since when, and what
//! each has done. Sessions put themselves on the board when their bind succeeds and take
//! themselves off when they close; the status console reads it and may ask one to disconnect.
//! The counters are relaxed atomics a session bumps per message; the board's lock is taken
//! only per bind, close and console read.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::auth::Account;
use smpp_codec::pdu::BindKind;

#[derive(Default)]
pub struct Board {
    sessions: Mutex<BTreeMap<u64, Arc<Entry>>>,
}

/// One bound session.
pub struct Entry {
    pub id: u64,
    pub peer: SocketAddr,
    pub tls: bool,
    pub kind: BindKind,
    pub account: Arc<Account>,
    pub since: DateTime<Utc>,
    pub(super) window: Arc<Semaphore>,
    pub(super) window_size: usize,
    /// deliver_sm sent and not yet answered.
    pub(super) awaiting: AtomicUsize,
    pub(super) submitted: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) receipts: AtomicU64,
    pub(super) incoming: AtomicU64,
    /// The session's own stop signal (a child of the server's shutdown): cancelling it unbinds
    /// the ESME as a shutdown would.
    pub(super) stop: CancellationToken,
}

/// What a session has done since it bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// submit_sm, data_sm and submit_multi answered ESME_ROK.
    pub submitted: u64,
    /// Those answered with an error.
    pub refused: u64,
    /// deliver_sm the ESME accepted, receipts and incoming SMS apart.
    pub receipts: u64,
    pub incoming: u64,
}

impl Entry {
    /// The ESME's requests being worked on now.
    pub fn in_flight(&self) -> usize {
        self.window_size
            .saturating_sub(self.window.available_permits())
    }

    pub fn awaiting_deliver_sm_resp(&self) -> usize {
        self.awaiting.load(Ordering::Relaxed)
    }

    pub fn counts(&self) -> Counts {
        Counts {
            submitted: self.submitted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            receipts: self.receipts.load(Ordering::Relaxed),
            incoming: self.incoming.load(Ordering::Relaxed),
        }
    }

    pub fn submit_answered(&self, ok: bool) {
        let counter = if ok { &self.submitted } else { &self.refused };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn deliver_sm_accepted(&self, receipt: bool) {
        let counter = if receipt {
            &self.receipts
        } else {
            &self.incoming
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_awaiting(&self, pending: usize) {
        self.awaiting.store(pending, Ordering::Relaxed);
    }
}

impl Board {
    pub fn add(&self, entry: Arc<Entry>) {
        self.lock().insert(entry.id, entry);
    }

    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// The bound sessions, oldest first.
    pub fn list(&self) -> Vec<Arc<Entry>> {
        self.lock().values().cloned().collect()
    }

    /// Asks the session to unbind and close; `None` when no bound session has that id.
    pub fn disconnect(&self, id: u64) -> Option<Arc<Entry>> {
        let entry = self.lock().get(&id).cloned()?;
        entry.stop.cancel();
        Some(entry)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Entry>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}
