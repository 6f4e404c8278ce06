use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use super::*;
use chrono::Utc;
use smpp_codec::pdu::Address;

/// A redis-server of its own on a free loopback port, stopped when dropped.
struct RedisServer {
    child: Child,
    url: String,
}

impl RedisServer {
    async fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = RedisServer {
            child: Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server (Debian package redis-server; tests/run installs it)"),
            url: format!("redis://127.0.0.1:{port}/0"),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not listen on {port}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn options(lease: Duration) -> SharedOptions {
    SharedOptions {
        queue: QueueOptions {
            max_items: 5,
            max_bytes: 1 << 20,
            ttl: Duration::from_secs(3600),
        },
        lease,
    }
}

async fn open(server: &RedisServer) -> Shared {
    Shared::open(&server.url, options(Duration::from_secs(60)))
        .await
        .unwrap()
}

fn bodies(texts: &[&str]) -> Vec<Bytes> {
    texts
        .iter()
        .map(|t| Bytes::copy_from_slice(t.as_bytes()))
        .collect()
}

fn payloads(items: &[Item]) -> Vec<&[u8]> {
    items.iter().map(|i| i.payload.as_slice()).collect()
}

/// Waits up to a second for a wake-up of `account`, passing over others.
async fn woken(wakes: &mut BoxStream<'static, String>, account: &str) -> bool {
    let heard = async {
        while let Some(woken) = wakes.next().await {
            if woken == account {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(Duration::from_secs(1), heard)
        .await
        .unwrap_or(false)
}

/// Reads the account's items and sets aside those at `positions`, in that order.
async fn dead_letter_at(store: &Shared, account: &str, positions: &[usize]) {
    let items = store.peek(account, 10).await.unwrap();
    for &at in positions {
        store
            .dead_letter(account, items[at].seq, 0x0b, "refused")
            .await
            .unwrap()
            .unwrap();
    }
}

fn presence(user: &str) -> Presence {
    Presence {
        smsgate: "https://gw|demo".into(),
        user: user.into(),
        sim_number: Some(2),
        device_id: None,
    }
}

#[tokio::test]
async fn events_are_stored_once_read_in_order_and_gone_when_acknowledged() {
    let server = RedisServer::start().await;
    let store = open(&server).await;
    assert!(matches!(
        store.push("shop1", "e1", bodies(&["a", "b"])).await,
        Ok(Push::Stored(_))
    ));
    assert_eq!(
        store
            .push("shop1", "e1", bodies(&["a", "b"]))
            .await
            .unwrap(),
        Push::Duplicate
    );
    store.push("shop1", "e2", bodies(&["c"])).await.unwrap();
    let items = store.peek("shop1", 10).await.unwrap();
    assert_eq!(payloads(&items), [&b"a"[..], b"b", b"c"]);
    assert_eq!(items[0].event_id, "e1");
    // Read again: the same entries, held by this instance.
    assert_eq!(store.peek("shop1", 10).await.unwrap(), items);

    assert_eq!(
        store.retry_later("shop1", items[0].seq).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        store
            .ack("shop1", vec![items[1].seq, items[1].seq])
            .await
            .unwrap(),
        1
    );
    let left = store.peek("shop1", 10).await.unwrap();
    assert_eq!(payloads(&left), [&b"a"[..], b"c"]);
    assert_eq!(left[0].attempts, 1);

    let stats = store.stats().await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!((stats[0].items, stats[0].bytes), (2, 2));
    assert_eq!(store.item_count().await.unwrap(), 2);
    // Five items at most, across accounts.
    store
        .push("shop2", "e3", bodies(&["d", "e", "f"]))
        .await
        .unwrap();
    assert!(matches!(
        store.push("shop2", "e4", bodies(&["g"])).await,
        Err(QueueError::Full)
    ));
    assert!(matches!(
        store
            .push("shop2", "e5", vec![Bytes::from(vec![0; 2 << 20])])
            .await,
        Err(QueueError::TooLarge { .. })
    ));
    assert_eq!(
        store.accounts_with_items().await.unwrap(),
        ["shop1", "shop2"]
    );
}

#[tokio::test]
async fn entries_held_by_an_instance_whose_lease_ended_go_to_the_next_reader() {
    let server = RedisServer::start().await;
    let lease = Duration::from_millis(300);
    let a = Shared::open(&server.url, options(lease)).await.unwrap();
    let b = Shared::open(&server.url, options(lease)).await.unwrap();
    assert_ne!(a.instance(), b.instance());
    a.push("shop1", "e1", bodies(&["x", "y"])).await.unwrap();
    b.announce(vec![presence("shop1")]).await.unwrap();
    let held = b.peek("shop1", 10).await.unwrap();
    assert_eq!(payloads(&held), [&b"x"[..], b"y"]);
    // Held by b while its lease runs: a gets nothing, even when it claims.
    a.announce(vec![presence("shop1")]).await.unwrap();
    assert!(a.peek("shop1", 10).await.unwrap().is_empty());
    assert!(a.receivers_elsewhere("https://gw|demo").await.unwrap());

    // b dies: its lease ends, and a takes its entries at its next claim.
    tokio::time::sleep(lease + CLAIM_EVERY).await;
    a.announce(vec![presence("shop1")]).await.unwrap();
    let taken = a.peek("shop1", 10).await.unwrap();
    assert_eq!(payloads(&taken), [&b"x"[..], b"y"]);
    assert!(!a.receivers_elsewhere("https://gw|demo").await.unwrap());
    assert_eq!(a.ack("shop1", vec![taken[0].seq]).await.unwrap(), 1);

    // A withdrawal hands the rest over at once.
    b.announce(vec![presence("shop1")]).await.unwrap();
    a.withdraw("shop1", Some("https://gw|demo")).await.unwrap();
    tokio::time::sleep(CLAIM_EVERY).await;
    let rest = b.peek("shop1", 10).await.unwrap();
    assert_eq!(payloads(&rest), [&b"y"[..]]);
}

#[tokio::test]
async fn refused_entries_become_dead_letters_that_expire() {
    let server = RedisServer::start().await;
    let store = open(&server).await;
    store
        .push("shop1", "e1", bodies(&["a", "b"]))
        .await
        .unwrap();
    let items = store.peek("shop1", 10).await.unwrap();
    let refusals = store.refused("shop1", items[0].seq).await.unwrap().unwrap();
    assert_eq!((refusals.attempts, refusals.permanent), (1, 1));
    let dead = store
        .dead_letter("shop1", items[0].seq, 0x0b, "invalid destination")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (dead.item.payload.as_slice(), dead.item.attempts),
        (&b"a"[..], 1)
    );
    assert!(
        store
            .dead_letter("shop1", items[0].seq, 0x0b, "again")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.dead_letter_count().await.unwrap(), 1);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats[0].items, stats[0].dead_letters), (1, 1));

    let later = SystemTime::now() + Duration::from_secs(7200);
    let expired = store.expire(later).await.unwrap();
    assert_eq!(expired.dead_letters, 1);
    assert_eq!(expired.items.len(), 1);
    assert_eq!(expired.items[0].event_id, "e1");
    assert!(store.stats().await.unwrap().is_empty());
    assert!(store.peek("shop1", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn instances_share_the_secret_tokens_sent_records_and_users() {
    let server = RedisServer::start().await;
    let (a, b) = (open(&server).await, open(&server).await);
    assert_eq!(a.token_secret(), b.token_secret());
    let owner = TokenOwner {
        token: "t1".into(),
        account: "https://gw|demo".into(),
        signed: true,
    };
    a.remember_token(owner.clone()).await.unwrap();
    assert_eq!(b.token_owner("t1").await.unwrap(), Some(owner.clone()));
    assert_eq!(b.token_owner("t2").await.unwrap(), None);
    assert_eq!(b.tokens().await.unwrap(), [owner]);

    let record = SentRecord {
        account: "shop1".into(),
        source: Address::default(),
        destinations: vec![Address::default()],
        registered_delivery: 1,
        submitted_at: Utc::now(),
        text_prefix: Some("hello".into()),
        part_ids: Vec::new(),
        session: Some(7),
    };
    let writing = a.record_sent("m1", record.clone());
    assert_eq!(a.sent("m1").await.unwrap(), Some(record.clone()));
    writing.await.unwrap();
    assert_eq!(b.sent("m1").await.unwrap(), Some(record));
    assert_eq!(b.sent("m2").await.unwrap(), None);

    a.announce(vec![presence("shop2")]).await.unwrap();
    assert_eq!(
        b.known_users("https://gw|demo").await.unwrap(),
        [KnownUser {
            name: "shop2".into(),
            sim_number: Some(2),
            device_id: None
        }]
    );
}

#[tokio::test]
async fn a_push_wakes_the_other_instances() {
    let server = RedisServer::start().await;
    let (a, b) = (open(&server).await, open(&server).await);
    let mut wakes = b.wakes().unwrap();
    assert!(b.wakes().is_none(), "taken once");
    // The subscription starts in the background: push until it hears one.
    for n in 0..5 {
        a.push("shop1", &format!("e{n}"), bodies(&["a"]))
            .await
            .unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(1), wakes.next()).await;
        if let Ok(account) = heard {
            assert_eq!(account.as_deref(), Some("shop1"));
            return;
        }
    }
    panic!("no wake-up after five pushes");
}

#[tokio::test]
async fn an_unreachable_redis_is_named_without_its_password() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:hunter2secret@127.0.0.1:{port}/0");
    let error = Shared::open(&url, options(Duration::from_secs(1)))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    assert_eq!(
        without_password("redis://user:pw@h:1/2"),
        "redis://user:***@h:1/2"
    );
    assert_eq!(without_password("redis://h:1/2"), "redis://h:1/2");
}

#[tokio::test]
async fn bind_and_rate_limits_hold_across_instances_and_forget_a_dead_one() {
    let server = RedisServer::start().await;
    let lease = Duration::from_millis(300);
    let a = Shared::open(&server.url, options(lease)).await.unwrap();
    let b = Shared::open(&server.url, options(lease)).await.unwrap();
    for store in [&a, &b] {
        store.announce(Vec::new()).await.unwrap();
    }
    assert!(a.take_bind("shop1", 2).await.unwrap());
    assert!(b.take_bind("shop1", 2).await.unwrap());
    assert!(!a.take_bind("shop1", 2).await.unwrap(), "two of two taken");
    assert!(a.take_bind("shop2", 2).await.unwrap(), "per user");
    b.release_bind("shop1").await.unwrap();
    assert!(a.take_bind("shop1", 2).await.unwrap());
    assert!(!b.take_bind("shop1", 2).await.unwrap());

    // a dies: once its liveness lapses its binds stop counting.
    tokio::time::sleep(lease * 2).await;
    b.announce(Vec::new()).await.unwrap();
    assert!(b.take_bind("shop1", 2).await.unwrap());

    // Three a second between both instances: the fourth in the same second is refused.
    for _ in 0..5 {
        let second = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        let started = second();
        let mut counted = Vec::new();
        for store in [&a, &b, &a, &b] {
            counted.push(store.count_message("shop3", 3).await.unwrap());
        }
        if second() == started {
            assert_eq!(counted, [true, true, true, false]);
            return;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    panic!("no four counts within one second in five tries");
}

#[tokio::test]
async fn dead_letters_are_listed_oldest_first_with_status_and_reason() {
    let server = RedisServer::start().await;
    let store = open(&server).await;
    store
        .push("shop1", "e1", bodies(&["a", "bb", "ccc"]))
        .await
        .unwrap();
    let items = store.peek("shop1", 10).await.unwrap();
    let before = SystemTime::now();
    store.refused("shop1", items[2].seq).await.unwrap();
    // Set aside in the reverse of their arrival: the list follows when, not the queue's order.
    store
        .dead_letter("shop1", items[2].seq, 0x0b, "invalid destination")
        .await
        .unwrap()
        .unwrap();
    store
        .dead_letter("shop1", items[0].seq, 0x45, "submit failed")
        .await
        .unwrap()
        .unwrap();

    let letters = store.dead_letters("shop1", 10).await.unwrap();
    let rows: Vec<(&str, u32, &str, u32, usize)> = letters
        .iter()
        .map(|l| {
            let (event, reason) = (l.event_id.as_str(), l.reason.as_str());
            (event, l.status, reason, l.attempts, l.payload_len)
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("e1", 0x0b, "invalid destination", 1, 3),
            ("e1", 0x45, "submit failed", 0, 1)
        ]
    );
    assert!(letters[0].seq < letters[1].seq);
    for letter in &letters {
        // Redis' clock set the time; it runs on this machine.
        let off = letter
            .dead_lettered_at
            .duration_since(before)
            .unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_secs(5), "{letter:?}");
    }
    assert_eq!(store.dead_letters("shop1", 1).await.unwrap(), letters[..1]);
    assert!(store.dead_letters("shop1", 0).await.unwrap().is_empty());
    assert_eq!(
        store.dead_letters("shop1", usize::MAX).await.unwrap(),
        letters
    );
}

#[tokio::test]
async fn retried_dead_letters_rejoin_the_queue_after_the_live_items_and_wake_the_instances() {
    let server = RedisServer::start().await;
    let (a, b) = (open(&server).await, open(&server).await);
    let mut wakes = b.wakes().unwrap();
    // The subscription starts in the background: a withdrawal wakes without storing anything.
    let mut listening = false;
    for _ in 0..5 {
        a.withdraw("nobody", None).await.unwrap();
        if woken(&mut wakes, "nobody").await {
            listening = true;
            break;
        }
    }
    assert!(listening, "no wake-up after five withdrawals");
    a.push("shop1", "e1", bodies(&["a", "b"])).await.unwrap();
    a.push("shop1", "e2", bodies(&["live"])).await.unwrap();
    for _ in 0..2 {
        assert!(woken(&mut wakes, "shop1").await);
    }
    let items = a.peek("shop1", 10).await.unwrap();
    a.refused("shop1", items[0].seq).await.unwrap();
    dead_letter_at(&a, "shop1", &[0, 1]).await;

    assert_eq!(a.retry_dead_letters("shop1").await.unwrap(), 2);
    assert!(woken(&mut wakes, "shop1").await, "a retry wakes as a push");
    let back = a.peek("shop1", 10).await.unwrap();
    assert_eq!(payloads(&back), [&b"live"[..], b"a", b"b"]);
    assert!(back[1].seq > back[0].seq);
    assert_eq!((back[1].event_id.as_str(), back[1].attempts), ("e1", 0));
    // The refusal before it was set aside no longer counts towards setting it aside again.
    let refusals = a.refused("shop1", back[1].seq).await.unwrap().unwrap();
    assert_eq!((refusals.attempts, refusals.permanent), (1, 1));
    assert!(a.dead_letters("shop1", 10).await.unwrap().is_empty());
    assert_eq!(a.dead_letter_count().await.unwrap(), 0);
    let stats = a.stats().await.unwrap();
    assert_eq!(
        (stats[0].items, stats[0].bytes, stats[0].dead_letters),
        (3, 6, 0)
    );
    assert_eq!(a.item_count().await.unwrap(), 3);

    let seqs = back.iter().map(|item| item.seq).collect();
    assert_eq!(a.ack("shop1", seqs).await.unwrap(), 3);
    assert_eq!(a.item_count().await.unwrap(), 0);
    assert!(a.stats().await.unwrap().is_empty());
}

#[tokio::test]
async fn retrying_dead_letters_keeps_those_the_queues_have_no_room_for() {
    let server = RedisServer::start().await;
    let store = open(&server).await;
    store
        .push("shop1", "e1", bodies(&["a", "b", "c"]))
        .await
        .unwrap();
    dead_letter_at(&store, "shop1", &[0, 1, 2]).await;
    store
        .push("shop2", "e2", bodies(&["d", "e", "f"]))
        .await
        .unwrap();

    // Five items at most, across accounts: two of the three fit.
    assert_eq!(store.retry_dead_letters("shop1").await.unwrap(), 2);
    assert_eq!(
        payloads(&store.peek("shop1", 10).await.unwrap()),
        [&b"a"[..], b"b"]
    );
    let left = store.dead_letters("shop1", 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].payload_len, 1);
    let stats = store.stats().await.unwrap();
    assert_eq!(
        (stats[0].items, stats[0].bytes, stats[0].dead_letters),
        (2, 2, 1)
    );
    assert_eq!(store.item_count().await.unwrap(), 5);
    assert!(matches!(
        store.push("shop2", "e3", bodies(&["g"])).await,
        Err(QueueError::Full)
    ));
    assert_eq!(store.retry_dead_letters("shop1").await.unwrap(), 0);
}

#[tokio::test]
async fn dropped_dead_letters_are_gone_from_the_counts() {
    let server = RedisServer::start().await;
    let store = open(&server).await;
    store
        .push("shop1", "e1", bodies(&["a", "b", "live"]))
        .await
        .unwrap();
    store.push("shop2", "e2", bodies(&["c"])).await.unwrap();
    dead_letter_at(&store, "shop1", &[0, 1]).await;
    dead_letter_at(&store, "shop2", &[0]).await;

    assert_eq!(store.drop_dead_letters("shop1").await.unwrap(), 2);
    assert_eq!(store.drop_dead_letters("shop1").await.unwrap(), 0);
    assert!(store.dead_letters("shop1", 10).await.unwrap().is_empty());
    assert_eq!(store.dead_letter_count().await.unwrap(), 1);
    let stats = store.stats().await.unwrap();
    let rows: Vec<(&str, usize, u64, usize)> = stats
        .iter()
        .map(|s| (s.account.as_str(), s.items, s.bytes, s.dead_letters))
        .collect();
    assert_eq!(rows, [("shop1", 1, 4, 0), ("shop2", 0, 0, 1)]);
    assert_eq!(store.item_count().await.unwrap(), 1);
}

#[tokio::test]
async fn dead_letter_operations_on_an_unknown_account_find_nothing() {
    let server = RedisServer::start().await;
    let store = open(&server).await;
    assert!(store.dead_letters("nobody", 10).await.unwrap().is_empty());
    assert_eq!(store.retry_dead_letters("nobody").await.unwrap(), 0);
    assert_eq!(store.drop_dead_letters("nobody").await.unwrap(), 0);

    store.push("shop1", "e1", bodies(&["a"])).await.unwrap();
    dead_letter_at(&store, "shop1", &[0]).await;
    assert!(store.dead_letters("nobody", 10).await.unwrap().is_empty());
    assert_eq!(store.retry_dead_letters("nobody").await.unwrap(), 0);
    assert_eq!(store.drop_dead_letters("nobody").await.unwrap(), 0);
    assert_eq!(store.dead_letter_count().await.unwrap(), 1);
    // Nothing was created for it either.
    assert!(
        store
            .stats()
            .await
            .unwrap()
            .iter()
            .all(|s| s.account == "shop1")
    );
}
