//! Several instances of the server on one Redis (`delivery.store = "redis"`), as a deployment
//! behind a load balancer runs them: the phone's webhooks reach any instance, the ESME is bound
//! to one of them, and an instance may die holding deliver_sm its ESME never answered.

use std::time::{Duration, Instant};

use serde_json::json;
use smpp_codec::status::ESME_ROK;

use crate::client::*;
use crate::services::{Haproxy, Redis};
use crate::support::*;

/// Generous: webhook calls, Redis round trips and lease expiries on a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(30);
/// How long "nothing more comes" is watched for.
const QUIET: Duration = Duration::from_secs(2);

fn on_redis(redis: &Redis) -> Setup {
    Setup::new()
        .step_delay("200ms")
        .env("DELIVERY__STORE", "redis")
        .env("DELIVERY__REDIS_URL", &redis.url)
        .env("DELIVERY__REDIS_LEASE", "2s")
}

async fn bind(esme: &mut Client, kind: BindKind) {
    let resp = esme.bind(kind, DEMO_USER, DEMO_PASSWORD).await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
}

#[tokio::test]
async fn events_posted_to_another_instance_reach_the_esme_bound_to_this_one() {
    let redis = Redis::start().await;
    let webhook_port = free_port();
    let webhook_address = format!("127.0.0.1:{webhook_port}");
    let mut h = on_redis(&redis)
        .env(
            "GATEWAY__WEBHOOK_BASE_URL",
            &format!("http://{webhook_address}"),
        )
        .env("DELIVERY__WEBHOOK_GRACE", "1s")
        .start()
        .await;
    let other = h
        .start_instance(&[("HTTP__ADDRESS", webhook_address.as_str())])
        .await;
    let mut esme = h.bound(BindKind::Transceiver).await;
    let url = h.wait_for_registrations(WAIT).await;
    assert!(
        url.starts_with(&format!("http://{webhook_address}/")),
        "{url}"
    );

    // A receiver of the account binds to the other instance and leaves: past the grace
    // period, the registrations stay, as this instance still has a receiver.
    let mut passing = other.connect().await;
    bind(&mut passing, BindKind::Receiver).await;
    passing.unbind().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.wait_for_registrations(WAIT).await, url);
    assert_eq!(
        h.sim_requests_starting("DELETE /webhooks").await,
        0,
        "a registration was deleted"
    );

    // The receipt's events go to the other instance, which finds the record this one wrote.
    let id = submit_with_receipt(&mut esme, "491701234567").await;
    let receipt = esme.receive().await;
    assert_eq!(receipted_id(&receipt), id, "{receipt:?}");
    h.wait_for_webhook_call("sms:delivered", &id, 200, WAIT)
        .await;

    let answer = h
        .inject_mo(json!({ "from": MO_SENDER, "to": MO_RECIPIENT, "text": "through the other" }))
        .await;
    assert_eq!(answer["webhooks"], 1, "{answer}");
    let deliver = esme.receive().await;
    assert_eq!(deliver.text(), "through the other", "{deliver:?}");
    esme.expect_no_deliver_sm(QUIET).await;
    h.wait_for_queued(DEMO_USER, 0, WAIT).await;
}

#[tokio::test]
async fn what_a_killed_instance_held_goes_to_a_receiver_on_another_instance() {
    let redis = Redis::start().await;
    let mut h = on_redis(&redis).webhooks().start().await;
    let mut holder_instance = h.start_instance(&[]).await;
    let taker_instance = h.start_instance(&[]).await;

    let mut holder = holder_instance.connect().await;
    bind(&mut holder, BindKind::Receiver).await;
    h.wait_for_registrations(WAIT).await;
    h.inject_mo(json!({ "from": MO_SENDER, "to": MO_RECIPIENT, "text": "held" }))
        .await;
    // Taken by the holder's instance and never answered.
    let held = holder
        .next_deliver_sm(WAIT)
        .await
        .expect("the holder's instance sends the deliver_sm");
    assert_eq!(held.text(), "held");
    holder_instance.kill();

    let mut taker = taker_instance.connect().await;
    bind(&mut taker, BindKind::Receiver).await;
    let deliver = taker.receive().await;
    assert_eq!(deliver.text(), "held", "{deliver:?}");
    taker.expect_no_deliver_sm(QUIET).await;
    h.wait_for_queued(DEMO_USER, 0, WAIT).await;
}

#[tokio::test]
async fn a_stopped_instance_hands_what_it_held_over_without_waiting_for_its_lease() {
    let redis = Redis::start().await;
    let mut h = on_redis(&redis)
        .env("DELIVERY__REDIS_LEASE", "10m")
        .env("SMPP__SHUTDOWN_GRACE", "1s")
        .env("SMPP__RESPONSE_TIMEOUT", "1s")
        .webhooks()
        .start()
        .await;
    let mut holder_instance = h.start_instance(&[]).await;
    let taker_instance = h.start_instance(&[]).await;
    let mut holder = holder_instance.connect().await;
    bind(&mut holder, BindKind::Receiver).await;
    let mut taker = taker_instance.connect().await;
    h.wait_for_registrations(WAIT).await;
    h.inject_mo(json!({ "from": MO_SENDER, "to": MO_RECIPIENT, "text": "handed over" }))
        .await;
    let held = holder.next_deliver_sm(WAIT).await.expect("the deliver_sm");
    assert_eq!(held.text(), "handed over");
    bind(&mut taker, BindKind::Receiver).await;
    taker.expect_no_deliver_sm(QUIET).await;

    // The holder never answers; its instance stops and ends its lease as it goes.
    holder_instance.stop().await;
    let deliver = taker.receive().await;
    assert_eq!(deliver.text(), "handed over", "{deliver:?}");
}

#[tokio::test]
async fn behind_haproxy_the_receipts_and_the_incoming_sms_arrive_once() {
    let redis = Redis::start().await;
    let (lb_smpp, lb_http) = (free_port(), free_port());
    let mut h = on_redis(&redis)
        .env(
            "GATEWAY__WEBHOOK_BASE_URL",
            &format!("http://127.0.0.1:{lb_http}"),
        )
        .start()
        .await;
    let other = h.start_instance(&[]).await;
    let _lb = Haproxy::start(lb_smpp, lb_http, &[h.smpp, other.smpp], &[h.web, other.web]).await;

    // Least connections puts the two ESMEs of the account on different instances.
    let mut esmes = Vec::new();
    for _ in 0..2 {
        let mut esme = connect_smpp(([127, 0, 0, 1], lb_smpp).into()).await;
        bind(&mut esme, BindKind::Transceiver).await;
        esmes.push(esme);
    }
    let bound_here = "smpp_sessions_active{state=\"bound_trx\"} 1";
    let deadline = Instant::now() + WAIT;
    loop {
        let (here, there) = (h.metrics().await, other.metrics().await);
        if here.contains(bound_here) && there.contains(bound_here) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not one ESME per instance:\n{here}\n{there}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.wait_for_registrations(WAIT).await;
    let mut submitted = Vec::new();
    for esme in &mut esmes {
        submitted.push(submit_with_receipt(esme, "491701234567").await);
    }
    h.inject_mo(json!({ "from": MO_SENDER, "to": MO_RECIPIENT, "text": "balanced" }))
        .await;

    // Each receipt and the incoming SMS reach one receiver of the account, once.
    let mut receipted = Vec::new();
    let mut incoming = Vec::new();
    let deadline = Instant::now() + WAIT;
    while receipted.len() + incoming.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "after {WAIT:?}: receipts for {receipted:?}, incoming {incoming:?}"
        );
        for esme in &mut esmes {
            if let Some(deliver) = esme.next_deliver_sm(Duration::from_millis(100)).await {
                esme.answer_deliver_sm(&deliver, ESME_ROK).await;
                match deliver.tlv(smpp_codec::pdu::tag::RECEIPTED_MESSAGE_ID) {
                    Some(_) => receipted.push(receipted_id(&deliver)),
                    None => incoming.push(deliver.text()),
                }
            }
        }
    }
    receipted.sort();
    submitted.sort();
    assert_eq!(receipted, submitted);
    assert_eq!(incoming, ["balanced"]);
    for esme in &mut esmes {
        esme.expect_no_deliver_sm(QUIET).await;
    }
    // The phone's calls were spread over both instances.
    for metrics in [h.metrics().await, other.metrics().await] {
        assert!(
            metrics.contains("smpp_webhooks_total{outcome=\"queued\"}"),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn without_redis_submits_go_on_and_webhooks_are_refused_until_it_returns() {
    let redis = Redis::start().await;
    let h = on_redis(&redis).webhooks().start().await;
    let mut esme = h.bound(BindKind::Transceiver).await;
    h.wait_for_registrations(WAIT).await;

    redis.pause();
    let resp = esme
        .call(
            submit_sm("491701234567")
                .short_message(octets(b"no receipt wanted"))
                .build(),
        )
        .await;
    resp.expect(smpp_codec::command::SUBMIT_SM_RESP, ESME_ROK, resp.sequence);
    let answer = h
        .inject_mo(json!({ "from": MO_SENDER, "to": MO_RECIPIENT, "text": "after the outage" }))
        .await;
    let event = answer["messageId"].as_str().expect("message id").to_owned();
    h.wait_for_webhook_call("sms:received", &event, 503, WAIT)
        .await;
    esme.assert_alive().await;

    // The phone retries; once Redis answers again the SMS is taken and delivered.
    redis.resume();
    h.wait_for_webhook_call("sms:received", &event, 200, Duration::from_secs(60))
        .await;
    let deliver = esme.receive().await;
    assert_eq!(deliver.text(), "after the outage", "{deliver:?}");
}

/// shop1 sends through the demo account, at most 2 binds and 5 messages a second.
fn limited_shop() -> PluginDir {
    let plugins = PluginDir::new();
    plugins.install(
        "credential-map",
        &format!(
            "order = 10\nfailure_policy = \"fail-closed\"\ntimeout = \"5s\"\n\n\
             [config.users.shop1]\npassword = \"shop1pw\"\nsmsgate_username = \"{DEMO_USER}\"\n\
             smsgate_password = \"{DEMO_PASSWORD}\"\nmax_binds = \"2\"\nmessages_per_second = \"5\"\n"
        ),
    );
    plugins
}

#[tokio::test]
async fn an_accounts_bind_and_message_limits_hold_across_instances() {
    let redis = Redis::start().await;
    let plugins = limited_shop();
    let mut h = on_redis(&redis).plugins(plugins.path()).start().await;
    let other = h.start_instance(&[]).await;
    let mut esmes = Vec::new();
    for mut esme in [h.connect().await, other.connect().await] {
        let resp = esme.bind(BindKind::Transmitter, "shop1", "shop1pw").await;
        assert_eq!(resp.status, ESME_ROK, "{resp:?}");
        esmes.push(esme);
    }
    // Two binds taken, one on each instance: a third is refused on either.
    let mut third = other.connect().await;
    let resp = third.bind(BindKind::Transmitter, "shop1", "shop1pw").await;
    assert_eq!(resp.status, smpp_codec::status::ESME_RBINDFAIL, "{resp:?}");

    // Five messages a second between both binds. A burst that starts just after a second
    // begins and ends within it gets exactly five accepted.
    for _ in 0..5 {
        let millis = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        };
        while millis() % 1000 > 50 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let second = millis() / 1000;
        let mut accepted = 0;
        for n in 0..12 {
            let esme = &mut esmes[n % 2];
            let resp = esme
                .call(
                    submit_sm("491701234567")
                        .short_message(octets(b"limited"))
                        .build(),
                )
                .await;
            if resp.status == ESME_ROK {
                accepted += 1;
            } else {
                assert_eq!(resp.status, smpp_codec::status::ESME_RTHROTTLED, "{resp:?}");
            }
        }
        if millis() / 1000 == second {
            assert_eq!(accepted, 5, "accepted within one second");
            return;
        }
    }
    panic!("no burst of twelve submit_sm fitted in one second in five tries");
}

#[test]
fn an_unreachable_redis_stops_the_start_naming_the_setting_and_not_the_password() {
    let port = free_port();
    let mut cmd = command();
    cmd.env("DELIVERY__STORE", "redis").env(
        "DELIVERY__REDIS_URL",
        format!("redis://:redis-secret-pw@127.0.0.1:{port}/0"),
    );
    let (status, stdout, stderr) = run_to_exit(cmd, Duration::from_secs(30));
    assert!(!status.success(), "{stdout}{stderr}");
    let output = format!("{stdout}{stderr}");
    assert!(output.contains("delivery.redis_url"), "{output}");
    assert!(output.contains(&format!("127.0.0.1:{port}")), "{output}");
    assert!(!output.contains("redis-secret-pw"), "{output}");
}
