//! The last warnings and errors the server logged, for the status console: the log already says
//! what went wrong (a gateway refusal, a plugin failure, a refused bind, a dead letter), so the
//! console shows those lines rather than a second account of the same events. A tracing layer
//! keeps them in a bounded ring; logs carry no secrets, so neither does the ring.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Lines kept; older ones give way.
const KEPT: usize = 50;

#[derive(Clone, Debug, Serialize)]
pub struct Logged {
    pub at: DateTime<Utc>,
    pub level: &'static str,
    /// The module that logged it.
    pub target: String,
    pub message: String,
    /// The event's other fields and those of the spans it happened in (session id, peer,
    /// system_id…), as `name=value` pairs.
    pub fields: String,
}

static RECENT: LazyLock<Mutex<VecDeque<Logged>>> = LazyLock::new(Default::default);

/// The kept lines, newest first.
pub fn recent() -> Vec<Logged> {
    lock().iter().rev().cloned().collect()
}

/// The layer to add to the subscriber; it sees what the subscriber's filter lets through.
pub fn layer() -> RecentErrors {
    RecentErrors
}

pub struct RecentErrors;

/// A span's fields, formatted once when it opens (and on each `record`).
struct SpanFields(String);

impl<S> Layer<S> for RecentErrors
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Pairs::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.pairs));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(pairs)) = extensions.get_mut::<SpanFields>() {
            let mut more = Pairs {
                pairs: std::mem::take(pairs),
                message: String::new(),
            };
            values.record(&mut more);
            *pairs = more.pairs;
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        // Levels order by verbosity: WARN and ERROR are the ones not above WARN.
        if level > Level::WARN {
            return;
        }
        let mut fields = Pairs::default();
        event.record(&mut fields);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(pairs)) = span.extensions().get::<SpanFields>() {
                    fields.push_pair(pairs);
                }
            }
        }
        let logged = Logged {
            at: Utc::now(),
            level: if level == Level::ERROR {
                "error"
            } else {
                "warn"
            },
            target: event.metadata().target().to_owned(),
            message: fields.message,
            fields: fields.pairs,
        };
        let mut recent = lock();
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(logged);
    }
}

#[derive(Default)]
struct Pairs {
    message: String,
    pairs: String,
}

impl Pairs {
    fn push_pair(&mut self, pair: &str) {
        if pair.is_empty() {
            return;
        }
        if !self.pairs.is_empty() {
            self.pairs.push(' ');
        }
        self.pairs.push_str(pair);
    }
}

impl Visit for Pairs {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.push_pair(&format!("{}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message.clear();
            let _ = write!(self.message, "{value:?}");
        } else {
            self.push_pair(&format!("{}={value:?}", field.name()));
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, VecDeque<Logged>> {
    RECENT.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn warnings_are_kept_with_their_spans_fields_and_infos_are_not() {
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("session", id = 7, system_id = tracing::field::Empty);
            let _entered = span.enter();
            span.record("system_id", "shop1");
            tracing::info!("bound");
            tracing::warn!(status = "ESME_RINVPASWD", "bind refused");
        });
        let kept = recent();
        let newest = kept
            .iter()
            .find(|l| l.message == "bind refused")
            .expect("kept");
        assert_eq!(newest.level, "warn");
        assert_eq!(newest.fields, "status=ESME_RINVPASWD id=7 system_id=shop1");
        assert!(kept.iter().all(|l| l.message != "bound"));
    }
}
