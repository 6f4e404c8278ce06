//! One task per account with queued deliver_sm: sends them in arrival order to the account's
//! receiver sessions, as many at once as their windows allow, and removes each from the queue
//! only when its deliver_sm_resp says ESME_ROK. A refused or unanswered deliver_sm stays in
//! place and is retried with back-off; a session that answers ESME_RTHROTTLED is left alone
//! for a while. The task ends when the queue is empty and is started again by the next event.

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

use super::Delivery;
use delivery_store::Item;
use smpp_codec::status::{CommandStatus, ESME_ROK, ESME_RTHROTTLED};

/// Most items read from the queue per round.
const LOOKAHEAD: usize = 1024;

/// How a deliver_sm ended.
enum Answer {
    Status(CommandStatus),
    /// The session dropped it unanswered: its response timeout passed, or it closed.
    Unanswered,
}

struct Sent {
    seq: u64,
    session: u64,
    answer: Answer,
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
                        warn!(error = %e, "reading the delivery queue failed");
                        Vec::new()
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
            let Some(slot) = self.delivery.receivers.next_free(&self.account, paused) else {
                return;
            };
            let (seq, session) = (item.seq, slot.session);
            let Some(answer) = slot.send(Bytes::from(item.payload)) else {
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
                    session,
                    answer,
                }
            }));
        }
    }

    /// Removes what was delivered (one transaction for the lot) and schedules retries.
    async fn settle(&mut self, done: Vec<Sent>) {
        let config = &self.delivery.config;
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        for sent in done {
            match sent.answer {
                Answer::Status(ESME_ROK) => delivered.push(sent.seq),
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
                answer => {
                    let why = match answer {
                        Answer::Status(status) => status.name(),
                        Answer::Unanswered => "no deliver_sm_resp in time",
                    };
                    failed.push((sent.seq, why));
                }
            }
        }
        if !delivered.is_empty() {
            if let Err(e) = self.delivery.store.ack(delivered.clone()).await {
                warn!(error = %e, "removing delivered items failed");
            }
            for seq in &delivered {
                self.in_flight.remove(seq);
            }
        }
        for (seq, why) in failed {
            let attempts = self
                .delivery
                .store
                .retry_later(seq)
                .await
                .ok()
                .flatten()
                .unwrap_or(1);
            let delay = backoff(config.retry_initial, config.retry_max, attempts);
            warn!(seq, attempts, reason = why, retry_in = ?delay, "deliver_sm not accepted; will retry");
            self.not_before.insert(seq, Instant::now() + delay);
            self.in_flight.remove(&seq);
        }
    }
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
}
