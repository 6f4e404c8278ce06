//! The one table from a gateway outcome to the SMPP command_status an ESME sees. The README's
//! status table is this file in prose; keep them together.

use reqwest::StatusCode;

use super::GatewayError;
use smpp_codec::status::*;

/// bind_*: is this SMSGate account usable?
pub fn bind_status(error: &GatewayError) -> CommandStatus {
    match error {
        GatewayError::Http { status, .. }
            if *status == StatusCode::UNAUTHORIZED || *status == StatusCode::FORBIDDEN =>
        {
            ESME_RINVPASWD
        }
        GatewayError::Http { status, .. } if status.is_client_error() => ESME_RBINDFAIL,
        _ => ESME_RSYSERR,
    }
}

/// submit_sm, data_sm, submit_multi.
pub fn submit_status(error: &GatewayError) -> CommandStatus {
    match error {
        GatewayError::Http { status, message } => match status.as_u16() {
            400 if message.contains("phone") => ESME_RINVDSTADR,
            400 => ESME_RSUBMITFAIL,
            // Credentials that worked at bind time stopped working (password changed, token
            // expired): nothing the ESME can fix per message.
            401 | 403 => ESME_RSUBMITFAIL,
            429 => ESME_RTHROTTLED,
            503 if message.contains("queue") || message.contains("limit") => ESME_RMSGQFUL,
            404 | 409 | 413 | 422 => ESME_RSUBMITFAIL,
            _ if status.is_client_error() => ESME_RSUBMITFAIL,
            _ => ESME_RSYSERR,
        },
        GatewayError::Timeout(_)
        | GatewayError::Network(_)
        | GatewayError::Decode(_)
        | GatewayError::Unsupported(_) => ESME_RSYSERR,
    }
}

/// query_sm: an unknown id and a gateway failure both mean "cannot tell".
pub fn query_status(error: &GatewayError) -> CommandStatus {
    match error {
        GatewayError::Http { status, .. } if status.is_client_error() => ESME_RQUERYFAIL,
        _ => ESME_RSYSERR,
    }
}

/// cancel_sm: 409 = no longer pending, 404 = unknown id; the phone (Local mode) cannot cancel
/// at all, which SMPP 3.4 calls a failed cancel too.
pub fn cancel_status(error: &GatewayError) -> CommandStatus {
    match error {
        GatewayError::Http { status, .. } if status.is_client_error() => ESME_RCANCELFAIL,
        GatewayError::Unsupported(_) => ESME_RCANCELFAIL,
        _ => ESME_RSYSERR,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn http(status: u16, message: &str) -> GatewayError {
        GatewayError::Http {
            status: StatusCode::from_u16(status).unwrap(),
            message: message.into(),
        }
    }

    #[test]
    fn submit_table() {
        let cases = [
            (http(400, "invalid phone number"), ESME_RINVDSTADR),
            (http(400, "not mobile phone number"), ESME_RINVDSTADR),
            (http(400, "phone numbers must be unique"), ESME_RINVDSTADR),
            (http(400, "text is required"), ESME_RSUBMITFAIL),
            (http(401, "unauthorized"), ESME_RSUBMITFAIL),
            (http(403, "forbidden"), ESME_RSUBMITFAIL),
            (http(429, "too many requests"), ESME_RTHROTTLED),
            (
                http(503, "failed to enqueue message: queue limits exceeded"),
                ESME_RMSGQFUL,
            ),
            (http(503, "maintenance"), ESME_RSYSERR),
            (http(500, "failed to handle request"), ESME_RSYSERR),
            (GatewayError::Timeout(Duration::from_secs(1)), ESME_RSYSERR),
            (GatewayError::Network("refused".into()), ESME_RSYSERR),
        ];
        for (error, expected) in cases {
            assert_eq!(submit_status(&error), expected, "{error}");
        }
    }

    #[test]
    fn bind_table() {
        assert_eq!(bind_status(&http(401, "")), ESME_RINVPASWD);
        assert_eq!(bind_status(&http(403, "")), ESME_RINVPASWD);
        assert_eq!(bind_status(&http(404, "")), ESME_RBINDFAIL);
        assert_eq!(bind_status(&http(500, "")), ESME_RSYSERR);
        assert_eq!(
            bind_status(&GatewayError::Timeout(Duration::from_secs(1))),
            ESME_RSYSERR
        );
    }

    #[test]
    fn query_and_cancel_tables() {
        assert_eq!(
            query_status(&http(404, "message not found")),
            ESME_RQUERYFAIL
        );
        assert_eq!(query_status(&http(502, "")), ESME_RSYSERR);
        assert_eq!(
            cancel_status(&http(409, "message is not pending")),
            ESME_RCANCELFAIL
        );
        assert_eq!(cancel_status(&http(404, "")), ESME_RCANCELFAIL);
        assert_eq!(cancel_status(&http(500, "")), ESME_RSYSERR);
        assert_eq!(
            cancel_status(&GatewayError::Unsupported("no cancel")),
            ESME_RCANCELFAIL
        );
    }
}
