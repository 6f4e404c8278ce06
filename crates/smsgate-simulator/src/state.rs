//! What the simulator remembers: accepted messages with their planned lifecycle, webhooks and
//! request counters.
//!
//! Each message carries its whole lifecycle as a plan of timestamped states fixed when it is
//! accepted; reading a message picks the states whose time has come. The same plan feeds a
//! timeline of transitions still to be announced, which the webhook task drains in time order,
//! and the webhooks are kept per account with typed events for that lookup.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use rand::Rng;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::Personality;

/// Oldest messages are forgotten beyond this, like the real gateway's retention, so a
/// long-running standalone simulator under load does not grow without bound.
const MAX_MESSAGES: usize = 100_000;

/// Each kept message has at most three transitions ahead of it; past twice that many, the
/// timeline is swept of the entries of forgotten messages (scheduled far ahead, they would
/// otherwise stay until their time comes).
const MAX_TIMELINE: usize = 6 * MAX_MESSAGES;

/// Webhook attempts kept for inspection; older ones are forgotten first.
const MAX_DELIVERY_RECORDS: usize = 10_000;

/// Ordered as declared, which puts Sent before Delivered and Failed when a zero step delay
/// makes them fall due at the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(super) enum ProcessingState {
    Pending,
    Cancelling,
    Cancelled,
    Processed,
    Sent,
    Delivered,
    Failed,
}

impl ProcessingState {
    const ALL: [Self; 7] = [
        Self::Pending,
        Self::Cancelling,
        Self::Cancelled,
        Self::Processed,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Cancelling => "Cancelling",
            Self::Cancelled => "Cancelled",
            Self::Processed => "Processed",
            Self::Sent => "Sent",
            Self::Delivered => "Delivered",
            Self::Failed => "Failed",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// How a message ends once it has been sent.
pub(super) enum Ending {
    Delivered,
    /// Without a delivery report the phone never learns more than "sent".
    Sent,
    Failed(String),
}

pub(super) enum Content {
    Text(String),
    Data { data: String, port: u16 },
}

impl Content {
    /// The SMS parts the phone sends; Android sends a data message as one part or not at all.
    pub(super) fn parts(&self) -> usize {
        match self {
            Self::Text(text) => sms_text::segment_count(text),
            Self::Data { .. } => 1,
        }
    }
}

/// When the lifecycle of a new message happens.
pub(super) struct Schedule {
    pub received_at: DateTime<Utc>,
    /// The scheduled time, or `received_at`.
    pub start_at: DateTime<Utc>,
    /// From `ttl` or `validUntil`.
    pub expires_at: Option<DateTime<Utc>>,
    pub step: TimeDelta,
    pub ending: Ending,
}

pub(super) struct Message {
    pub account: usize,
    pub id: String,
    pub device_id: String,
    pub phone_numbers: Vec<String>,
    pub content: Content,
    /// The SIM slot the request asked for.
    pub sim_number: Option<u8>,
    pub is_encrypted: bool,
    /// The request body exactly as received, for the inspection API.
    pub request: Value,
    pub lifecycle: Lifecycle,
}

/// A message as seen at one moment.
pub(super) struct Snapshot {
    pub state: ProcessingState,
    pub history: Vec<(ProcessingState, DateTime<Utc>)>,
    pub error: Option<String>,
}

pub(super) struct NotPending;

/// The states a message goes through and when.
pub(super) struct Lifecycle {
    /// Starts with Pending at the acceptance time.
    plan: Vec<(ProcessingState, DateTime<Utc>)>,
    /// The recipients' error once the plan ends in Failed.
    error: Option<String>,
    cancelled_at: Option<DateTime<Utc>>,
}

impl Lifecycle {
    /// Pending until the start plus one step, then Processed and Sent one step each, then the
    /// ending. A message whose validity runs out before the phone would have picked it up
    /// fails at that moment instead.
    pub(super) fn new(schedule: Schedule) -> Self {
        use ProcessingState::*;
        let at = |steps: i32| {
            schedule
                .step
                .checked_mul(steps)
                .and_then(|d| schedule.start_at.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        let mut plan = vec![(Pending, schedule.received_at)];
        if let Some(expires_at) = schedule.expires_at
            && expires_at < at(1)
        {
            plan.push((Failed, expires_at.max(schedule.received_at)));
            return Self::with(plan, Some("message expired".into()));
        }
        plan.push((Processed, at(1)));
        plan.push((Sent, at(2)));
        match schedule.ending {
            Ending::Delivered => plan.push((Delivered, at(3))),
            Ending::Sent => {}
            Ending::Failed(reason) => {
                plan.push((Failed, at(3)));
                return Self::with(plan, Some(reason));
            }
        }
        Self::with(plan, None)
    }

    fn with(plan: Vec<(ProcessingState, DateTime<Utc>)>, error: Option<String>) -> Self {
        Self {
            plan,
            error,
            cancelled_at: None,
        }
    }

    pub(super) fn received_at(&self) -> DateTime<Utc> {
        self.plan[0].1
    }

    pub(super) fn is_cancelled(&self) -> bool {
        self.cancelled_at.is_some()
    }

    /// The recipients' error if the plan ends in Failed, whether or not that has happened yet.
    pub(super) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub(super) fn snapshot(&self, now: DateTime<Utc>) -> Snapshot {
        if let Some(cancelled_at) = self.cancelled_at {
            return Snapshot {
                state: ProcessingState::Cancelled,
                history: vec![
                    (ProcessingState::Pending, self.received_at()),
                    (ProcessingState::Cancelling, cancelled_at),
                    (ProcessingState::Cancelled, cancelled_at),
                ],
                error: None,
            };
        }
        let history: Vec<_> = self
            .plan
            .iter()
            .copied()
            .take_while(|(_, at)| *at <= now)
            .collect();
        let state = history.last().map_or(ProcessingState::Pending, |(s, _)| *s);
        let error = if state == ProcessingState::Failed {
            self.error.clone()
        } else {
            None
        };
        Snapshot {
            state,
            history,
            error,
        }
    }

    /// Like the real gateway, only a message still waiting for the phone can be cancelled. The
    /// answer shows Cancelling; the phone's confirmation is immediate here, so later reads show
    /// Cancelled.
    pub(super) fn cancel(&mut self, now: DateTime<Utc>) -> Result<Snapshot, NotPending> {
        if self.snapshot(now).state != ProcessingState::Pending {
            return Err(NotPending);
        }
        self.cancelled_at = Some(now);
        Ok(Snapshot {
            state: ProcessingState::Cancelling,
            history: vec![
                (ProcessingState::Pending, self.received_at()),
                (ProcessingState::Cancelling, now),
            ],
            error: None,
        })
    }
}

impl Message {
    /// The `MessageState` JSON of the personality's API.
    pub(super) fn to_state(
        &self,
        snapshot: Snapshot,
        include_content: bool,
        personality: Personality,
    ) -> MessageState {
        let recipients = self
            .phone_numbers
            .iter()
            .map(|phone_number| RecipientState {
                phone_number: phone_number.clone(),
                state: snapshot.state,
                error: snapshot.error.clone(),
            })
            .collect();
        let (text_message, data_message) = match (&self.content, include_content) {
            (Content::Text(text), true) => (Some(TextMessage { text: text.clone() }), None),
            (Content::Data { data, port }, true) => (
                None,
                Some(DataMessage {
                    data: data.clone(),
                    port: *port,
                }),
            ),
            (_, false) => (None, None),
        };
        MessageState {
            id: self.id.clone(),
            device_id: self.device_id.clone(),
            state: snapshot.state,
            is_hashed: false,
            is_encrypted: self.is_encrypted,
            recipients,
            states: History(snapshot.history, personality),
            text_message,
            data_message,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageState {
    pub id: String,
    device_id: String,
    pub state: ProcessingState,
    is_hashed: bool,
    is_encrypted: bool,
    recipients: Vec<RecipientState>,
    states: History,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_message: Option<TextMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_message: Option<DataMessage>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecipientState {
    phone_number: String,
    state: ProcessingState,
    error: Option<String>,
}

#[derive(Serialize)]
struct TextMessage {
    text: String,
}

#[derive(Serialize)]
struct DataMessage {
    data: String,
    port: u16,
}

/// `{"Pending": "2025-07-15T12:30:45Z", ...}` in the order the states were reached, the times
/// written as the personality writes them.
struct History(Vec<(ProcessingState, DateTime<Utc>)>, Personality);

impl Serialize for History {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (state, at) in &self.0 {
            map.serialize_entry(state.as_str(), &self.1.format_time(*at))?;
        }
        map.end()
    }
}

pub(super) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Device-local time with its offset and milliseconds, as the app's Gson writes it
/// ("2024-06-22T15:46:11.000+07:00"); the simulated phone lives in UTC.
pub(super) fn phone_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, false)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(super) enum WebhookEvent {
    #[serde(rename = "sms:received")]
    SmsReceived,
    #[serde(rename = "sms:data-received")]
    SmsDataReceived,
    #[serde(rename = "sms:sent")]
    SmsSent,
    #[serde(rename = "sms:delivered")]
    SmsDelivered,
    #[serde(rename = "sms:failed")]
    SmsFailed,
    #[serde(rename = "sms:cancelled")]
    SmsCancelled,
    #[serde(rename = "system:ping")]
    SystemPing,
    #[serde(rename = "mms:received")]
    MmsReceived,
}

impl WebhookEvent {
    pub(super) const ALL: [Self; 8] = [
        Self::SmsReceived,
        Self::SmsDataReceived,
        Self::SmsSent,
        Self::SmsDelivered,
        Self::SmsFailed,
        Self::SmsCancelled,
        Self::SystemPing,
        Self::MmsReceived,
    ];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::SmsReceived => "sms:received",
            Self::SmsDataReceived => "sms:data-received",
            Self::SmsSent => "sms:sent",
            Self::SmsDelivered => "sms:delivered",
            Self::SmsFailed => "sms:failed",
            Self::SmsCancelled => "sms:cancelled",
            Self::SystemPing => "system:ping",
            Self::MmsReceived => "mms:received",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Webhook {
    pub id: String,
    pub device_id: Option<String>,
    pub url: String,
    pub event: WebhookEvent,
}

pub(super) struct Duplicate;

/// One attempt to deliver a webhook event, for the inspection API.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeliveryAttempt {
    pub event_id: String,
    pub event: WebhookEvent,
    pub message_id: String,
    pub webhook_id: String,
    pub url: String,
    /// Counts from 1.
    pub attempt: u32,
    pub at: String,
    /// The receiver's HTTP status; absent when no answer came.
    pub status: Option<u16>,
    /// Why no answer came: connection error, timeout.
    pub error: Option<String>,
}

/// A transition still to be announced: (when, message sequence number, state), soonest on top.
type Due = Reverse<(DateTime<Utc>, u64, ProcessingState)>;

pub(super) struct Store {
    /// Arrival order; `messages[i]` has sequence number `first_seq + i`.
    messages: VecDeque<Message>,
    first_seq: u64,
    /// (account, message id) → sequence number.
    by_id: HashMap<(usize, String), u64>,
    /// Indexed by account.
    webhooks: Vec<Vec<Webhook>>,
    /// "METHOD /path STATUS" → count.
    requests: BTreeMap<String, u64>,
    timeline: BinaryHeap<Due>,
    deliveries: VecDeque<DeliveryAttempt>,
    /// Changes with every reset, so webhook deliveries still retrying from before it can tell
    /// they belong to a forgotten past.
    generation: u64,
}

impl Store {
    pub(super) fn new(accounts: usize) -> Self {
        Self {
            messages: VecDeque::new(),
            first_seq: 0,
            by_id: HashMap::new(),
            webhooks: vec![Vec::new(); accounts],
            requests: BTreeMap::new(),
            timeline: BinaryHeap::new(),
            deliveries: VecDeque::new(),
            generation: 0,
        }
    }

    pub(super) fn contains(&self, account: usize, id: &str) -> bool {
        self.by_id.contains_key(&(account, id.to_owned()))
    }

    fn position(&self, account: usize, id: &str) -> Option<usize> {
        let seq = self.by_id.get(&(account, id.to_owned()))?;
        usize::try_from(seq - self.first_seq).ok()
    }

    pub(super) fn get(&self, account: usize, id: &str) -> Option<&Message> {
        self.messages.get(self.position(account, id)?)
    }

    pub(super) fn get_mut(&mut self, account: usize, id: &str) -> Option<&mut Message> {
        let position = self.position(account, id)?;
        self.messages.get_mut(position)
    }

    /// `None` once the message has been forgotten.
    pub(super) fn by_seq(&self, seq: u64) -> Option<&Message> {
        let position = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.messages.get(position)
    }

    pub(super) fn insert(&mut self, message: Message) -> Result<&Message, Duplicate> {
        let key = (message.account, message.id.clone());
        if self.by_id.contains_key(&key) {
            return Err(Duplicate);
        }
        if self.messages.len() == MAX_MESSAGES
            && let Some(oldest) = self.messages.pop_front()
        {
            self.by_id.remove(&(oldest.account, oldest.id));
            self.first_seq += 1;
            if self.timeline.len() > MAX_TIMELINE {
                let first_seq = self.first_seq;
                self.timeline
                    .retain(|Reverse((_, seq, _))| *seq >= first_seq);
            }
        }
        let seq = self.first_seq + self.messages.len() as u64;
        self.by_id.insert(key, seq);
        // Acceptance itself is no transition; which of the others fire events is decided when
        // they come due.
        self.timeline.extend(
            message.lifecycle.plan[1..]
                .iter()
                .map(|&(state, at)| Reverse((at, seq, state))),
        );
        self.messages.push_back(message);
        Ok(self.messages.back().expect("just pushed"))
    }

    /// The next transition due at `now` or earlier, as (message sequence number, state, time).
    pub(super) fn pop_due(
        &mut self,
        now: DateTime<Utc>,
    ) -> Option<(u64, ProcessingState, DateTime<Utc>)> {
        let Reverse((at, seq, state)) = self.timeline.peek()?;
        if *at > now {
            return None;
        }
        let (at, seq, state) = (*at, *seq, *state);
        self.timeline.pop();
        Some((seq, state, at))
    }

    /// When the next transition falls due.
    pub(super) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.timeline.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Every message of every account, oldest first.
    pub(super) fn messages(&self) -> impl DoubleEndedIterator<Item = &Message> {
        self.messages.iter()
    }

    pub(super) fn webhooks(&self, account: usize) -> &[Webhook] {
        &self.webhooks[account]
    }

    /// A webhook with the same id replaces the old one in place, like the real API.
    pub(super) fn upsert_webhook(&mut self, account: usize, webhook: Webhook) {
        let list = &mut self.webhooks[account];
        match list.iter_mut().find(|w| w.id == webhook.id) {
            Some(existing) => *existing = webhook,
            None => list.push(webhook),
        }
    }

    /// Whether there was one to remove.
    pub(super) fn remove_webhook(&mut self, account: usize, id: &str) -> bool {
        let list = &mut self.webhooks[account];
        let before = list.len();
        list.retain(|w| w.id != id);
        list.len() != before
    }

    pub(super) fn count_request(&mut self, key: String) {
        *self.requests.entry(key).or_default() += 1;
    }

    pub(super) fn requests(&self) -> &BTreeMap<String, u64> {
        &self.requests
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Dropped when a reset happened since the delivery began (`generation` is then stale).
    pub(super) fn record_delivery(&mut self, generation: u64, attempt: DeliveryAttempt) {
        if generation != self.generation {
            return;
        }
        if self.deliveries.len() == MAX_DELIVERY_RECORDS {
            self.deliveries.pop_front();
        }
        self.deliveries.push_back(attempt);
    }

    /// Oldest first.
    pub(super) fn deliveries(&self) -> impl Iterator<Item = &DeliveryAttempt> {
        self.deliveries.iter()
    }

    pub(super) fn reset(&mut self) {
        let accounts = self.webhooks.len();
        let generation = self.generation.wrapping_add(1);
        *self = Self::new(accounts);
        self.generation = generation;
    }
}

/// A 21-character id from the URL-safe alphabet, the shape of the real gateway's ids.
pub(super) fn new_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::rng();
    (0..21)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// 32 lowercase hex digits, the shape of a phone's Local-mode device id: the app writes the
/// hash of its model name sign-extended to 64 bits, then its install time in milliseconds
/// ("ffffffffceb0b1db0000018e937c815b"). A random hash keeps the phones of several accounts
/// apart.
pub(super) fn new_phone_id(installed_at: DateTime<Utc>) -> String {
    let model_hash = i64::from(rand::rng().random::<i32>());
    format!(
        "{:016x}{:016x}",
        model_hash.cast_unsigned(),
        installed_at.timestamp_millis().cast_unsigned()
    )
}
