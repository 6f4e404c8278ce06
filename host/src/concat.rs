//! Reassembly of concatenated messages (UDH IEI 0x00/0x08 or sar_* TLVs) into the one gateway
//! message the phone will split again. Parts are keyed by (account, source, destinations,
//! reference, total), so two ESMEs or two conversations never mix. Every part is answered as it
//! arrives (a window-1 ESME would otherwise wait forever for the first answer); the last part's
//! answer carries the gateway's verdict on the whole message.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::Account;
use crate::ids;
use crate::message::{Part, Submission};
use crate::receipt;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    account: String,
    source: String,
    destinations: Vec<String>,
    reference: u16,
    total: u8,
}

struct Pending {
    account: Arc<Account>,
    message_id: String,
    template: Submission,
    /// Each part's payload and its own registered_delivery, by part number: ESMEs such as
    /// Kannel ask for a receipt on the first part only.
    parts: BTreeMap<u8, (bytes::Bytes, u8)>,
    port: Option<u16>,
    started: Instant,
}

/// What adding a part led to.
pub enum Progress {
    /// More parts are expected; answer this one with `part_id`.
    Waiting { part_id: String },
    /// This was the last missing part: send the whole message as `message_id`.
    Complete(Box<Assembled>),
    /// Too many messages are being reassembled at once.
    Full,
}

/// A message put back together, or what arrived of one before its time ran out.
pub struct Assembled {
    pub account: Arc<Account>,
    pub message_id: String,
    /// The id to answer the last part with.
    pub part_id: String,
    pub template: Submission,
    /// The parts' payloads in sequence order.
    pub payload: Vec<u8>,
    /// The destination port the first part that named one gave.
    pub port: Option<u16>,
    pub received: Vec<u8>,
    /// The parts that asked for a receipt themselves; only they get one.
    pub receipted: Vec<u8>,
    pub total: u8,
}

pub struct Reassembler {
    pending: Mutex<HashMap<Key, Pending>>,
    timeout: Duration,
    max_pending: usize,
}

impl Reassembler {
    pub fn new(timeout: Duration, max_pending: usize) -> Self {
        Reassembler {
            pending: Mutex::new(HashMap::new()),
            timeout,
            max_pending,
        }
    }

    pub fn add(&self, account: &Arc<Account>, template: Submission, part: Part) -> Progress {
        let key = Key {
            account: account.name.clone(),
            source: template.source.addr.clone(),
            destinations: template
                .destinations
                .iter()
                .map(|d| d.addr.clone())
                .collect(),
            reference: part.concat.reference,
            total: part.concat.total,
        };
        let registered_delivery = template.registered_delivery;
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.contains_key(&key) && pending.len() >= self.max_pending {
            return Progress::Full;
        }
        let entry = pending.entry(key.clone()).or_insert_with(|| Pending {
            account: Arc::clone(account),
            message_id: ids::new_message_id(),
            template,
            parts: BTreeMap::new(),
            port: None,
            started: Instant::now(),
        });
        entry.port = entry.port.or(part.port);
        // A part sent twice (an ESME retrying after a lost response) replaces the first copy.
        entry
            .parts
            .insert(part.concat.sequence, (part.payload, registered_delivery));
        let part_id = ids::part_id(&entry.message_id, part.concat.sequence);
        if entry.parts.len() < usize::from(part.concat.total) {
            return Progress::Waiting { part_id };
        }
        let done = pending.remove(&key).expect("entry exists");
        Progress::Complete(Box::new(assemble(done, part_id, key.total)))
    }

    /// Messages whose parts did not all arrive in time, removed from the table.
    pub fn take_expired(&self, now: Instant) -> Vec<Assembled> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let expired: Vec<Key> = pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.started) >= self.timeout)
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|key| {
                let p = pending.remove(&key)?;
                let last = *p.parts.keys().next_back()?;
                let part_id = ids::part_id(&p.message_id, last);
                Some(assemble(p, part_id, key.total))
            })
            .collect()
    }
}

/// The message from its parts. It asks for the receipts its first receipted part asked for;
/// the template, the first part to arrive, may be one that asked for none.
fn assemble(pending: Pending, part_id: String, total: u8) -> Assembled {
    let received = pending.parts.keys().copied().collect();
    let receipted: Vec<(u8, u8)> = pending
        .parts
        .iter()
        .filter(|(_, (_, rd))| receipt::wants_any(*rd))
        .map(|(&sequence, &(_, rd))| (sequence, rd))
        .collect();
    let mut template = pending.template;
    if let Some(&(_, rd)) = receipted.first() {
        template.registered_delivery = rd;
    }
    let payload = pending
        .parts
        .into_values()
        .flat_map(|(b, _)| b.to_vec())
        .collect();
    Assembled {
        account: pending.account,
        message_id: pending.message_id,
        part_id,
        template,
        payload,
        port: pending.port,
        received,
        receipted: receipted
            .into_iter()
            .map(|(sequence, _)| sequence)
            .collect(),
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Reassembler {
        fn pending_count(&self) -> usize {
            self.pending.lock().unwrap().len()
        }
    }
    use crate::gateway::Credentials;
    use crate::message::{Content, SubmitKind};
    use smpp_codec::pdu::Address;
    use smpp_codec::udh::Concat;

    fn account(name: &str) -> Arc<Account> {
        let gateway = crate::gateway::Gateway::new(
            "http://127.0.0.1:9/3rdparty/v1",
            Duration::from_secs(1),
            0,
        )
        .unwrap();
        Arc::new(Account::new(
            name,
            Credentials::Basic {
                username: name.into(),
                password: "pw".into(),
            },
            gateway,
        ))
    }

    fn template(dest: &str) -> Submission {
        let a = |s: &str| Address {
            ton: 1,
            npi: 1,
            addr: s.into(),
        };
        Submission {
            kind: SubmitKind::SubmitSm,
            service_type: String::new(),
            source: a("100"),
            destinations: vec![a(dest)],
            esm_class: 0x40,
            protocol_id: 0,
            priority_flag: 0,
            registered_delivery: 0,
            data_coding: 0,
            content: Content::Text(String::new()),
            validity: None,
            schedule_at: None,
            tlvs: vec![],
            labels: vec![],
        }
    }

    fn part(reference: u16, total: u8, sequence: u8, text: &'static str) -> Part {
        Part {
            concat: Concat {
                reference,
                total,
                sequence,
            },
            payload: bytes::Bytes::from_static(text.as_bytes()),
            port: None,
        }
    }

    #[test]
    fn parts_in_any_order_make_one_message() {
        let r = Reassembler::new(Duration::from_secs(60), 100);
        let acct = account("a");
        let Progress::Waiting { part_id: p3 } = r.add(&acct, template("+1"), part(7, 3, 3, "C"))
        else {
            panic!()
        };
        let Progress::Waiting { part_id: p1 } = r.add(&acct, template("+1"), part(7, 3, 1, "A"))
        else {
            panic!()
        };
        let Progress::Complete(done) = r.add(&acct, template("+1"), part(7, 3, 2, "B")) else {
            panic!()
        };
        assert_eq!(done.payload, b"ABC");
        assert_eq!(ids::gateway_id(&p1), done.message_id);
        assert_eq!(ids::gateway_id(&p3), done.message_id);
        assert_eq!(done.part_id, ids::part_id(&done.message_id, 2));
        assert_eq!(r.pending_count(), 0);
    }

    #[test]
    fn only_the_parts_that_asked_get_receipts() {
        let r = Reassembler::new(Duration::from_secs(60), 100);
        let acct = account("a");
        let asking = |rd| Submission {
            registered_delivery: rd,
            ..template("+1")
        };
        // Kannel's way: the first part asks, the others do not; the first to arrive is part 2.
        r.add(&acct, asking(0), part(5, 3, 2, "B"));
        r.add(&acct, asking(1), part(5, 3, 1, "A"));
        let Progress::Complete(done) = r.add(&acct, asking(0), part(5, 3, 3, "C")) else {
            panic!()
        };
        assert_eq!(done.receipted, vec![1]);
        assert_eq!(done.template.registered_delivery, 1);

        r.add(&acct, asking(0), part(6, 2, 1, "A"));
        let Progress::Complete(done) = r.add(&acct, asking(0), part(6, 2, 2, "B")) else {
            panic!()
        };
        assert!(done.receipted.is_empty());
        assert_eq!(done.template.registered_delivery, 0);
    }

    #[test]
    fn accounts_and_destinations_do_not_mix() {
        let r = Reassembler::new(Duration::from_secs(60), 100);
        r.add(&account("a"), template("+1"), part(7, 2, 1, "A"));
        r.add(&account("b"), template("+1"), part(7, 2, 1, "X"));
        r.add(&account("a"), template("+2"), part(7, 2, 1, "Y"));
        assert_eq!(r.pending_count(), 3);
        let Progress::Complete(done) = r.add(&account("a"), template("+1"), part(7, 2, 2, "B"))
        else {
            panic!()
        };
        assert_eq!(done.payload, b"AB");
    }

    #[test]
    fn incomplete_messages_expire_with_what_arrived() {
        let r = Reassembler::new(Duration::from_secs(60), 100);
        r.add(&account("a"), template("+1"), part(9, 3, 1, "A"));
        r.add(&account("a"), template("+1"), part(9, 3, 3, "C"));
        assert!(r.take_expired(Instant::now()).is_empty());
        let expired = r.take_expired(Instant::now() + Duration::from_secs(61));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].payload, b"AC");
        assert_eq!(expired[0].received, vec![1, 3]);
        assert_eq!(expired[0].total, 3);
        assert_eq!(r.pending_count(), 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let r = Reassembler::new(Duration::from_secs(60), 1);
        r.add(&account("a"), template("+1"), part(1, 2, 1, "A"));
        assert!(matches!(
            r.add(&account("a"), template("+1"), part(2, 2, 1, "A")),
            Progress::Full
        ));
    }
}
