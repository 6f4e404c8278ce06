//! One task per account with queued deliver_sm: sends them in arrival order to the account's
//! receiver sessions, as many at once as their windows allow (a receipt to the session that
//! submitted its message while that one is bound, anything else round robin), and removes each from the queue
//! only when its deliver_sm_resp says ESME_ROK. A refused or unanswered deliver_sm stays in
//! place and is retried with back-off, until the ESMEs have refused it `dead_letter_after`
//! times with a status no retry can change (`dispatch/refusal.rs`): then it moves to the dead
//! letters. A session that answers ESME_RTHROTTLED is left alone for a while. The task ends
//! when the queue is empty and is started again by the next event.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span, warn};

pub mod refusal;

use super::Delivery;
use super::receivers::Preferred;
use crate::metrics;
use delivery_store::{Item, Refusals};
use refusal::Refusal;
use smpp_codec::status::{CommandStatus, ESME_ROK, ESME_RTHROTTLED};

/// Most items read from the queue per round.
const LOOKAHEAD: usize = 1024;
/// How long a dispatcher waits after a failed read of the queue.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// How a deliver_sm ended.
enum Answer {
    Status(CommandStatus),
    /// The session dropped it unanswered: its response timeout passed, or it closed.
    Unanswered,
}

struct Sent {
    seq: u64,
    /// The item's event id, which its preferred session is kept under.
    event_id: String,
    session: u64,
    answer: Answer,
    /// The deliver_sm body, for the reason of a refusal.
    body: Bytes,
}

pub async fn run(delivery: Arc<Delivery>, account: String, wake: Arc<Notify>) {
    let span = info_span!("dispatch", account = %account);
    Dispatcher {
        delivery,
        account,
        in_flight: HashSet::new(),
        not_before: HashMap::new(),
        paused: HashMap::new(),
        answers: FuturesUnordered::new(),
    }
    .run(wake)
    .instrument(span)
    .await;
}

struct Dispatcher {
    delivery: Arc<Delivery>,
    account: String,
    /// Seqs handed to a session and not yet answered, or answered ESME_ROK and not yet removed.
    in_flight: HashSet<u64>,
    /// Back-off of items whose last attempt failed.
    not_before: HashMap<u64, Instant>,
    /// Sessions that answered ESME_RTHROTTLED, until when.
    paused: HashMap<u64, Instant>,
    answers: FuturesUnordered<BoxFuture<'static, Sent>>,
}

impl Dispatcher {
    async fn run(mut self, wake: Arc<Notify>) {
        let shutdown = self.delivery.shutdown.clone();
        loop {
            let now = Instant::now();
            self.paused.retain(|_, until| *until > now);
            self.not_before.retain(|_, at| *at > now);
            let paused: Vec<u64> = self.paused.keys().copied().collect();
            // On a shared store, reading hands items to this instance: only one with
            // receivers of the account reads.
            if !self.delivery.may_read(&self.account) && self.answers.is_empty() {
                if self.delivery.dispatcher_done(&self.account, &wake).await {
                    return;
                }
                continue;
            }
            let free = self.delivery.receivers.free_slots(&self.account, &paused);
            // Reading the queue is only worth it when something could be sent, or to learn
            // whether it is empty. In-flight and backed-off items may come first, so read past
            // them.
            let items = if free > 0 || self.answers.is_empty() {
                let limit =
                    (self.in_flight.len() + self.not_before.len() + free.max(1)).min(LOOKAHEAD);
                match self.delivery.store.peek(&self.account, limit).await {
                    Ok(items) => items,
                    Err(e) => {
                        // The store is down (Redis cut off) or failing: ending here would
                        // start a dispatcher again at once, as the queue may not be empty.
                        warn!(error = %e, retry_in = ?STORE_RETRY, "reading the delivery queue failed");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(STORE_RETRY) => {}
                        }
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            if items.is_empty() && self.answers.is_empty() {
                if self.delivery.dispatcher_done(&self.account, &wake).await {
                    return;
                }
                continue;
            }
            self.send_ready(items, &paused);
            let next_timer = self
                .not_before
                .values()
                .chain(self.paused.values())
                .min()
                .copied();
            let answered = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => None,
                Some(sent) = self.answers.next() => Some(sent),
                _ = tokio::time::sleep_until(next_timer.unwrap_or_else(Instant::now)),
                    if next_timer.is_some() => None,
            };
            if let Some(first) = answered {
                let mut done = vec![first];
                // Answers come in bursts; settling them together costs one transaction.
                while let Some(Some(sent)) = self.answers.next().now_or_never() {
                    done.push(sent);
                }
                self.settle(done).await;
            }
        }
    }

    /// Hands every item that may go now to a session with room, in queue order.
    fn send_ready(&mut self, items: Vec<Item>, paused: &[u64]) {
        for item in items {
            if self.in_flight.contains(&item.seq) || self.not_before.contains_key(&item.seq) {
                continue;
            }
            let receivers = &self.delivery.receivers;
            let preferred = self
                .delivery
                .preferred_session(&self.account, &item.event_id);
            let slot = match preferred.map(|s| receivers.slot_of(&self.account, s, paused)) {
                Some(Preferred::Free(slot)) => slot,
                // Waits for room in its own session's window.
                Some(Preferred::Busy) => continue,
                Some(Preferred::Gone) | None => match receivers.next_free(&self.account, paused) {
                    Some(slot) => slot,
                    None => return,
                },
            };
            let (seq, session, body) = (item.seq, slot.session, Bytes::from(item.payload));
            let event_id = item.event_id;
            let Some(answer) = slot.send(body.clone()) else {
                // The session closed since it was picked; the next round picks another.
                continue;
            };
            self.in_flight.insert(seq);
            self.answers.push(Box::pin(async move {
                let answer = match answer.await {
                    Ok(status) => Answer::Status(status),
                    Err(_) => Answer::Unanswered,
                };
                Sent {
                    seq,
                    event_id,
                    session,
                    answer,
                    body,
                }
            }));
        }
    }

    /// Removes what was delivered (one transaction for the lot), schedules retries and sets
    /// aside what the ESMEs refused for good.
    async fn settle(&mut self, done: Vec<Sent>) {
        let config = &self.delivery.config;
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        for sent in done {
            match sent.answer {
                Answer::Status(ESME_ROK) => {
                    self.delivery.item_done(&self.account, &sent.event_id);
                    delivered.push(sent.seq);
                }
                Answer::Status(ESME_RTHROTTLED) => {
                    debug!(
                        session = sent.session,
                        "ESME throttled deliver_sm; pausing it"
                    );
                    self.paused
                        .insert(sent.session, Instant::now() + config.throttle_pause);
                    self.in_flight.remove(&sent.seq);
                }
                Answer::Unanswered
                    if !self
                        .delivery
                        .receivers
                        .contains(&self.account, sent.session) =>
                {
                    // Its session is gone; another may take it straight away.
                    self.in_flight.remove(&sent.seq);
                }
                _ => failed.push(sent),
            }
        }
        if !delivered.is_empty() {
            if let Err(e) = self
                .delivery
                .store
                .ack(&self.account, delivered.clone())
                .await
            {
                warn!(error = %e, "removing delivered items failed");
            }
            for seq in &delivered {
                self.in_flight.remove(seq);
            }
        }
        for sent in failed {
            self.failed(sent).await;
        }
    }

    /// Schedules the retry of a refused or unanswered deliver_sm, or moves it to the dead
    /// letters once the ESMEs have refused it for good `dead_letter_after` times. A permanent
    /// refusal is retried too until then: another session of the account, or the same ESME
    /// after a fix, may take it.
    async fn failed(&mut self, sent: Sent) {
        let store = &self.delivery.store;
        let seq = sent.seq;
        self.in_flight.remove(&seq);
        let (why, counted) = match sent.answer {
            Answer::Status(status) => match refusal::classify(status) {
                Refusal::Permanent(objection) => {
                    let counted = store.refused(&self.account, seq).await;
                    let exhausted = matches!(&counted, Ok(Some(counts))
                        if counts.permanent >= self.delivery.config.dead_letter_after);
                    if exhausted
                        && dead_letter(&self.delivery, &self.account, &sent, status, objection)
                            .await
                    {
                        return;
                    }
                    (status.name(), counted)
                }
                Refusal::Transient => (
                    status.name(),
                    transient(store.retry_later(&self.account, seq).await),
                ),
            },
            Answer::Unanswered => (
                "no deliver_sm_resp in time",
                transient(store.retry_later(&self.account, seq).await),
            ),
        };
        let counts = match counted {
            Ok(counts) => counts,
            Err(e) => {
                warn!(seq, error = %e, "counting a failed delivery attempt failed");
                None
            }
        };
        let Refusals {
            attempts,
            permanent,
        } = counts.unwrap_or(Refusals {
            attempts: 1,
            permanent: 0,
        });
        let config = &self.delivery.config;
        let delay = backoff(config.retry_initial, config.retry_max, attempts);
        warn!(
            seq,
            attempts,
            permanent_refusals = permanent,
            reason = why,
            retry_in = ?delay,
            "deliver_sm not accepted; will retry"
        );
        self.not_before.insert(seq, Instant::now() + delay);
    }
}

/// Moves a deliver_sm the ESMEs refused for good out of the queue, with a log line saying
/// why. `false` when that failed and the item stays queued.
async fn dead_letter(
    delivery: &Delivery,
    account: &str,
    sent: &Sent,
    status: CommandStatus,
    objection: &str,
) -> bool {
    let reason = refusal::reason(status, objection, &sent.body);
    let store = &delivery.store;
    let moved = match store
        .dead_letter(account, sent.seq, status.0, &reason)
        .await
    {
        Ok(Some(moved)) => {
            delivery.item_done(account, &sent.event_id);
            moved
        }
        // Delivered by another session, or expired, meanwhile.
        Ok(None) => return true,
        Err(e) => {
            warn!(
                seq = sent.seq,
                error = %e,
                "moving a refused deliver_sm to the dead letters failed"
            );
            return false;
        }
    };
    warn!(
        account = %account,
        event = %moved.item.event_id,
        status = %status,
        attempts = moved.item.attempts,
        reason = %reason,
        "deliver_sm refused for good; moved to the dead letters"
    );
    if moved.evicted > 0 {
        warn!(
            evicted = moved.evicted,
            "dead letters at the queue's bounds; the oldest were dropped"
        );
    }
    metrics::get().dead_lettered(status);
    if let Ok(count) = store.dead_letter_count().await {
        metrics::get().set_dead_letters(count);
    }
    true
}

/// The counts of an attempt that did not count as a permanent refusal.
fn transient<E>(attempts: Result<Option<u32>, E>) -> Result<Option<Refusals>, E> {
    attempts.map(|attempts| {
        attempts.map(|attempts| Refusals {
            attempts,
            permanent: 0,
        })
    })
}

/// `initial` doubled per earlier failure, at most `max`.
fn backoff(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(20);
    initial.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let (initial, max) = (Duration::from_secs(5), Duration::from_secs(60));
        let delays: Vec<u64> = (1..=6)
            .map(|attempts| backoff(initial, max, attempts).as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff(initial, max, u32::MAX), max);
    }

    #[test]
    fn dead_letter_after_must_allow_one_refusal() {
        let config = |dead_letter_after| crate::delivery::DeliveryConfig {
            dead_letter_after,
            ..Default::default()
        };
        assert_eq!(config(1).validate(), Ok(()));
        assert_eq!(
            config(0).validate(),
            Err("delivery.dead_letter_after: must be at least 1".into())
        );
    }
}
