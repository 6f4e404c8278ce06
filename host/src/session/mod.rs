//! One SMPP connection: the bind state machine, the window of requests in flight, the timers,
//! and the hand-over of each request to its handler. Reading happens here; every request that
//! needs the gateway is polled here too, concurrently with the others within the window (all
//! of a bind runs on one thread, so a task of its own would only add a spawn, a copy and the
//! scheduler's bookkeeping per message), and all answers go through the writer task, so a slow
//! gateway call never holds up the rest of the bind. A receiver bind also takes deliver_sm
//! from the account's dispatcher and routes each deliver_sm_resp back.
//!
//! The loop never waits on the writer: a PDU is read (or a deliver_sm taken) only once a place
//! for its answer is reserved in the writer's queue, so a peer that stops reading stops being
//! read — bounded memory — while the timers and shutdown keep firing.

mod bind;
pub mod board;
mod operations;
mod writer;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::Poll;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::OwnedPermit;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::auth::{Account, Authenticator, BoundAccount};
use crate::config::SmppConfig;
use crate::delivery::Delivery;
use crate::delivery::receivers::Outgoing;
use crate::metrics;
use crate::pipeline::Submitter;
use crate::shutdown::Shutdown;
use smpp_codec::SmppCodec;
use smpp_codec::command::*;
use smpp_codec::pdu::{BindKind, Inbound, Outbound, Request, ResponseBody};
use smpp_codec::status::*;

/// Session ids start at a random point, so the id a sent-message record keeps names no other
/// session after a restart or on another instance.
static NEXT_SESSION: LazyLock<AtomicU64> =
    LazyLock::new(|| AtomicU64::new(rand::random::<u64>() >> 2));

/// What every session is given: the `[smpp]` settings and the three services a session calls
/// (who may bind, where submits go, where receivers take their deliver_sm).
pub struct Shared {
    pub settings: SmppConfig,
    pub auth: Authenticator,
    pub submitter: Arc<Submitter>,
    pub delivery: Arc<Delivery>,
    pub board: Arc<board::Board>,
}

enum State {
    Open,
    Binding,
    Bound {
        kind: BindKind,
        account: Arc<BoundAccount>,
    },
    /// The server sent unbind and waits for unbind_resp.
    Unbinding(BindKind),
}

impl State {
    /// The `state` label of `smpp_sessions_active`.
    fn label(&self) -> &'static str {
        match self {
            State::Open | State::Binding => "open",
            State::Bound { kind, .. } | State::Unbinding(kind) => match kind {
                BindKind::Transmitter => "bound_tx",
                BindKind::Receiver => "bound_rx",
                BindKind::Transceiver => "bound_trx",
            },
        }
    }
}

/// Completions that arrive from tasks the session started.
enum Event {
    BindChecked {
        sequence_number: u32,
        kind: BindKind,
        result: Result<BoundAccount, SmppError>,
    },
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
    /// The ESME unbound: answer it once the requests in flight are answered, then close.
    UnbindRequested(u32),
}

/// The deliver_sm side of a receiver or transceiver bind.
struct Receiving {
    account: Arc<Account>,
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
    /// deliver_sm awaiting deliver_sm_resp, by sequence number, with when each went out.
    pending: HashMap<u32, (Outgoing, Instant)>,
}

pub struct Session {
    id: u64,
    shared: Arc<Shared>,
    peer: SocketAddr,
    tls: bool,
    state: State,
    out: mpsc::Sender<Outbound>,
    /// A place in the writer's queue, taken before a PDU is read so its answer never waits.
    slot: Option<OwnedPermit<Outbound>>,
    /// Set when the peer is found not to read: a PDU found the writer's queue full, or what
    /// was written did not drain in time. Nothing more is sent to it.
    not_reading: bool,
    writes: Arc<writer::Progress>,
    events: mpsc::UnboundedSender<Event>,
    window: Arc<Semaphore>,
    /// The requests in flight, each ending in its answer; one holds a permit of `window`.
    requests: FuturesUnordered<BoxFuture<'static, Outbound>>,
    /// Answers that found the writer's queue full, oldest first. While there are any, the
    /// reserved place goes to them, so nothing more is read.
    waiting: VecDeque<Outbound>,
    next_sequence: u32,
    opened: Instant,
    last_heard: Instant,
    /// When our enquire_link went out, while it is unanswered.
    enquire_sent: Option<Instant>,
    unbind_sent: Option<Instant>,
    receiving: Option<Receiving>,
    /// This session's stop signal: the server's shutdown, or the operator's disconnect.
    stop: Shutdown,
    /// Its place on the board, while bound.
    entry: Option<Arc<board::Entry>>,
}

/// Serves one connection until it closes.
pub async fn run<S>(stream: S, peer: SocketAddr, tls: bool, shared: Arc<Shared>, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    let span = info_span!("session", id, %peer, tls, system_id = tracing::field::Empty);
    serve(id, stream, peer, tls, shared, shutdown)
        .instrument(span)
        .await
}

async fn serve<S>(
    id: u64,
    stream: S,
    peer: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    shutdown: Shutdown,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let smpp = &shared.settings;
    let shutdown = shutdown.child_token();
    let (read_half, write_half) = tokio::io::split(stream);
    let (out, queue) = mpsc::channel(smpp.window * 2 + 16);
    let writes = Arc::new(writer::Progress::default());
    let window = Arc::new(Semaphore::new(smpp.window));
    let in_flight = writer::InFlight {
        window: Arc::clone(&window),
        size: smpp.window,
    };
    let writer = tokio::spawn(
        writer::run(write_half, queue, Arc::clone(&writes), in_flight).in_current_span(),
    );
    let (events, mut completions) = mpsc::unbounded_channel();
    let mut frames = FramedRead::with_capacity(
        read_half,
        SmppCodec::new(smpp.max_command_length),
        // Not the 8 KiB a codec starts with by default: thousands of idle binds add up. The
        // codec grows each read while the peer keeps the buffer full.
        smpp_codec::MIN_READ,
    );
    let now = Instant::now();
    let tick = tick_period(smpp);
    let mut timer = Box::pin(tokio::time::sleep_until(now + tick));
    // Set while the timer waits for the enquire_link rather than the next tick.
    let mut quiet = false;

    let mut session = Session {
        id,
        window,
        requests: FuturesUnordered::new(),
        waiting: VecDeque::new(),
        shared: Arc::clone(&shared),
        peer,
        tls,
        state: State::Open,
        out,
        slot: None,
        not_reading: false,
        writes,
        events,
        next_sequence: 1,
        opened: now,
        last_heard: now,
        enquire_sent: None,
        unbind_sent: None,
        receiving: None,
        stop: shutdown.clone(),
        entry: None,
    };
    metrics::get().sessions.with_label_values(&["open"]).inc();
    debug!("connected");

    let mut unbind_answer = None;
    let mut shutting_down = false;
    // Made once: a new one per turn of the loop would join and leave the token's waiters each
    // time, under its lock.
    let mut cancelled = std::pin::pin!(shutdown.cancelled());
    loop {
        let flow = tokio::select! {
            () = &mut cancelled, if !shutting_down => {
                shutting_down = true;
                session.on_shutdown()
            }
            Some(event) = completions.recv() => session.on_event(event).await,
            // Polled whatever the writer's queue holds: a gateway call under way goes on.
            () = answers(&mut session.requests, &mut session.waiting),
                if !session.requests.is_empty() =>
            {
                session.send_waiting();
                Flow::Continue
            }
            slot = session.out.clone().reserve_owned(), if session.slot.is_none() => {
                match slot {
                    Ok(slot) => {
                        session.slot = Some(slot);
                        session.send_waiting();
                        Flow::Continue
                    }
                    Err(_) => Flow::Close,
                }
            }
            frame = frames.next(), if session.slot.is_some() => match frame {
                None => {
                    debug!("peer closed the connection");
                    Flow::Close
                }
                Some(Err(e)) => {
                    debug!(error = %e, "read failed");
                    Flow::Close
                }
                Some(Ok(inbound)) => session.on_inbound(inbound),
            },
            () = &mut timer => {
                let flow = session.on_tick();
                let now = Instant::now();
                quiet = !session.is_busy();
                timer.as_mut().reset(if quiet {
                    session.enquire_due(now, tick)
                } else {
                    now + tick
                });
                flow
            }
            Some(outgoing) = next_outgoing(&mut session.receiving), if session.slot.is_some() => {
                session.on_outgoing(outgoing)
            }
        };
        if session.not_reading {
            break;
        }
        // A quiet session sleeps until its enquire_link is due; once something is under way
        // again its timers are looked at every tick. A busy session does not look here at all.
        if quiet && session.is_busy() {
            quiet = false;
            timer.as_mut().reset(Instant::now() + tick);
        }
        match flow {
            Flow::Continue => {}
            Flow::Close => break,
            Flow::UnbindRequested(sequence_number) => {
                unbind_answer = Some(sequence_number);
                break;
            }
        }
    }
    session.close(unbind_answer).await;
    session.stop_receiving();
    if let Some(entry) = session.entry.take() {
        shared.board.remove(entry.id);
    }
    metrics::get()
        .sessions
        .with_label_values(&[session.state.label()])
        .dec();
    drop(session);
    // A peer that stopped reading could hold the writer forever; it gets the response timeout
    // to take what is queued, then the socket is dropped.
    let mut writer = writer;
    if tokio::time::timeout(shared.settings.response_timeout, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    info!("session closed");
}

/// Every answer the requests in flight have ready, added to `waiting`; resolves once there is
/// at least one. All of them at once: a busy bind's answers come in bursts, and each turn of
/// the session's loop polls all of its other sources too.
fn answers<'a>(
    requests: &'a mut FuturesUnordered<BoxFuture<'static, Outbound>>,
    waiting: &'a mut VecDeque<Outbound>,
) -> impl Future<Output = ()> + 'a {
    std::future::poll_fn(move |cx| {
        let before = waiting.len();
        while let Poll::Ready(Some(answer)) = requests.poll_next_unpin(cx) {
            waiting.push_back(answer);
        }
        if waiting.len() > before {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
}

/// The next deliver_sm for a receiver bind; never resolves otherwise.
async fn next_outgoing(receiving: &mut Option<Receiving>) -> Option<Outgoing> {
    match receiving {
        Some(receiving) => receiving.outgoing.recv().await,
        None => std::future::pending().await,
    }
}

/// Timers are checked on a tick rather than per PDU, which keeps the hot path free of timer
/// registrations; a quarter of the shortest timer is precise enough. A bound session with
/// nothing under way does not tick (see `Session::enquire_due`).
fn tick_period(smpp: &crate::config::SmppConfig) -> Duration {
    let shortest = smpp
        .bind_timeout
        .min(smpp.enquire_link_interval)
        .min(smpp.response_timeout);
    (shortest / 4).clamp(Duration::from_millis(20), Duration::from_secs(1))
}

impl Session {
    fn on_inbound(&mut self, inbound: Inbound) -> Flow {
        self.last_heard = Instant::now();
        metrics::get().received(inbound.command_id());
        // Any PDU proves the peer is alive, which is all our enquire_link asks.
        self.enquire_sent = None;
        match inbound {
            Inbound::Request {
                sequence_number,
                request,
            } => self.on_request(sequence_number, request),
            Inbound::Response {
                command_id,
                command_status,
                sequence_number,
                ..
            } => self.on_response(command_id, command_status, sequence_number),
            Inbound::Invalid {
                command_id,
                sequence_number,
                status,
                reason,
            } => {
                warn!(
                    command = command_name(command_id),
                    sequence_number,
                    status = status.name(),
                    %reason,
                    "malformed PDU"
                );
                let body = ResponseBody::error_for(command_id);
                self.respond(sequence_number, status, body);
                Flow::Continue
            }
            Inbound::BadLength {
                command_length,
                sequence_number,
            } => {
                warn!(
                    command_length,
                    "command_length out of range; framing is lost, closing"
                );
                self.respond(sequence_number, ESME_RINVCMDLEN, ResponseBody::GenericNack);
                Flow::Close
            }
        }
    }

    fn on_request(&mut self, sequence_number: u32, request: Request) -> Flow {
        match request {
            Request::EnquireLink => {
                self.respond(sequence_number, ESME_ROK, ResponseBody::EnquireLink);
                Flow::Continue
            }
            Request::Bind(bind) => {
                self.on_bind(sequence_number, bind);
                Flow::Continue
            }
            Request::Unbind => match self.state {
                // Also while our own unbind is unanswered: both sides want the same thing.
                State::Bound { .. } | State::Unbinding(_) => Flow::UnbindRequested(sequence_number),
                _ => {
                    self.respond(sequence_number, ESME_RINVBNDSTS, ResponseBody::Unbind);
                    Flow::Continue
                }
            },
            operation => {
                self.on_operation(sequence_number, operation);
                Flow::Continue
            }
        }
    }

    /// submit_sm and the other requests of a transmitter: run within the window.
    fn on_operation(&mut self, sequence_number: u32, request: Request) {
        let command_id = request.command_id();
        let account = match &self.state {
            State::Bound { kind, account } if kind.can_transmit() => Arc::clone(account),
            _ => {
                self.respond(
                    sequence_number,
                    ESME_RINVBNDSTS,
                    ResponseBody::error_for(command_id),
                );
                return;
            }
        };
        let Ok(permit) = Arc::clone(&self.window).try_acquire_owned() else {
            self.respond(
                sequence_number,
                ESME_RTHROTTLED,
                ResponseBody::error_for(command_id),
            );
            return;
        };
        let submitter = Arc::clone(&self.shared.submitter);
        let submits = matches!(command_id, SUBMIT_SM | DATA_SM | SUBMIT_MULTI);
        let entry = self.entry.clone().filter(|_| submits);
        let answered = async move {
            let (status, body) = operations::handle(&submitter, &account, request).await;
            if let Some(entry) = entry {
                entry.submit_answered(status.is_ok());
                crate::activity::get().submit_answered(status.is_ok());
            }
            // The window slot is free before the answer can reach the ESME: a client that
            // sends its next request the moment it reads this answer finds the slot open.
            drop(permit);
            (status, body)
        };
        // A bug in one request's handling answers that request, rather than ending the bind
        // whose task polls it.
        self.requests.push(Box::pin(
            std::panic::AssertUnwindSafe(answered)
                .catch_unwind()
                .map(move |answered| {
                    let (status, body) = answered.unwrap_or_else(|_| {
                        error!(sequence_number, "request handling failed");
                        (ESME_RSYSERR, ResponseBody::error_for(command_id))
                    });
                    Outbound::Response {
                        sequence_number,
                        status,
                        body,
                    }
                }),
        ));
    }

    fn on_response(
        &mut self,
        command_id: u32,
        command_status: CommandStatus,
        sequence_number: u32,
    ) -> Flow {
        match command_id {
            DELIVER_SM_RESP => {
                let answered = self
                    .receiving
                    .as_mut()
                    .and_then(|r| r.pending.remove(&sequence_number));
                self.note_awaiting();
                match answered {
                    Some((outgoing, _)) => {
                        if command_status.is_ok() {
                            let receipt = crate::delivery::is_receipt(&outgoing.body);
                            if let Some(entry) = &self.entry {
                                entry.deliver_sm_accepted(receipt);
                            }
                            crate::activity::get().deliver_sm_accepted();
                        }
                        let _ = outgoing.reply.send(command_status);
                    }
                    None => debug!(sequence_number, "deliver_sm_resp for no pending deliver_sm"),
                }
                Flow::Continue
            }
            UNBIND_RESP if matches!(self.state, State::Unbinding(_)) => {
                debug!("unbind answered");
                Flow::Close
            }
            GENERIC_NACK => {
                warn!(
                    sequence_number,
                    status = command_status.name(),
                    "ESME sent generic_nack"
                );
                // A nack of a deliver_sm is its refusal: the dispatcher retries it.
                if let Some((outgoing, _)) = self
                    .receiving
                    .as_mut()
                    .and_then(|r| r.pending.remove(&sequence_number))
                {
                    let _ = outgoing.reply.send(CommandStatus(command_status.0.max(1)));
                }
                self.note_awaiting();
                Flow::Continue
            }
            _ => Flow::Continue,
        }
    }

    async fn on_event(&mut self, event: Event) -> Flow {
        match event {
            Event::BindChecked {
                sequence_number,
                kind,
                result,
            } => self.finish_bind(sequence_number, kind, result).await,
        }
    }

    /// Sends a deliver_sm from the dispatcher; the dispatcher only hands over as many as the
    /// bind's deliver_sm window allows.
    fn on_outgoing(&mut self, outgoing: Outgoing) -> Flow {
        if !matches!(self.state, State::Bound { .. }) {
            // Unbinding: dropping it unanswered returns it to the queue.
            return Flow::Continue;
        }
        let sequence_number = self.next_sequence();
        let body = outgoing.body.clone();
        if let Some(receiving) = self.receiving.as_mut() {
            receiving
                .pending
                .insert(sequence_number, (outgoing, Instant::now()));
        }
        self.note_awaiting();
        self.send(Outbound::DeliverSm {
            sequence_number,
            body,
        });
        Flow::Continue
    }

    /// A deliver_sm unanswered after the response timeout is given back to the dispatcher,
    /// which retries it.
    fn expire_deliveries(&mut self, now: Instant) {
        let timeout = self.shared.settings.response_timeout;
        if let Some(receiving) = self.receiving.as_mut() {
            let before = receiving.pending.len();
            receiving
                .pending
                .retain(|_, (_, sent)| now - *sent < timeout);
            let expired = before - receiving.pending.len();
            if expired > 0 {
                info!(expired, ?timeout, "deliver_sm not answered in time");
                self.note_awaiting();
            }
        }
    }

    /// Shows the console how many deliver_sm await their answer.
    fn note_awaiting(&self) {
        if let (Some(entry), Some(receiving)) = (&self.entry, &self.receiving) {
            entry.set_awaiting(receiving.pending.len());
        }
    }

    /// Leaves the account's receivers; what was sent and not answered goes back to the queue.
    fn stop_receiving(&mut self) {
        if let Some(receiving) = self.receiving.take() {
            self.shared
                .delivery
                .receiver_unbound(&receiving.account, self.id);
        }
    }

    /// Anything a timer watches: a bind not made yet, an enquire_link or unbind not answered,
    /// deliver_sm awaiting their answer, requests in flight, answers not yet written.
    fn is_busy(&self) -> bool {
        !matches!(self.state, State::Bound { .. })
            || self.enquire_sent.is_some()
            || self
                .receiving
                .as_ref()
                .is_some_and(|receiving| !receiving.pending.is_empty())
            || self.window.available_permits() < self.shared.settings.window
            || !self.waiting.is_empty()
            // The loop keeps one place reserved for the next answer; beyond it, queued PDUs.
            || self.out.capacity() + usize::from(self.slot.is_some()) < self.out.max_capacity()
    }

    /// When a quiet session's enquire_link falls due: thousands of quiet binds then cost no
    /// wake-ups between their enquire_links.
    fn enquire_due(&self, now: Instant, tick: Duration) -> Instant {
        (self.last_heard + self.shared.settings.enquire_link_interval).max(now + tick)
    }

    fn on_tick(&mut self) -> Flow {
        let now = Instant::now();
        self.expire_deliveries(now);
        let smpp = &self.shared.settings;
        if let Some(blocked) = self.writes.blocked_for()
            && blocked >= smpp.response_timeout
        {
            warn!(
                peer = %self.peer,
                ?blocked,
                "the peer does not read; what it was sent has not drained, closing"
            );
            self.not_reading = true;
            return Flow::Close;
        }
        match self.state {
            State::Open | State::Binding if now - self.opened >= smpp.bind_timeout => {
                info!(timeout = ?smpp.bind_timeout, "no bind in time, closing");
                return Flow::Close;
            }
            State::Unbinding(_)
                if self
                    .unbind_sent
                    .is_some_and(|t| now - t >= smpp.response_timeout) =>
            {
                info!("unbind not answered, closing");
                return Flow::Close;
            }
            _ => {}
        }
        match self.enquire_sent {
            Some(sent) if now - sent >= smpp.response_timeout => {
                info!("enquire_link not answered, closing");
                Flow::Close
            }
            // With the writer's queue full the peer is not reading: the enquire_link would
            // prove nothing, and the drain check above settles it.
            None if now - self.last_heard >= smpp.enquire_link_interval
                && (self.slot.is_some() || self.out.capacity() > 0) =>
            {
                let sequence_number = self.next_sequence();
                self.send(Outbound::EnquireLink { sequence_number });
                self.enquire_sent = Some(now);
                Flow::Continue
            }
            _ => Flow::Continue,
        }
    }

    /// Bound ESMEs get an unbind and a moment to answer it; others are simply closed.
    fn on_shutdown(&mut self) -> Flow {
        match self.state {
            State::Bound { kind, .. } => {
                let sequence_number = self.next_sequence();
                self.send(Outbound::Unbind { sequence_number });
                self.set_state(State::Unbinding(kind));
                self.unbind_sent = Some(Instant::now());
                Flow::Continue
            }
            _ => Flow::Close,
        }
    }

    /// Finishes (bounded) the requests in flight so every accepted request is answered, then
    /// answers a pending unbind. A peer that does not read could not take those answers, so
    /// its session does not wait for them: requests not answered are dropped, and the ESME,
    /// which never heard of them, sends them again.
    async fn close(&mut self, unbind_answer: Option<u32>) {
        if self.not_reading {
            return;
        }
        let grace = self.shared.settings.shutdown_grace;
        let (requests, waiting, out) = (&mut self.requests, &mut self.waiting, &self.out);
        // The reserved place, if any, is the writer's to give again.
        self.slot = None;
        let answered = async {
            // The answers already waiting first, in order; then each request as it finishes.
            loop {
                let answer = match waiting.pop_front() {
                    Some(answer) => answer,
                    None => match requests.next().await {
                        Some(answer) => answer,
                        None => break,
                    },
                };
                if out.send(answer).await.is_err() {
                    break;
                }
            }
        };
        if tokio::time::timeout(grace, answered).await.is_err() {
            warn!(?grace, "requests still in flight at close");
        }
        if let Some(sequence_number) = unbind_answer {
            self.respond(sequence_number, ESME_ROK, ResponseBody::Unbind);
        }
    }

    fn respond(&mut self, sequence_number: u32, status: CommandStatus, body: ResponseBody) {
        self.send(Outbound::Response {
            sequence_number,
            status,
            body,
        });
    }

    /// Queues the answers of requests in flight, in order, as far as there is room: into free
    /// places first, so the place reserved for the next PDU read stays reserved (and need not
    /// be taken again), then into the reserved one; what is left waits for the next place the
    /// loop reserves.
    fn send_waiting(&mut self) {
        while let Some(answer) = self.waiting.pop_front() {
            let full = match self.out.try_send(answer) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(answer)) => answer,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    debug!("writer gone; answers dropped");
                    self.waiting.clear();
                    return;
                }
            };
            match self.slot.take() {
                Some(slot) => {
                    slot.send(full);
                }
                None => {
                    self.waiting.push_front(full);
                    return;
                }
            }
        }
    }

    /// Queues a PDU for the writer without waiting: into the place reserved before the PDU
    /// being answered was read, else into any free place. A full queue means the peer stopped
    /// reading long enough for the window and every deliver_sm to pile up; the session ends.
    fn send(&mut self, pdu: Outbound) {
        if let Some(slot) = self.slot.take() {
            slot.send(pdu);
            return;
        }
        match self.out.try_send(pdu) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(peer = %self.peer, "the peer does not read; its queue is full, closing");
                self.not_reading = true;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => debug!("writer gone; PDU dropped"),
        }
    }

    /// Every state change goes through here so the sessions gauge stays right.
    fn set_state(&mut self, state: State) {
        let (before, after) = (self.state.label(), state.label());
        if before != after {
            let sessions = &metrics::get().sessions;
            sessions.with_label_values(&[before]).dec();
            sessions.with_label_values(&[after]).inc();
        }
        self.state = state;
    }

    fn next_sequence(&mut self) -> u32 {
        let sequence_number = self.next_sequence;
        self.next_sequence = if sequence_number >= 0x7FFF_FFFF {
            1
        } else {
            sequence_number + 1
        };
        sequence_number
    }
}
