//! SMPP over TLS next to the plain listener.

use std::sync::Arc;
use std::time::Duration;

use rusmpp::Pdu;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use smpp_codec::command::{
    BIND_TRANSCEIVER_RESP, BIND_TRANSMITTER, BIND_TRANSMITTER_RESP, UNBIND_RESP,
};
use smpp_codec::status::ESME_ROK;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::client::*;
use crate::support::*;

async fn connect_tls(h: &Harness) -> Client<TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(
            h.certificate.clone().expect("TLS is on"),
        ))
        .expect("trust the test certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(h.tls.expect("TLS listener"))
        .await
        .expect("connect to the TLS port");
    let name = ServerName::try_from("localhost").expect("server name");
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    Client::new(stream)
}

#[tokio::test]
async fn bind_submit_and_unbind_over_tls_while_plain_works_too() {
    let h = Setup::new().tls().start().await;
    let mut secure = connect_tls(&h).await;
    let resp = secure
        .bind(BindKind::Transceiver, LONG_USER, LONG_PASSWORD)
        .await;
    resp.expect(BIND_TRANSCEIVER_RESP, ESME_ROK, 1);

    let mut plain = h.bound(BindKind::Transmitter).await;

    let resp = secure
        .call(
            submit_sm("491701234567")
                .short_message(octets(b"over TLS"))
                .build(),
        )
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    let secure_id = resp.message_id();
    let resp = plain
        .call(
            submit_sm("491707654321")
                .short_message(octets(b"in the clear"))
                .build(),
        )
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    let plain_id = resp.message_id();

    let secure_message = h.sim_message(&secure_id).await;
    assert_eq!(secure_message["request"]["textMessage"]["text"], "over TLS");
    assert_eq!(secure_message["account"], LONG_USER);
    let plain_message = h.sim_message(&plain_id).await;
    assert_eq!(
        plain_message["request"]["textMessage"]["text"],
        "in the clear"
    );

    let sequence = secure.send(Pdu::Unbind).await;
    secure
        .response(sequence)
        .await
        .expect(UNBIND_RESP, ESME_ROK, sequence);
    secure.expect_closed(Duration::from_secs(5)).await;
    plain.assert_alive().await;
}

#[tokio::test]
async fn plain_smpp_on_the_tls_port_is_dropped_and_harms_nothing() {
    let h = Setup::new().tls().start().await;
    let mut confused = TcpStream::connect(h.tls.expect("TLS listener"))
        .await
        .expect("connect to the TLS port");
    let body = Body::bind(DEMO_USER, DEMO_PASSWORD.as_bytes());
    confused
        .write_all(&pdu_bytes(BIND_TRANSMITTER, 1, &body.0))
        .await
        .expect("write");
    // At most a TLS alert comes back, never an SMPP answer, and then the server hangs up.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), confused.read_to_end(&mut answer));
    match read.await {
        Ok(_) => assert!(
            answer.len() < 16 || answer[4..8] != BIND_TRANSMITTER_RESP.to_be_bytes(),
            "{answer:02X?}"
        ),
        Err(_) => panic!("the TLS port kept a plain-text connection open"),
    }

    let mut secure = connect_tls(&h).await;
    let resp = secure
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
}

#[tokio::test]
async fn an_unreadable_certificate_stops_the_server_at_start() {
    let mut cmd = command();
    cmd.env("SMPP__BIND_ADDRESS", format!("127.0.0.1:{}", free_port()))
        .env(
            "SMPP__TLS_BIND_ADDRESS",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("HTTP__ADDRESS", format!("127.0.0.1:{}", free_port()))
        .env("GATEWAY__API_BASE_URL", "http://127.0.0.1:9/3rdparty/v1")
        .env("SMPP__TLS_CERT", "/nonexistent/smsgate-e2e/cert.pem")
        .env("SMPP__TLS_KEY", "/nonexistent/smsgate-e2e/key.pem");
    let (status, _, stderr) = run_to_exit(cmd, Duration::from_secs(20));
    assert!(
        !status.success(),
        "server started with a missing certificate"
    );
    assert!(stderr.contains("smpp.tls_cert"), "stderr: {stderr}");
}
