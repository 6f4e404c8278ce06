//! The receiver sessions (bind_receiver, bind_transceiver) of each account: where the dispatcher
//! may send a deliver_sm. Each session lends the dispatcher its own window of permits, so one
//! slow ESME connection cannot take more than its share while another has room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use smpp_codec::status::CommandStatus;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

/// One deliver_sm handed to a session. The session answers with the command_status of the
/// ESME's deliver_sm_resp; dropping `reply` unanswered (timeout, closed link) means "not
/// delivered", and dropping `permit` gives the session's window slot back.
pub struct Outgoing {
    /// The encoded deliver_sm body; the session adds the header and its own sequence number.
    pub body: Bytes,
    pub reply: oneshot::Sender<CommandStatus>,
    /// Held, never read: the session's window slot, freed when the session lets go of this.
    _window_slot: OwnedSemaphorePermit,
}

struct Receiver {
    session: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
    window: Arc<Semaphore>,
}

#[derive(Default)]
struct AccountReceivers {
    sessions: Vec<Receiver>,
    /// Round-robin position.
    next: usize,
}

/// A session that can take one more deliver_sm now.
pub struct Slot {
    pub session: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
    permit: OwnedSemaphorePermit,
}

impl Slot {
    /// Hands `body` to the session; `None` when the session closed meanwhile.
    pub fn send(self, body: Bytes) -> Option<oneshot::Receiver<CommandStatus>> {
        let (reply, answer) = oneshot::channel();
        let outgoing = Outgoing {
            body,
            reply,
            _window_slot: self.permit,
        };
        self.tx.send(outgoing).ok().map(|()| answer)
    }
}

/// Where a deliver_sm that prefers a session may go.
pub enum Preferred {
    Free(Slot),
    /// The session is bound but has no room now (or asked to be left alone): wait for it.
    Busy,
    /// The session is not a receiver of the account: any session will do.
    Gone,
}

#[derive(Default)]
pub struct Receivers {
    accounts: Mutex<HashMap<String, AccountReceivers>>,
}

impl Receivers {
    /// Adds a session; returns the stream of deliver_sm it must send and whether it is the
    /// account's first receiver.
    pub fn add(
        &self,
        account: &str,
        session: u64,
        window: usize,
    ) -> (mpsc::UnboundedReceiver<Outgoing>, bool) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut accounts = self.accounts.lock().expect("receivers lock");
        let entry = accounts.entry(account.to_owned()).or_default();
        let first = entry.sessions.is_empty();
        entry.sessions.push(Receiver {
            session,
            tx,
            window: Arc::new(Semaphore::new(window)),
        });
        (rx, first)
    }

    /// Removes a session; returns whether the account has no receiver left.
    pub fn remove(&self, account: &str, session: u64) -> bool {
        let mut accounts = self.accounts.lock().expect("receivers lock");
        let Some(entry) = accounts.get_mut(account) else {
            return true;
        };
        entry.sessions.retain(|r| r.session != session);
        if entry.sessions.is_empty() {
            accounts.remove(account);
            true
        } else {
            false
        }
    }

    /// Whether the account has a receiver session.
    pub fn has(&self, account: &str) -> bool {
        self.accounts
            .lock()
            .expect("receivers lock")
            .get(account)
            .is_some_and(|a| !a.sessions.is_empty())
    }

    /// The accounts with a receiver session.
    pub fn accounts(&self) -> Vec<String> {
        self.accounts
            .lock()
            .expect("receivers lock")
            .iter()
            .filter(|(_, a)| !a.sessions.is_empty())
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn contains(&self, account: &str, session: u64) -> bool {
        let accounts = self.accounts.lock().expect("receivers lock");
        accounts
            .get(account)
            .is_some_and(|a| a.sessions.iter().any(|r| r.session == session))
    }

    /// How many more deliver_sm the account's sessions (but `except`) can take now.
    pub fn free_slots(&self, account: &str, except: &[u64]) -> usize {
        let accounts = self.accounts.lock().expect("receivers lock");
        accounts.get(account).map_or(0, |entry| {
            entry
                .sessions
                .iter()
                .filter(|r| !except.contains(&r.session) && !r.tx.is_closed())
                .map(|r| r.window.available_permits())
                .sum()
        })
    }

    /// A slot of one particular session, for a deliver_sm that prefers it.
    pub fn slot_of(&self, account: &str, session: u64, except: &[u64]) -> Preferred {
        let accounts = self.accounts.lock().expect("receivers lock");
        let Some(receiver) = accounts
            .get(account)
            .and_then(|a| a.sessions.iter().find(|r| r.session == session))
            .filter(|r| !r.tx.is_closed())
        else {
            return Preferred::Gone;
        };
        if except.contains(&session) {
            return Preferred::Busy;
        }
        match Arc::clone(&receiver.window).try_acquire_owned() {
            Ok(permit) => Preferred::Free(Slot {
                session,
                tx: receiver.tx.clone(),
                permit,
            }),
            Err(_) => Preferred::Busy,
        }
    }

    /// The next session in round-robin order with room in its window, skipping `except`
    /// (sessions that asked to be left alone for a while).
    pub fn next_free(&self, account: &str, except: &[u64]) -> Option<Slot> {
        let mut accounts = self.accounts.lock().expect("receivers lock");
        let entry = accounts.get_mut(account)?;
        let count = entry.sessions.len();
        for offset in 0..count {
            let index = (entry.next + offset) % count;
            let receiver = &entry.sessions[index];
            if except.contains(&receiver.session) || receiver.tx.is_closed() {
                continue;
            }
            if let Ok(permit) = Arc::clone(&receiver.window).try_acquire_owned() {
                entry.next = (index + 1) % count;
                return Some(Slot {
                    session: receiver.session,
                    tx: receiver.tx.clone(),
                    permit,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smpp_codec::status::ESME_ROK;

    #[test]
    fn round_robin_within_each_window() {
        let receivers = Receivers::default();
        let (_a, first) = receivers.add("acct", 1, 2);
        assert!(first);
        let (_b, first) = receivers.add("acct", 2, 1);
        assert!(!first);
        let order: Vec<u64> = std::iter::from_fn(|| receivers.next_free("acct", &[]))
            .map(|slot| {
                let session = slot.session;
                std::mem::forget(slot.permit);
                session
            })
            .collect();
        assert_eq!(order, vec![1, 2, 1]);
    }

    #[test]
    fn skipped_and_removed_sessions_get_nothing() {
        let receivers = Receivers::default();
        let (_a, _) = receivers.add("acct", 1, 4);
        let (_b, _) = receivers.add("acct", 2, 4);
        assert_eq!(receivers.free_slots("acct", &[]), 8);
        assert_eq!(receivers.free_slots("acct", &[1]), 4);
        assert_eq!(receivers.next_free("acct", &[1]).unwrap().session, 2);
        assert!(receivers.contains("acct", 1));
        assert!(!receivers.remove("acct", 2));
        assert_eq!(receivers.next_free("acct", &[]).unwrap().session, 1);
        assert!(receivers.remove("acct", 1));
        assert!(receivers.next_free("acct", &[]).is_none());
        assert!(!receivers.contains("acct", 1));
    }

    #[tokio::test]
    async fn a_slot_reaches_the_session_and_its_answer_comes_back() {
        let receivers = Receivers::default();
        let (mut rx, _) = receivers.add("acct", 7, 1);
        let answer = receivers
            .next_free("acct", &[])
            .unwrap()
            .send(Bytes::from_static(b"pdu"))
            .unwrap();
        assert!(receivers.next_free("acct", &[]).is_none(), "window of one");
        let outgoing = rx.recv().await.unwrap();
        assert_eq!(&outgoing.body[..], b"pdu");
        let Outgoing {
            reply,
            _window_slot,
            ..
        } = outgoing;
        reply.send(ESME_ROK).unwrap();
        drop(_window_slot);
        assert_eq!(answer.await.unwrap(), ESME_ROK);
        assert!(receivers.next_free("acct", &[]).is_some());
    }
}
