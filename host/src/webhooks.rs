//! The endpoint the phone posts SMSGate webhook events to.
//!
//! The phone retries every non-2xx answer for about two days, so the answers are chosen for
//! that: 2xx only once the event is on disk (or needs nothing), 503 when it should come back
//! later, 4xx with the reason when retrying cannot help.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::delivery::{Delivery, Refused, Taken};
use crate::metrics;
use delivery_store::QueueError;

/// The largest body taken. The largest event SMS can produce fits: 255 concatenated parts of
/// UCS-2 text are 17,085 UTF-16 units, at most 51 KB of UTF-8; 255 parts of GSM text full of
/// two-septet characters such as € are 58 KB; 255 binary parts are 46 KB of base64. The
/// JSON around the text is a few hundred bytes.
const MAX_BODY: usize = 64 << 10;

pub fn router(delivery: Arc<Delivery>) -> Router {
    Router::new()
        .route("/api/smpp/v1/webhooks/{token}", post(take))
        .with_state(delivery)
}

async fn take(
    State(delivery): State<Arc<Delivery>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let body = match read_body(&headers, body).await {
        Ok(body) => body,
        Err((status, reason)) => return bounds_refusal(status, reason),
    };
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (timestamp, signature) = (header_text("x-timestamp"), header_text("x-signature"));
    let result = delivery
        .take_webhook(&token, &timestamp, &signature, &body)
        .await;
    let outcome = match &result {
        Ok(Taken::Queued(_)) => "queued",
        Ok(Taken::Duplicate) => "duplicate",
        Ok(Taken::Ignored(_)) => "ignored",
        Err(Refused::UnknownToken) => "unknown_token",
        Err(Refused::Signature(_)) => "bad_signature",
        Err(
            Refused::KeyUnknown
            | Refused::NoUserYet
            | Refused::Queue(QueueError::Full | QueueError::Shared(_)),
        ) => "retry_later",
        Err(Refused::Malformed(_)) => "malformed",
        Err(Refused::Queue(_)) => "error",
    };
    metrics::get().webhooks.with_label_values(&[outcome]).inc();
    match result {
        Ok(taken) => accepted(taken),
        Err(refused) => refusal(refused),
    }
}

fn accepted(taken: Taken) -> Response {
    let body = match taken {
        Taken::Queued(items) => {
            debug!(items, "webhook event queued");
            json!({ "status": "queued", "items": items })
        }
        Taken::Duplicate => json!({ "status": "duplicate" }),
        Taken::Ignored(reason) => {
            debug!(%reason, "webhook event needs no deliver_sm");
            json!({ "status": "ignored", "reason": reason })
        }
    };
    (StatusCode::OK, Json(body)).into_response()
}

fn refusal(refused: Refused) -> Response {
    let reason = refused.to_string();
    let status = match &refused {
        Refused::UnknownToken => StatusCode::NOT_FOUND,
        Refused::Signature(_) => StatusCode::UNAUTHORIZED,
        Refused::Malformed(_) => StatusCode::BAD_REQUEST,
        // Shared: Redis is unreachable now, maybe not when the phone retries.
        Refused::KeyUnknown
        | Refused::NoUserYet
        | Refused::Queue(QueueError::Full | QueueError::Shared(_)) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Refused::Queue(QueueError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        Refused::Queue(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        warn!(status = status.as_u16(), %reason, "webhook event not taken");
    } else {
        info!(status = status.as_u16(), %reason, "webhook call refused");
    }
    let mut response = (status, Json(json!({ "error": reason }))).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    }
    response
}

/// The body, up to [`MAX_BODY`]: a larger declared length is refused before any of it is read,
/// a longer stream once the limit is passed.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, (StatusCode, String)> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body is larger than {MAX_BODY} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err((StatusCode::BAD_REQUEST, format!("body not read: {e}"))),
    }
}

/// A call whose body could not be read within the bound, before the token or the signature is
/// looked at.
fn bounds_refusal(status: StatusCode, reason: String) -> Response {
    let outcome = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "malformed"
    };
    metrics::get().webhooks.with_label_values(&[outcome]).inc();
    info!(status = status.as_u16(), %reason, "webhook call refused");
    (status, Json(json!({ "error": reason }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_whether_declared_or_streamed() {
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, HeaderValue::from(MAX_BODY + 1));
        let refused = read_body(&declared, Body::empty()).await.unwrap_err();
        assert_eq!(refused.0, StatusCode::PAYLOAD_TOO_LARGE, "{refused:?}");

        let chunks =
            (0..=MAX_BODY / 1024).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1024])));
        let streamed = Body::from_stream(futures::stream::iter(chunks));
        let refused = read_body(&HeaderMap::new(), streamed).await.unwrap_err();
        assert_eq!(refused.0, StatusCode::PAYLOAD_TOO_LARGE, "{refused:?}");
        assert!(refused.1.contains("65536"), "{refused:?}");

        let fits = Body::from(vec![b' '; MAX_BODY]);
        assert_eq!(
            read_body(&HeaderMap::new(), fits).await.unwrap().len(),
            MAX_BODY
        );
    }
}
