//! The requests of a bound transmitter, one function each: submit_sm, data_sm, submit_multi
//! (sharing the submit pipeline), query_sm, cancel_sm and replace_sm. Each returns the status and
//! body of its response; the session puts them on the wire.

use std::time::Instant;

use chrono::Utc;
use tracing::{debug, info};

use crate::auth::{Account, BoundAccount};
use crate::gateway::{self, MessageState};
use crate::ids;
use crate::message::{self, Decoded};
use crate::metrics;
use crate::pipeline::{Accepted, Submitter};
use crate::receipt::ReceiptState;
use smpp_codec::command::QUERY_SM;
use smpp_codec::pdu::{
    Address, CancelSm, DestAddress, QuerySm, Request, ResponseBody, SubmitMulti, UnsuccessSme,
};
use smpp_codec::status::*;
use smpp_codec::time as smpp_time;

/// SMSGate takes at most this many phone numbers per message.
const MAX_RECIPIENTS: usize = 100;

pub async fn handle(
    submitter: &Submitter,
    bound: &BoundAccount,
    request: Request,
) -> (CommandStatus, ResponseBody) {
    let account = &bound.account;
    let submits = matches!(
        request,
        Request::SubmitSm(_) | Request::DataSm(_) | Request::SubmitMulti(_)
    );
    if submits && !bound.admit_message().await {
        debug!("account over its messages-per-second limit");
        return (
            ESME_RTHROTTLED,
            ResponseBody::error_for(request.command_id()),
        );
    }
    let alphabets = submitter.alphabets();
    let now = Utc::now();
    let started = Instant::now();
    match request {
        Request::SubmitSm(pdu) => {
            let decoded = message::from_submit_sm(&pdu, alphabets, now);
            let (status, message_id) = submit(submitter, bound, decoded).await;
            let metrics = metrics::get();
            metrics
                .submit_sm_duration
                .observe(started.elapsed().as_secs_f64());
            metrics.submit_answered(status);
            (status, ResponseBody::SubmitSm { message_id })
        }
        Request::DataSm(pdu) => {
            let decoded = message::from_data_sm(&pdu, alphabets, now);
            let (status, message_id) = submit(submitter, bound, decoded).await;
            (status, ResponseBody::DataSm { message_id })
        }
        Request::SubmitMulti(pdu) => submit_multi(submitter, bound, &pdu).await,
        Request::QuerySm(pdu) => {
            let (status, body) = query(account, &pdu).await;
            let metrics = metrics::get();
            metrics
                .query_sm_duration
                .observe(started.elapsed().as_secs_f64());
            metrics.query_sm.with_label_values(&[status.name()]).inc();
            (status, body)
        }
        Request::CancelSm(pdu) => cancel(account, &pdu).await,
        Request::ReplaceSm(_) => (
            // SMSGate has no way to change a message once accepted.
            ESME_RREPLACEFAIL,
            ResponseBody::ReplaceSm,
        ),
        // The session answers these itself and never hands them over.
        other @ (Request::Bind(_) | Request::EnquireLink | Request::Unbind) => {
            (ESME_RINVBNDSTS, ResponseBody::error_for(other.command_id()))
        }
    }
}

async fn submit(
    submitter: &Submitter,
    bound: &BoundAccount,
    decoded: Result<Decoded, SmppError>,
) -> (CommandStatus, String) {
    match accept(submitter, bound, decoded).await {
        Ok(accepted) => (ESME_ROK, accepted.message_id),
        Err(status) => (status, String::new()),
    }
}

async fn accept(
    submitter: &Submitter,
    bound: &BoundAccount,
    decoded: Result<Decoded, SmppError>,
) -> Result<Accepted, CommandStatus> {
    let result = match decoded {
        Ok(decoded) => {
            submitter
                .submit(&bound.account, decoded, Some(bound.session))
                .await
        }
        Err(rejection) => Err(rejection),
    };
    result.map_err(|rejection| {
        info!(
            status = rejection.status.name(),
            reason = %rejection.reason,
            "submit refused"
        );
        rejection.status
    })
}

/// One gateway message to every valid SME destination; distribution lists and bad addresses
/// are reported per entry in unsuccess_sme.
async fn submit_multi(
    submitter: &Submitter,
    bound: &BoundAccount,
    pdu: &SubmitMulti,
) -> (CommandStatus, ResponseBody) {
    let mut destinations: Vec<Address> = Vec::new();
    let mut unsuccess = Vec::new();
    for destination in &pdu.destinations {
        match destination {
            DestAddress::Sme(address) if address.addr.trim().is_empty() => {
                unsuccess.push(UnsuccessSme {
                    address: address.clone(),
                    error_status: ESME_RINVDSTADR,
                });
            }
            DestAddress::Sme(address) => {
                if !destinations.iter().any(|d| d.addr == address.addr) {
                    destinations.push(address.clone());
                }
            }
            DestAddress::DistributionList(name) => unsuccess.push(UnsuccessSme {
                // There are no distribution lists at the gateway.
                address: Address {
                    ton: 0,
                    npi: 0,
                    addr: name.clone(),
                },
                error_status: ESME_RINVDLNAME,
            }),
        }
    }
    let failed = |status: CommandStatus| {
        (
            status,
            ResponseBody::SubmitMulti {
                message_id: String::new(),
                unsuccess: Vec::new(),
            },
        )
    };
    if destinations.is_empty() {
        return failed(
            unsuccess
                .first()
                .map_or(ESME_RINVNUMDESTS, |u| u.error_status),
        );
    }
    if destinations.len() > MAX_RECIPIENTS {
        return failed(ESME_RINVNUMDESTS);
    }
    let decoded =
        message::from_submit_multi(pdu, destinations.clone(), submitter.alphabets(), Utc::now());
    match accept(submitter, bound, decoded).await {
        Ok(accepted) => {
            if let Some(state) = &accepted.state {
                unsuccess.extend(failed_recipients(state, &destinations));
            }
            (
                ESME_ROK,
                ResponseBody::SubmitMulti {
                    message_id: accepted.message_id,
                    unsuccess,
                },
            )
        }
        Err(status) => failed(status),
    }
}

/// Recipients the gateway already marked failed when it accepted the message.
fn failed_recipients(state: &MessageState, destinations: &[Address]) -> Vec<UnsuccessSme> {
    state
        .recipients
        .iter()
        .filter(|r| r.state == "Failed")
        .filter_map(|r| {
            let address = destinations.iter().find(|d| {
                d.addr.trim_start_matches('+') == r.phone_number.trim_start_matches('+')
            })?;
            Some(UnsuccessSme {
                address: address.clone(),
                error_status: ESME_RINVDSTADR,
            })
        })
        .collect()
}

async fn query(account: &Account, pdu: &QuerySm) -> (CommandStatus, ResponseBody) {
    let gateway_id = ids::gateway_id(&pdu.message_id);
    match account
        .gateway
        .get_message(&account.credentials, gateway_id)
        .await
    {
        Ok(state) => {
            let message_state = message_state(&state.state);
            let final_date = match message_state {
                ReceiptState::Enroute | ReceiptState::Unknown => String::new(),
                _ => state
                    .states
                    .get(&state.state)
                    .map(|at| smpp_time::format_absolute(*at))
                    .unwrap_or_default(),
            };
            (
                ESME_ROK,
                ResponseBody::QuerySm {
                    message_id: pdu.message_id.clone(),
                    final_date,
                    message_state: message_state.message_state(),
                    error_code: 0,
                },
            )
        }
        Err(e) => {
            debug!(message_id = %pdu.message_id, error = %e, "query_sm failed");
            (gateway::query_status(&e), ResponseBody::error_for(QUERY_SM))
        }
    }
}

fn message_state(gateway_state: &str) -> ReceiptState {
    match gateway_state {
        "Pending" | "Processed" | "Sent" | "Cancelling" => ReceiptState::Enroute,
        "Delivered" => ReceiptState::Delivered,
        "Failed" => ReceiptState::Undeliverable,
        "Cancelled" => ReceiptState::Deleted,
        _ => ReceiptState::Unknown,
    }
}

async fn cancel(account: &Account, pdu: &CancelSm) -> (CommandStatus, ResponseBody) {
    if pdu.message_id.is_empty() {
        // Cancelling "everything from this source to that destination" has no gateway call.
        return (ESME_RCANCELFAIL, ResponseBody::CancelSm);
    }
    let gateway_id = ids::gateway_id(&pdu.message_id);
    match account
        .gateway
        .cancel_message(&account.credentials, gateway_id)
        .await
    {
        Ok(()) => (ESME_ROK, ResponseBody::CancelSm),
        Err(e) => {
            debug!(message_id = %pdu.message_id, error = %e, "cancel_sm failed");
            (gateway::cancel_status(&e), ResponseBody::CancelSm)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_states_map_to_smpp_message_states() {
        let states: Vec<u8> = [
            "Pending",
            "Processed",
            "Sent",
            "Delivered",
            "Failed",
            "Cancelled",
            "Whatever",
        ]
        .iter()
        .map(|s| message_state(s).message_state())
        .collect();
        assert_eq!(states, [1, 1, 1, 2, 5, 4, 7]);
    }
}
