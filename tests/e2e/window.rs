//! Many requests in flight on one bind: asynchronous answers and the window limit.

use std::collections::HashMap;

use smpp_codec::command::SUBMIT_SM_RESP;
use smpp_codec::status::{ESME_ROK, ESME_RTHROTTLED};

use crate::client::*;
use crate::support::*;

/// Writes one submit_sm per destination in a single write, without waiting for any answer, and
/// returns the sequence numbers in request order.
async fn pipeline(esme: &mut Client, destinations: &[String]) -> Vec<u32> {
    let mut bytes = Vec::new();
    let mut sequences = Vec::new();
    for destination in destinations {
        let sequence = esme.next_sequence();
        let pdu = submit_sm(destination)
            .short_message(octets(b"pipelined"))
            .build();
        bytes.extend(esme.encode(sequence, pdu));
        sequences.push(sequence);
    }
    esme.write(&bytes).await;
    sequences
}

#[tokio::test]
async fn a_full_window_is_answered_out_of_order_each_request_once() {
    let h = Setup::new()
        .rule("0$", Outcome::Stall("300ms"))
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let destinations: Vec<String> = (0..64).map(|i| format!("49170000{i:04}")).collect();
    let sequences = pipeline(&mut esme, &destinations).await;

    let mut answered: HashMap<u32, usize> = HashMap::new();
    let mut order = Vec::new();
    for _ in 0..sequences.len() {
        let resp = esme.read().await;
        assert_eq!(
            (resp.command_id, resp.status),
            (SUBMIT_SM_RESP, ESME_ROK),
            "{resp:?}"
        );
        *answered.entry(resp.sequence).or_default() += 1;
        order.push(resp.sequence);
    }
    for sequence in &sequences {
        assert_eq!(
            answered.get(sequence),
            Some(&1),
            "request {sequence} answered {:?} times",
            answered.get(sequence)
        );
    }
    assert!(
        order.windows(2).any(|pair| pair[0] > pair[1]),
        "answers came strictly in request order: {order:?}"
    );
    esme.assert_alive().await;
    assert_eq!(h.sim_messages().await.len(), 64);
}

#[tokio::test]
async fn a_request_beyond_the_window_is_throttled_at_once() {
    let h = Setup::new()
        .rule(".", Outcome::Stall("3s"))
        .env("SMPP__WINDOW", "4")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let destinations: Vec<String> = (0..5).map(|i| format!("49170000{i:04}")).collect();
    let sequences = pipeline(&mut esme, &destinations).await;

    // Answered before any of the four stalled ones: the refusal did not wait for a slot.
    let first = esme.read().await;
    first.expect(SUBMIT_SM_RESP, ESME_RTHROTTLED, sequences[4]);
    assert!(first.body.is_empty(), "{first:?}");
    let mut rest: Vec<u32> = Vec::new();
    for _ in 0..4 {
        let resp = esme.read().await;
        assert_eq!(
            (resp.command_id, resp.status),
            (SUBMIT_SM_RESP, ESME_ROK),
            "{resp:?}"
        );
        rest.push(resp.sequence);
    }
    rest.sort_unstable();
    assert_eq!(rest, sequences[..4]);
}

/// A client that sends its next request the moment it reads an answer keeps exactly the
/// window in flight; the slot of the answered request must already be free by then.
#[tokio::test]
async fn a_client_that_keeps_exactly_the_window_in_flight_is_never_throttled() {
    const WINDOW: usize = 64;
    const TOTAL: usize = 200_000;
    let h = Setup::new()
        .env("SMPP__WINDOW", &WINDOW.to_string())
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let destinations: Vec<String> = (0..WINDOW).map(|i| format!("49170000{i:04}")).collect();
    let mut sent = pipeline(&mut esme, &destinations).await.len();
    // One encoding, each copy with its own sequence number (bytes 12..16 of the header).
    let template = esme.encode(
        0,
        submit_sm("491700001234")
            .short_message(octets(b"closed loop"))
            .build(),
    );
    let mut statuses: HashMap<u32, usize> = HashMap::new();
    let mut answered = 0;
    let mut batch = Vec::new();
    while answered < TOTAL {
        // Everything that has arrived is answered with as many new requests, in one write.
        let mut frame = Some(esme.read().await);
        let mut replies = 0;
        while let Some(resp) = frame {
            assert_eq!(resp.command_id, SUBMIT_SM_RESP, "{resp:?}");
            *statuses.entry(resp.status.0).or_default() += 1;
            answered += 1;
            replies += 1;
            frame = esme.buffered();
        }
        batch.clear();
        for _ in 0..replies.min(TOTAL - sent) {
            let sequence = esme.next_sequence();
            batch.extend_from_slice(&template[..12]);
            batch.extend_from_slice(&sequence.to_be_bytes());
            batch.extend_from_slice(&template[16..]);
            sent += 1;
        }
        if !batch.is_empty() {
            esme.write(&batch).await;
        }
    }
    assert_eq!(
        statuses.get(&ESME_RTHROTTLED.0),
        None,
        "throttled inside the granted window: {statuses:?}"
    );
    assert_eq!(statuses.get(&ESME_ROK.0), Some(&TOTAL), "{statuses:?}");
}
