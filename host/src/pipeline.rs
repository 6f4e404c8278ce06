//! The path of an accepted message from its decoded form to the gateway: reassembly of parts,
//! then the `POST /messages` call. Policy plugins hook in here, between decoding and the call.
//! The `Submitter` owns what this path needs and nothing else: the reassembly buffer, the
//! plugins, the record of sent messages and the configured alphabets.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tracing::{debug, info, warn};

use crate::auth::{self, Account};
use crate::concat::{Assembled, Progress, Reassembler};
use crate::delivery::Delivery;
use crate::gateway::{self, GatewayError, MessageState};
use crate::ids;
use crate::message::{self, Content, Decoded, Submission};
use crate::policy;
use crate::receipt;
use delivery_store::{SentLogError, SentRecord};
use smpp_codec::pdu::Address;
use smpp_codec::status::*;
use sms_text::AlphabetChoices;
use smsgate_plugin_host::{Hook, Plugins, types};

/// What the ESME is told about an accepted message.
pub struct Accepted {
    /// The id for this PDU's response (a part id for a part).
    pub message_id: String,
    /// The gateway's answer, when this PDU caused a gateway call.
    pub state: Option<MessageState>,
}

pub struct Submitter {
    concat: Reassembler,
    plugins: Arc<Plugins>,
    /// Where messages that want receipts are recorded.
    delivery: Arc<Delivery>,
    alphabets: AlphabetChoices,
}

impl Submitter {
    pub fn new(
        concat: Reassembler,
        plugins: Arc<Plugins>,
        delivery: Arc<Delivery>,
        alphabets: AlphabetChoices,
    ) -> Self {
        Submitter {
            concat,
            plugins,
            delivery,
            alphabets,
        }
    }

    /// What data_coding 0 and 1 mean for this server's ESMEs.
    pub fn alphabets(&self) -> AlphabetChoices {
        self.alphabets
    }

    /// Sends what `session` submitted (a whole message, or the part that completes one).
    pub async fn submit(
        &self,
        account: &Arc<Account>,
        decoded: Decoded,
        session: Option<u64>,
    ) -> Result<Accepted, SmppError> {
        match decoded {
            Decoded::Whole(submission) => {
                let message_id = ids::new_message_id();
                // On the heap, once: each async fn from the session's task down to here would
                // otherwise hold, and copy as it starts, the kilobytes of a send in progress.
                let state =
                    Box::pin(self.send(account, submission, &message_id, &[], session)).await?;
                Ok(Accepted { message_id, state })
            }
            Decoded::Part { template, part } => match self.concat.add(account, template, part) {
                Progress::Waiting { part_id } => {
                    debug!(%part_id, "part stored for reassembly");
                    Ok(Accepted {
                        message_id: part_id,
                        state: None,
                    })
                }
                Progress::Full => Err(SmppError::new(
                    ESME_RMSGQFUL,
                    "too many concatenated messages are waiting for their parts",
                )),
                Progress::Complete(assembled) => {
                    let submission = self.reassembled(&assembled)?;
                    let parts = part_ids(&assembled);
                    let sent =
                        self.send(account, submission, &assembled.message_id, &parts, session);
                    let state = Box::pin(sent).await?;
                    Ok(Accepted {
                        message_id: assembled.part_id,
                        state,
                    })
                }
            },
        }
    }

    /// Sends what arrived of concatenated messages whose parts ran out of time. The parts were
    /// acknowledged when they arrived, so they are not dropped: the phone gets the text that came,
    /// as a handset shows an incomplete concatenated SMS.
    pub async fn flush_expired(&self, now: Instant) {
        for assembled in self.concat.take_expired(now) {
            warn!(
                message_id = %assembled.message_id,
                account = %assembled.account.name,
                received = ?assembled.received,
                total = assembled.total,
                "concatenated message incomplete after the timeout; sending the parts that arrived"
            );
            let result = match self.reassembled(&assembled) {
                Ok(submission) => {
                    let parts = part_ids(&assembled);
                    // The parts came over time, maybe from several sessions: no preference.
                    self.send(
                        &assembled.account,
                        submission,
                        &assembled.message_id,
                        &parts,
                        None,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            if let Err(rejection) = result {
                warn!(
                    message_id = %assembled.message_id,
                    status = rejection.status.name(),
                    reason = %rejection.reason,
                    "incomplete concatenated message could not be sent"
                );
            }
        }
    }

    fn reassembled(&self, assembled: &Assembled) -> Result<Submission, SmppError> {
        let template = &assembled.template;
        let alphabet = message::alphabet_of(template, self.alphabets)?;
        let content = message::content(alphabet, &assembled.payload, assembled.port)?;
        Ok(Submission {
            content,
            ..template.clone()
        })
    }

    /// The transform-submit chain, then the route chain; a reject from either refuses the message.
    fn apply_plugins(
        &self,
        account: &Account,
        submission: Submission,
    ) -> Result<(Submission, Option<types::RouteDecision>), SmppError> {
        // Without submit plugins, copying the message into the contract's form is wasted work.
        if !self.plugins.handles(Hook::TransformSubmit) && !self.plugins.handles(Hook::Route) {
            return Ok((submission, None));
        }
        let view = auth::account_view(account);
        let message = self
            .plugins
            .transform_submit(&view, policy::message(&submission))
            .map_err(|status| SmppError::new(status, "refused by a transform-submit plugin"))?;
        let decision = self
            .plugins
            .route(&view, &message)
            .map_err(|status| SmppError::new(status, "refused by a route plugin"))?;
        Ok((policy::apply(submission, message), decision))
    }

    /// Remembers a message whose ESME wants receipts, before the gateway can report on it; the
    /// receipt quotes the ESME's own addresses, so they are taken before any plugin changes them.
    /// Returns the pending disk write, which runs while the gateway is called.
    fn record_for_receipts(
        &self,
        account: &Account,
        submission: &Submission,
        message_id: &str,
        part_ids: &[String],
        session: Option<u64>,
    ) -> Option<impl Future<Output = Result<(), SentLogError>> + use<>> {
        if !receipt::wants_any(submission.registered_delivery) {
            return None;
        }
        let record = SentRecord {
            account: account.name.clone(),
            source: submission.source.clone(),
            // Decoding gave TON 1 numbers a '+' for the gateway; SMPP writes them without.
            destinations: submission
                .destinations
                .iter()
                .map(|d| Address {
                    addr: match d.ton {
                        1 => d.addr.trim_start_matches('+').to_owned(),
                        _ => d.addr.clone(),
                    },
                    ..d.clone()
                })
                .collect(),
            registered_delivery: submission.registered_delivery,
            submitted_at: Utc::now(),
            text_prefix: match &submission.content {
                Content::Text(text) => Some(text.chars().take(20).collect()),
                Content::Binary { .. } => None,
            },
            part_ids: part_ids.to_vec(),
            session,
        };
        Some(self.delivery.record_submit(message_id, record))
    }

    async fn send(
        &self,
        account: &Account,
        submission: Submission,
        message_id: &str,
        part_ids: &[String],
        session: Option<u64>,
    ) -> Result<Option<MessageState>, SmppError> {
        let recording =
            self.record_for_receipts(account, &submission, message_id, part_ids, session);
        let (submission, decision) = self.apply_plugins(account, submission)?;
        let mut body = submission.to_gateway(message_id, Utc::now());
        let routed_credentials = policy::route(&mut body, account, decision.as_ref());
        let credentials = routed_credentials.as_ref().unwrap_or(&account.credentials);
        let sent = account.gateway.send_message(credentials, &body).await;
        if let Some(recording) = recording
            && let Err(e) = recording.await
        {
            // The gateway has the message either way; refusing it now would make the ESME send
            // it again. Only its receipt is lost, and the log says so.
            warn!(%message_id, error = %e, "cannot record the message; its receipts will not be sent");
        }
        match sent {
            Ok(state) => {
                // Fields of a disabled event are not evaluated: counting segments costs only
                // when debug logging is on.
                debug!(
                    %message_id,
                    operation = ?submission.kind,
                    service_type = %submission.service_type,
                    esm_class = submission.esm_class,
                    protocol_id = submission.protocol_id,
                    tlvs = submission.tlvs.len(),
                    recipients = body.phone_numbers.len(),
                    segments = match &submission.content {
                        Content::Text(text) => sms_text::segment_count(text),
                        Content::Binary { .. } => 1,
                    },
                    "accepted by the gateway"
                );
                Ok(state)
            }
            Err(e) => {
                let status = gateway::submit_status(&e);
                if status == ESME_RSUBMITFAIL
                    && matches!(&e, GatewayError::Http { status: http, .. } if http.is_client_error())
                {
                    info!(%message_id, error = %e, "gateway refused the message");
                }
                Err(SmppError::new(status, e.to_string()))
            }
        }
    }
}

/// The ids the ESME got for the parts that asked for a receipt; each may get one.
fn part_ids(assembled: &Assembled) -> Vec<String> {
    assembled
        .receipted
        .iter()
        .map(|&sequence| ids::part_id(&assembled.message_id, sequence))
        .collect()
}
