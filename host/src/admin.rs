//! The operator's endpoints: queue statistics and the metrics, on `admin.address` (loopback by
//! default) rather than on the port the phones post to, and behind a bearer token when
//! `admin.token` is set.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::info;

use crate::delivery::Delivery;

pub fn router(delivery: Arc<Delivery>, token: Option<Bearer>) -> Router {
    let routes = Router::new()
        .route("/api/smpp/v1/queue", get(queue_stats))
        .with_state(delivery)
        .route("/metrics", get(crate::http::metrics));
    guard(routes, token)
}

/// Every route of `routes`, and its fallback, asks for the token when there is one.
pub fn guard(routes: Router, token: Option<Bearer>) -> Router {
    match token {
        Some(token) => routes.layer(middleware::from_fn_with_state(token, check)),
        None => routes,
    }
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

async fn check(State(token): State<Bearer>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, credentials) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| credentials.trim())
        });
    // RFC 6750: no credentials get the bare challenge, wrong ones `invalid_token`.
    let (challenge, reason) = match presented {
        Some(presented) if token.accepts(presented) => return next.run(request).await,
        Some(_) => (
            r#"Bearer realm="smsgate-smpp", error="invalid_token""#,
            "the bearer token is not admin.token",
        ),
        None => (
            r#"Bearer realm="smsgate-smpp""#,
            "this endpoint needs Authorization: Bearer <admin.token>",
        ),
    };
    info!(path = %request.uri().path(), reason, "admin request refused");
    let mut response = (StatusCode::UNAUTHORIZED, Json(json!({ "error": reason }))).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

async fn queue_stats(State(delivery): State<Arc<Delivery>>) -> Response {
    match delivery.stats().await {
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
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
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
    async fn no_token_no_guard() {
        let mut routes = guard(Router::new().route("/x", get(|| async { "ok" })), None);
        let response = routes
            .call(Request::get("/x").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
