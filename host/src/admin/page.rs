//! The status console: one HTML page, no scripts, that reloads itself every few seconds. It
//! shows the same snapshot as `GET /api/smpp/v1/status`; its buttons are forms that post to
//! `/console/...`, which act and send the browser back to the page with a notice.

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::Admin;
use super::actions::Done;
use super::status::{Status, Throughput};

/// Seconds between reloads of the page.
const REFRESH: u32 = 5;

#[derive(Deserialize)]
pub struct Notice {
    notice: Option<String>,
}

pub async fn console(State(admin): State<Admin>, Query(notice): Query<Notice>) -> Response {
    match admin.status().await {
        Ok(status) => Html(render(&status, notice.notice.as_deref())).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            Html(format!(
                "<!doctype html><title>smsgate-smpp</title><p>The delivery store did not answer: {}</p>",
                escape(&reason)
            )),
        )
            .into_response(),
    }
}

/// Back to the page, with what the action did.
fn back(done: Done) -> Redirect {
    let notice = utf8_percent_encode(&done.notice, NON_ALPHANUMERIC);
    Redirect::to(&format!("/?notice={notice}"))
}

pub async fn disconnect(
    State(admin): State<Admin>,
    ConnectInfo(by): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
) -> Redirect {
    back(admin.disconnect(id, by))
}

pub async fn reload_plugins(
    State(admin): State<Admin>,
    ConnectInfo(by): ConnectInfo<SocketAddr>,
) -> Redirect {
    back(admin.reload_plugins(by).await)
}

pub async fn retry_dead_letters(
    State(admin): State<Admin>,
    ConnectInfo(by): ConnectInfo<SocketAddr>,
    Path(account): Path<String>,
) -> Redirect {
    back(admin.retry_dead_letters(&account, by).await)
}

pub async fn drop_dead_letters(
    State(admin): State<Admin>,
    ConnectInfo(by): ConnectInfo<SocketAddr>,
    Path(account): Path<String>,
) -> Redirect {
    back(admin.drop_dead_letters(&account, by).await)
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.3em;margin:0}h2{font-size:1.05em;margin:1.6em 0 .4em}\
table{border-collapse:collapse}th,td{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}\
#sessions td,#accounts td,#gateway td,#plugins td{white-space:nowrap}\
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}\
.muted{color:#777}.notice{background:#fff6d5;padding:.5em 1em;border:1px solid #e5d28a}\
.warn{color:#8a5a00}.error{color:#b00020}form{display:inline}button{font-size:.9em}\
svg{background:#fafafa;border:1px solid #ddd}";

pub fn render(status: &Status, notice: Option<&str>) -> String {
    let mut page = String::with_capacity(16 << 10);
    let _ = write!(
        page,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta http-equiv=refresh content={REFRESH}><title>smsgate-smpp status</title>\
         <style>{STYLE}</style></head><body>\
         <h1>smsgate-smpp {}</h1><p class=muted>up {} · started {} · this page reloads every {REFRESH} s · \
         <a href=/api/smpp/v1/status>JSON</a> · <a href=/api/openapi.yaml>API</a> · <a href=/metrics>metrics</a></p>",
        escape(status.server.version),
        duration(status.server.uptime_seconds.max(0) as u64),
        time(&status.server.started_at),
    );
    if let Some(notice) = notice {
        let _ = write!(page, "<p class=notice role=status>{}</p>", escape(notice));
    }
    sessions(&mut page, status);
    accounts(&mut page, status);
    throughput(&mut page, &status.throughput);
    gateway(&mut page, status);
    plugins(&mut page, status);
    errors(&mut page, status);
    page.push_str("</body></html>");
    page
}

fn sessions(page: &mut String, status: &Status) {
    let _ = write!(page, "<h2>Bound sessions ({})</h2>", status.sessions.len());
    if status.sessions.is_empty() {
        page.push_str("<p class=muted>No ESME is bound.</p>");
        return;
    }
    page.push_str(
        "<table id=sessions><tr><th>id<th>system_id<th>SMSGate account<th>bind<th>peer<th>TLS<th>bound at (UTC)\
         <th>in flight<th>awaiting resp<th>submitted<th>refused<th>receipts<th>incoming<th></tr>",
    );
    for s in &status.sessions {
        let _ = write!(
            page,
            "<tr><td class=n>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td class=n>{}<td class=n>{}\
             <td class=n>{}<td class=n>{}<td class=n>{}<td class=n>{}\
             <td><form method=post action=/console/sessions/{}/disconnect>\
             <button>Disconnect</button></form></tr>",
            s.id,
            escape(&s.system_id),
            escape(&s.smsgate_account),
            s.bind,
            escape(&s.peer),
            if s.tls { "yes" } else { "no" },
            s.since.format("%H:%M:%S"),
            s.in_flight,
            s.awaiting_deliver_sm_resp,
            s.submitted,
            s.refused,
            s.receipts,
            s.incoming,
            s.id,
        );
    }
    page.push_str("</table>");
}

fn accounts(page: &mut String, status: &Status) {
    page.push_str("<h2>Accounts and delivery queue</h2>");
    if status.accounts.is_empty() {
        page.push_str("<p class=muted>No account is bound or has deliveries waiting.</p>");
        return;
    }
    page.push_str(
        "<table id=accounts><tr><th>system_id<th>SMSGate account<th>binds<th>max binds\
         <th>msg/s limit<th>SIM<th>device<th>queued<th>bytes<th>oldest<th>dead letters<th></tr>",
    );
    let optional = |value: Option<String>| value.unwrap_or_else(|| "–".to_owned());
    for a in &status.accounts {
        let _ = write!(
            page,
            "<tr><td>{}<td>{}<td class=n>{}<td class=n>{}<td class=n>{}<td>{}<td>{}<td class=n>{}\
             <td class=n>{}<td class=n>{}<td class=n>{}<td>",
            escape(&a.system_id),
            escape(&optional(a.smsgate_account.clone())),
            a.binds,
            optional(a.max_binds.map(|v| v.to_string())),
            optional(a.messages_per_second.map(|v| v.to_string())),
            optional(a.sim_number.map(|v| v.to_string())),
            escape(&optional(a.device_id.clone())),
            a.queue.items,
            a.queue.bytes,
            if a.queue.items > 0 {
                duration(a.queue.oldest_seconds)
            } else {
                "–".to_owned()
            },
            a.queue.dead_letters,
        );
        if a.queue.dead_letters > 0 {
            let account = utf8_percent_encode(&a.system_id, NON_ALPHANUMERIC);
            let _ = write!(
                page,
                "<a href=/api/smpp/v1/queue/{account}/dead-letters>list</a> \
                 <form method=post action=/console/queue/{account}/dead-letters/retry><button>Retry</button></form> \
                 <form method=post action=/console/queue/{account}/dead-letters/drop><button>Drop</button></form>"
            );
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
}

/// Messages per second over the last minutes, as lines in an inline SVG.
fn throughput(page: &mut String, throughput: &Throughput) {
    let _ = write!(
        page,
        "<h2>Throughput (messages/s, {} s intervals)</h2>",
        throughput.interval_seconds
    );
    let points = &throughput.points;
    if points.is_empty() {
        let _ = write!(
            page,
            "<p class=muted>The first interval ends {} s after start.</p>",
            throughput.interval_seconds
        );
        return;
    }
    let (width, height) = (600.0, 120.0);
    let top = points
        .iter()
        .map(|p| p.submitted.max(p.delivered).max(p.refused))
        .fold(1.0_f64, f64::max);
    let x = |i: usize| {
        if points.len() == 1 {
            width
        } else {
            i as f64 * width / (points.len() - 1) as f64
        }
    };
    let line = |value: &dyn Fn(&crate::activity::Point) -> f64| {
        points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), height - value(p) / top * height))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let last = &points[points.len() - 1];
    let _ = write!(
        page,
        "<svg id=throughput width={width} height={height} viewBox=\"0 0 {width} {height}\" role=img>\
         <title>submitted, delivered and refused messages per second</title>\
         <polyline fill=none stroke=#1565c0 stroke-width=2 points=\"{}\"/>\
         <polyline fill=none stroke=#2e7d32 stroke-width=2 points=\"{}\"/>\
         <polyline fill=none stroke=#c62828 stroke-width=1 points=\"{}\"/>\
         <text x=4 y=14 font-size=12>{top:.1}/s</text></svg>\
         <p><span style=color:#1565c0>■ submitted {:.1}/s</span> · \
         <span style=color:#2e7d32>■ delivered {:.1}/s</span> · \
         <span style=color:#c62828>■ refused {:.1}/s</span> <span class=muted>(last interval)</span></p>",
        line(&|p| p.submitted),
        line(&|p| p.delivered),
        line(&|p| p.refused),
        last.submitted,
        last.delivered,
        last.refused,
    );
}

fn gateway(page: &mut String, status: &Status) {
    let _ = write!(
        page,
        "<h2>Gateway (last {})</h2>",
        duration(status.gateway.window_seconds)
    );
    if status.gateway.operations.is_empty() {
        page.push_str("<p class=muted>No gateway call yet.</p>");
        return;
    }
    page.push_str("<table id=gateway><tr><th>operation<th>calls<th>p50<th>p99<th>answers</tr>");
    let millis = |ms: Option<f64>| ms.map_or_else(|| "–".to_owned(), |ms| format!("{ms:.1} ms"));
    for op in &status.gateway.operations {
        let answers: Vec<String> = op
            .outcomes
            .iter()
            .map(|(outcome, count)| format!("{} × {count}", escape(outcome)))
            .collect();
        let _ = write!(
            page,
            "<tr><td>{}<td class=n>{}<td class=n>{}<td class=n>{}<td>{}</tr>",
            escape(&op.operation),
            op.calls,
            millis(op.p50_ms),
            millis(op.p99_ms),
            answers.join(", "),
        );
    }
    page.push_str("</table>");
}

fn plugins(page: &mut String, status: &Status) {
    page.push_str(
        "<h2>Plugins <form method=post action=/console/plugins/reload><button>Reload</button></form></h2>",
    );
    if status.plugins.is_empty() {
        page.push_str("<p class=muted>No plugin is loaded.</p>");
        return;
    }
    page.push_str(
        "<table id=plugins><tr><th>file<th>name<th>version<th>order<th>hook<th>calls<th>failures<th>median</tr>",
    );
    for plugin in &status.plugins {
        for (i, hook) in plugin.hooks.iter().enumerate() {
            let head = if i == 0 {
                format!(
                    "<td>{}<td>{}<td>{}<td class=n>{}",
                    escape(&plugin.file),
                    escape(&plugin.name),
                    escape(&plugin.version),
                    plugin.order
                )
            } else {
                "<td><td><td><td>".to_owned()
            };
            let _ = write!(
                page,
                "<tr>{head}<td>{}<td class=n>{}<td class=n>{}<td class=n>{}</tr>",
                hook.hook,
                hook.calls,
                hook.failures,
                hook.median_us
                    .map_or_else(|| "–".to_owned(), |us| format!("{us:.1} µs")),
            );
        }
    }
    page.push_str("</table>");
}

fn errors(page: &mut String, status: &Status) {
    page.push_str("<h2>Recent warnings and errors</h2>");
    if status.errors.is_empty() {
        page.push_str("<p class=muted>None since start.</p>");
        return;
    }
    page.push_str("<table id=errors><tr><th>time<th>level<th>message<th>details</tr>");
    for logged in &status.errors {
        let _ = write!(
            page,
            "<tr><td>{}<td class={}>{}<td>{}<td class=muted>{}</tr>",
            time(&logged.at),
            logged.level,
            logged.level,
            escape(&logged.message),
            escape(&logged.fields),
        );
    }
    page.push_str("</table>");
}

fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn duration(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_peers_is_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(61), "1 min 1 s");
        assert_eq!(duration(7322), "2 h 2 min");
    }
}
