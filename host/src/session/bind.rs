//! bind_transmitter / bind_receiver / bind_transceiver. The credential check runs as a task so
//! the session keeps answering enquire_link while the gateway thinks; its result comes back to
//! the session as an event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use chrono::Utc;

use tracing::{Instrument, Span, info, warn};

use super::board::Entry;
use super::{Event, Flow, Receiving, Session, State};
use crate::auth::BoundAccount;
use crate::metrics;
use smpp_codec::pdu::{Bind, BindKind, ResponseBody};
use smpp_codec::status::*;

/// SMPP 3.4, announced in every bind response.
const SC_INTERFACE_VERSION: u8 = 0x34;

impl Session {
    pub(super) fn on_bind(&mut self, sequence_number: u32, bind: Bind) {
        if !matches!(self.state, State::Open) {
            self.answer_bind(sequence_number, bind.kind, ESME_RALYBND);
            return;
        }
        self.set_state(State::Binding);
        let shared = Arc::clone(&self.shared);
        let events = self.events.clone();
        let kind = bind.kind;
        let (peer, tls, session) = (self.peer, self.tls, self.id);
        tokio::spawn(
            async move {
                let result = shared.auth.authenticate(&bind, peer, tls, session).await;
                let _ = events.send(Event::BindChecked {
                    sequence_number,
                    kind,
                    result,
                });
            }
            .in_current_span(),
        );
    }

    /// Answers the bind. A refused bind closes the link, as most SMSCs do: each guess then
    /// costs a new connection, and the bind guard's delay a new wait.
    pub(super) async fn finish_bind(
        &mut self,
        sequence_number: u32,
        kind: BindKind,
        result: Result<BoundAccount, SmppError>,
    ) -> Flow {
        if !matches!(self.state, State::Binding) {
            // Shutdown began while the check ran.
            self.answer_bind(sequence_number, kind, ESME_RBINDFAIL);
            return Flow::Close;
        }
        let outcome = if result.is_ok() { "success" } else { "failure" };
        metrics::get()
            .bind_attempts
            .with_label_values(&[kind.short_name(), outcome])
            .inc();
        match result {
            Ok(bound) => {
                Span::current().record("system_id", bound.account.name.as_str());
                info!(bind = kind.as_str(), "bound");
                // bind_resp goes out first: a queued deliver_sm must not reach the ESME before
                // it knows it is bound.
                self.answer_bind(sequence_number, kind, ESME_ROK);
                if kind.can_receive() {
                    let outgoing = self
                        .shared
                        .delivery
                        .receiver_bound(&bound.account, self.id)
                        .await;
                    self.receiving = Some(Receiving {
                        account: Arc::clone(&bound.account),
                        outgoing,
                        pending: HashMap::new(),
                    });
                }
                let entry = Arc::new(Entry {
                    id: self.id,
                    peer: self.peer,
                    tls: self.tls,
                    kind,
                    account: Arc::clone(&bound.account),
                    since: Utc::now(),
                    window: Arc::clone(&self.window),
                    window_size: self.shared.settings.window,
                    awaiting: AtomicUsize::new(0),
                    submitted: AtomicU64::new(0),
                    refused: AtomicU64::new(0),
                    receipts: AtomicU64::new(0),
                    incoming: AtomicU64::new(0),
                    stop: self.stop.clone(),
                });
                self.shared.board.add(Arc::clone(&entry));
                self.entry = Some(entry);
                self.set_state(State::Bound {
                    kind,
                    account: Arc::new(bound),
                });
                Flow::Continue
            }
            Err(refusal) => {
                warn!(
                    bind = kind.as_str(),
                    status = refusal.status.name(),
                    reason = %refusal.reason,
                    "bind refused"
                );
                self.set_state(State::Open);
                self.answer_bind(sequence_number, kind, refusal.status);
                Flow::Close
            }
        }
    }

    fn answer_bind(&mut self, sequence_number: u32, kind: BindKind, status: CommandStatus) {
        let body = ResponseBody::Bind {
            kind,
            system_id: self.shared.settings.system_id.clone(),
            sc_interface_version: Some(SC_INTERFACE_VERSION),
        };
        self.respond(sequence_number, status, body);
    }
}
