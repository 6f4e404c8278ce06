//! The operator's endpoints on `admin.address` (loopback by default) rather than on the port the
//! phones post to: the status console (`/`), its JSON API under `/api/smpp/v1/`, the API's
//! OpenAPI document and the metrics. With `admin.token` set every request needs it; without,
//! only clients on this host (loopback) are served.

mod actions;
mod page;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::info;

use crate::delivery::Delivery;
use crate::session::board::Board;
use smsgate_plugin_host::Plugins;

/// The OpenAPI document of the admin API and the webhook endpoint, kept beside the code.
pub const OPENAPI: &str = include_str!("../../openapi.yaml");

/// What the admin endpoints read and act on.
#[derive(Clone)]
pub struct Admin {
    pub board: Arc<Board>,
    pub delivery: Arc<Delivery>,
    pub plugins: Arc<Plugins>,
    pub started: DateTime<Utc>,
}

pub fn router(admin: Admin, token: Option<Bearer>) -> Router {
    let api = "/api/smpp/v1";
    let routes = Router::new()
        .route("/", get(page::console))
        .route("/console/sessions/{id}/disconnect", post(page::disconnect))
        .route("/console/plugins/reload", post(page::reload_plugins))
        .route(
            "/console/queue/{account}/dead-letters/retry",
            post(page::retry_dead_letters),
        )
        .route(
            "/console/queue/{account}/dead-letters/drop",
            post(page::drop_dead_letters),
        )
        .route(&format!("{api}/status"), get(status::status))
        .route(&format!("{api}/sessions"), get(status::sessions))
        .route(
            &format!("{api}/sessions/{{id}}/disconnect"),
            post(actions::disconnect),
        )
        .route(&format!("{api}/plugins"), get(status::plugins))
        .route(
            &format!("{api}/plugins/reload"),
            post(actions::reload_plugins),
        )
        .route(&format!("{api}/queue"), get(queue_stats))
        .route(
            &format!("{api}/queue/{{account}}/dead-letters"),
            get(actions::list_dead_letters).delete(actions::drop_dead_letters),
        )
        .route(
            &format!("{api}/queue/{{account}}/dead-letters/retry"),
            post(actions::retry_dead_letters),
        )
        .with_state(admin)
        .route("/api/openapi.yaml", get(openapi))
        .route("/metrics", get(crate::http::metrics));
    admin_guard(routes, token).layer(middleware::from_fn(same_origin))
}

/// Every route of `routes`, and its fallback, asks for the token when there is one.
pub fn guard(routes: Router, token: Option<Bearer>) -> Router {
    match token {
        Some(token) => routes.layer(middleware::from_fn_with_state(token, check)),
        None => routes,
    }
}

/// As `guard`, and without a token only loopback clients are served: the admin endpoints act
/// on the server, so they are never open to the network.
fn admin_guard(routes: Router, token: Option<Bearer>) -> Router {
    match token {
        Some(_) => guard(routes, token),
        None => routes.layer(middleware::from_fn(loopback_only)),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response()
}

/// A browser that holds the token (HTTP Basic) sends it with any form a foreign page makes it
/// post; a browser says where a request comes from, and only the console's own forms may act.
async fn same_origin(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let foreign_site =
        text("sec-fetch-site").is_some_and(|site| site == "cross-site" || site == "same-site");
    let foreign_origin = match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| authority != host),
        (Some(_), None) => true,
        _ => false,
    };
    let acts = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if acts && (foreign_site || foreign_origin) {
        info!(path = %request.uri().path(), "admin request from another site refused");
        return (
            StatusCode::FORBIDDEN,
            Json(json!({ "error": "actions are taken only from the console's own page" })),
        )
            .into_response();
    }
    next.run(request).await
}

async fn loopback_only(request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    if peer.is_some_and(|peer| peer.ip().is_loopback() || peer.ip().to_canonical().is_loopback()) {
        return next.run(request).await;
    }
    info!(path = %request.uri().path(), peer = ?peer, "admin request from another host refused: admin.token is unset");
    unauthorized(
        "admin.token is unset, so only clients on this host are served; set admin.token to reach the admin endpoints from elsewhere",
        false,
    )
}

/// A JSON error for a failure the client cannot fix (the delivery store did not answer).
fn failure(reason: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        Json(json!({ "error": reason })),
    )
        .into_response()
}

/// The admin token, kept as its SHA-256 digest: comparing digests in constant time reveals
/// neither the token's bytes nor its length through timing.
#[derive(Clone)]
pub struct Bearer(Arc<[u8; 32]>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        Bearer(Arc::new(Sha256::digest(token.as_bytes()).into()))
    }

    fn accepts(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&*self.0).into()
    }
}

/// The token as `Authorization: Bearer TOKEN`, or, for browsers, as the password of HTTP Basic
/// (any user name): a browser asks for it and sends it with every request to the console.
fn presented_token(request: &Request) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        return decoded
            .split_once(':')
            .map(|(_, password)| password.to_owned());
    }
    None
}

async fn check(State(token): State<Bearer>, request: Request, next: Next) -> Response {
    let presented = presented_token(&request);
    // RFC 6750: no credentials get the bare challenge, wrong ones `invalid_token`.
    let (invalid, reason) = match presented {
        Some(presented) if token.accepts(&presented) => return next.run(request).await,
        Some(_) => (true, "the token presented is not admin.token"),
        None => (
            false,
            "this endpoint needs Authorization: Bearer <admin.token> (or the token as the HTTP Basic password)",
        ),
    };
    info!(path = %request.uri().path(), reason, "admin request refused");
    unauthorized(reason, invalid)
}

fn unauthorized(reason: &str, invalid_token: bool) -> Response {
    let bearer = if invalid_token {
        r#"Bearer realm="smsgate-smpp", error="invalid_token""#
    } else {
        r#"Bearer realm="smsgate-smpp""#
    };
    let mut response = (StatusCode::UNAUTHORIZED, Json(json!({ "error": reason }))).into_response();
    let headers = response.headers_mut();
    headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(bearer));
    headers.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Basic realm="smsgate-smpp", charset="UTF-8""#),
    );
    response
}

async fn queue_stats(State(admin): State<Admin>) -> Response {
    match admin.delivery.stats().await {
        Ok(stats) => {
            let accounts: Vec<_> = stats
                .iter()
                .map(|s| {
                    json!({
                        "account": s.account,
                        "items": s.items,
                        "bytes": s.bytes,
                        "oldest_seconds": s.oldest.as_secs(),
                        "dead_letters": s.dead_letters,
                    })
                })
                .collect();
            Json(json!({ "accounts": accounts })).into_response()
        }
        Err(e) => failure(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower_service::Service as _;

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn the_token_is_compared_whole() {
        let bearer = Bearer::new(TOKEN);
        assert!(bearer.accepts(TOKEN));
        assert!(!bearer.accepts("0123456789abcdef012"));
        assert!(!bearer.accepts("0123456789abcdef01234"));
        assert!(!bearer.accepts(""));
    }

    #[tokio::test]
    async fn guarded_routes_challenge_callers_without_the_token() {
        let routes = Router::new().route("/x", get(|| async { "ok" }));
        let mut routes = guard(routes, Some(Bearer::new(TOKEN)));
        for (authorization, status, challenge) in [
            (
                None,
                StatusCode::UNAUTHORIZED,
                Some("Bearer realm=\"smsgate-smpp\""),
            ),
            (
                Some("Bearer wrong-token-0123456789"),
                StatusCode::UNAUTHORIZED,
                Some("Bearer realm=\"smsgate-smpp\", error=\"invalid_token\""),
            ),
            (
                Some("Basic YWRtaW46YWRtaW4="),
                StatusCode::UNAUTHORIZED,
                None,
            ),
            (Some(&format!("Bearer {TOKEN}")), StatusCode::OK, None),
            (
                Some(&format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("ops:{TOKEN}"))
                )),
                StatusCode::OK,
                None,
            ),
            (Some(&format!("bearer  {TOKEN}")), StatusCode::OK, None),
        ] {
            let mut request = Request::get("/x");
            if let Some(value) = authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            let response = routes
                .call(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{authorization:?}");
            if let Some(challenge) = challenge {
                assert_eq!(response.headers()[header::WWW_AUTHENTICATE], challenge);
            }
        }
        let response = routes
            .call(Request::get("/elsewhere").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "unknown paths too"
        );
    }

    #[tokio::test]
    async fn no_token_no_guard_on_the_public_metrics() {
        let mut routes = guard(Router::new().route("/x", get(|| async { "ok" })), None);
        let response = routes
            .call(Request::get("/x").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn without_a_token_only_loopback_clients_are_served() {
        let mut routes = admin_guard(Router::new().route("/x", get(|| async { "ok" })), None);
        for (peer, status) in [
            (Some("127.0.0.1:5000"), StatusCode::OK),
            (Some("[::1]:5000"), StatusCode::OK),
            (Some("[::ffff:127.0.0.1]:5000"), StatusCode::OK),
            (Some("10.1.2.3:5000"), StatusCode::UNAUTHORIZED),
            (None, StatusCode::UNAUTHORIZED),
        ] {
            let mut request = Request::get("/x").body(Body::empty()).unwrap();
            if let Some(peer) = peer {
                let peer: SocketAddr = peer.parse().unwrap();
                request.extensions_mut().insert(ConnectInfo(peer));
            }
            let response = routes.call(request).await.unwrap();
            assert_eq!(response.status(), status, "{peer:?}");
        }
    }

    #[tokio::test]
    async fn actions_from_another_site_are_refused() {
        let mut routes = Router::new()
            .route("/act", post(|| async { "done" }).get(|| async { "read" }))
            .layer(middleware::from_fn(same_origin));
        for (method, headers, status) in [
            (
                "POST",
                vec![
                    ("host", "127.0.0.1:3001"),
                    ("origin", "http://127.0.0.1:3001"),
                ],
                StatusCode::OK,
            ),
            ("POST", vec![("host", "127.0.0.1:3001")], StatusCode::OK),
            (
                "POST",
                vec![
                    ("host", "127.0.0.1:3001"),
                    ("origin", "https://evil.example"),
                ],
                StatusCode::FORBIDDEN,
            ),
            (
                "POST",
                vec![("host", "127.0.0.1:3001"), ("sec-fetch-site", "cross-site")],
                StatusCode::FORBIDDEN,
            ),
            (
                "POST",
                vec![("host", "127.0.0.1:3001"), ("origin", "null")],
                StatusCode::FORBIDDEN,
            ),
            (
                "GET",
                vec![
                    ("host", "127.0.0.1:3001"),
                    ("origin", "https://evil.example"),
                ],
                StatusCode::OK,
            ),
        ] {
            let mut request = Request::builder().method(method).uri("/act");
            for (name, value) in &headers {
                request = request.header(*name, *value);
            }
            let response = routes
                .call(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{method} {headers:?}");
        }
    }
}
