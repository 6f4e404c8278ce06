//! The delivery path: events the phone reports (receipts, incoming SMS) become deliver_sm for
//! the account's receiver sessions, held in a durable queue until an ESME acknowledges them.

pub mod queue;
