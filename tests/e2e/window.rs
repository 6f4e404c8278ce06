//! Many requests in flight on one bind: asynchronous answers and the window limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

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
        .rule(".", Outcome::Stall("1s"))
        .env("SMPP__WINDOW", "4")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let destinations: Vec<String> = (0..5).map(|i| format!("49170000{i:04}")).collect();
    let started = Instant::now();
    let sequences = pipeline(&mut esme, &destinations).await;

    let first = esme.read().await;
    first.expect(SUBMIT_SM_RESP, ESME_RTHROTTLED, sequences[4]);
    assert!(first.body.is_empty(), "{first:?}");
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "throttled after {:?}, not at once",
        started.elapsed()
    );
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
