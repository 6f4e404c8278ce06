//! Peers that send and never read: their sessions must still time out, and the connection
//! slots they hold must come free for others.

use std::time::Duration;

use smpp_codec::command::{BIND_TRANSMITTER, BIND_TRANSMITTER_RESP, ENQUIRE_LINK};
use smpp_codec::status::ESME_ROK;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::client::*;
use crate::support::*;

/// Writes enquire_link after enquire_link and reads nothing, until the server stops taking the
/// bytes for a while, or for at most `for_at_most`; returns how many bytes the server took.
fn flood(mut stream: TcpStream, for_at_most: Duration) -> JoinHandle<usize> {
    tokio::spawn(async move {
        let chunk: Vec<u8> = (0..4096u32)
            .flat_map(|sequence| pdu_bytes(ENQUIRE_LINK, sequence + 1, &[]))
            .collect();
        let deadline = tokio::time::Instant::now() + for_at_most;
        let mut sent = 0;
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(1), stream.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len(),
                Ok(Err(_)) => break,
                // Back-pressure: keep the socket open and stay a nuisance.
                Err(_) => {}
            }
        }
        // The connection stays open until the task ends; the slot question is the server's.
        drop(stream);
        sent
    })
}

/// A connection whose receive buffer is small, so a peer that never reads fills it at once.
async fn connect_not_reading(h: &Harness) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    Client::new(socket.connect(h.smpp).await.expect("connect"))
}

/// Binds as soon as the server has a free connection slot again, within `within`.
async fn bind_when_a_slot_frees(h: &Harness, within: Duration) -> Client {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut esme = h.connect().await;
        let sequence = esme.next_sequence();
        let body = Body::bind(DEMO_USER, DEMO_PASSWORD.as_bytes());
        // A connection beyond the limit is closed at once: the write or the read fails.
        if esme
            .try_write(&pdu_bytes(BIND_TRANSMITTER, sequence, &body.0))
            .await
            .is_ok()
            && let Ok(resp) = esme.try_read(Duration::from_secs(5)).await
        {
            resp.expect(BIND_TRANSMITTER_RESP, ESME_ROK, sequence);
            return esme;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no connection slot came free within {within:?}\n{}",
            h.server_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn unbound_flooders_that_never_read_lose_their_slots_at_the_bind_timeout() {
    let h = Setup::new()
        .env("SMPP__MAX_CONNECTIONS", "2")
        .env("SMPP__BIND_TIMEOUT", "6s")
        .env("SMPP__RESPONSE_TIMEOUT", "1s")
        .start()
        .await;
    let flooders: Vec<_> = [connect_not_reading(&h).await, connect_not_reading(&h).await]
        .into_iter()
        .map(|esme| flood(esme.into_io(), Duration::from_secs(60)))
        .collect();

    // Both slots are taken while the flooders write; they must come free after the bind
    // timeout even though neither connection ever reads an answer.
    let mut esme = bind_when_a_slot_frees(&h, Duration::from_secs(30)).await;
    esme.assert_alive().await;
    for flooder in flooders {
        flooder.abort();
    }
}

#[tokio::test]
async fn a_bound_esme_that_stops_reading_is_closed_after_the_response_timeout() {
    let h = Setup::new()
        .env("SMPP__MAX_CONNECTIONS", "1")
        .env("SMPP__RESPONSE_TIMEOUT", "1s")
        .start()
        .await;
    let mut esme = connect_not_reading(&h).await;
    let resp = esme
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    let flooder = flood(esme.into_io(), Duration::from_secs(60));

    let mut esme = bind_when_a_slot_frees(&h, Duration::from_secs(30)).await;
    esme.assert_alive().await;
    assert!(
        h.server_log().contains("the peer does not read"),
        "{}",
        h.server_log()
    );
    let taken = flooder.await.expect("flooder");
    // Reading stopped once the answers could not be queued: what the server took is what the
    // socket buffers hold, not the minute of flooding.
    assert!(taken < 64 << 20, "the server read {taken} bytes");
}
