//! HTTP/1.1 as a client speaks it on a kept-alive connection: a request written into a buffer,
//! an answer read out of the bytes the connection received, and whether the connection can
//! carry the next request. No I/O of its own: the server's gateway client drives it on
//! connections it owns (`host/src/gateway/transport.rs`), where a general-purpose client's
//! hand-overs between the caller and the connection's state machine cost more than the
//! exchange itself (README, "Performance").
//!
//! The answer's framing follows RFC 9112, section 6.3: no body for a HEAD request or a 204 or
//! 304 answer; `Transfer-Encoding: chunked`; `Content-Length`; else the body ends when the
//! server closes the connection. Interim (1xx) answers are skipped. What cannot be read
//! unambiguously is refused (other transfer codings among it: the request asks for none), and
//! a connection is kept only when its answer was framed without doubt.

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderValue, Method, StatusCode};

/// More than a gateway's answer head ever needs; a peer sending more is not one.
const MAX_HEAD: usize = 64 * 1024;
/// Header lines parsed per head (and per chunked trailer section).
const MAX_HEADERS: usize = 64;
/// A chunk-size line longer than this (extensions included) is refused.
const MAX_CHUNK_LINE: usize = 1024;

/// Writes a request into `out` (emptied first): the request line, `headers` as given, and
/// `Content-Length` with the body where there is one. Methods that carry a body say
/// `Content-Length: 0` without one, as a server may otherwise wait for it.
///
/// `target` is the request target (path and query); names and values come from types that
/// admit no line breaks, so what is written is one well-formed request.
pub fn write_request<'a>(
    out: &mut Vec<u8>,
    method: &Method,
    target: &http::uri::PathAndQuery,
    headers: impl IntoIterator<Item = (&'static str, &'a HeaderValue)>,
    body: Option<&[u8]>,
) {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_str().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let length = match body {
        Some(body) => Some(body.len()),
        None if matches!(*method, Method::POST | Method::PUT | Method::PATCH) => Some(0),
        None => None,
    };
    if let Some(length) = length {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if let Some(body) = body {
        out.extend_from_slice(body);
    }
}

/// An answer read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Why no answer could be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the gateway's answer is malformed: {0}")]
    Malformed(&'static str),
    #[error("the answer is longer than accepted")]
    TooLong,
    #[error("the connection closed before the answer was complete")]
    Truncated,
}

/// A body read piece by piece up to a limit. One that comes in one piece, as short answers
/// do, is kept as it came; more pieces are gathered in one buffer.
#[derive(Default)]
pub struct Collected {
    first: Bytes,
    more: BytesMut,
}

impl Collected {
    pub fn take(&mut self, data: Bytes, limit: usize) -> Result<(), Error> {
        if self.len() + data.len() > limit {
            return Err(Error::TooLong);
        }
        if self.first.is_empty() && self.more.is_empty() {
            self.first = data;
        } else {
            if self.more.is_empty() {
                self.more
                    .extend_from_slice(&std::mem::take(&mut self.first));
            }
            self.more.extend_from_slice(&data);
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.first.len() + self.more.len()
    }

    pub fn answer(self, status: StatusCode) -> Answer {
        let body = if self.more.is_empty() {
            self.first
        } else {
            self.more.freeze()
        };
        Answer { status, body }
    }
}

/// Where the reader is in the answer.
#[derive(Clone, Copy, Debug)]
enum State {
    Head,
    /// A body of known length; this much of it is still to come.
    Fixed(u64),
    ChunkSize,
    /// In a chunk's data; this much of it is still to come.
    ChunkData(u64),
    /// The line break that ends a chunk's data.
    ChunkEnd,
    Trailers,
    /// A body that ends when the connection does.
    UntilClose,
    Done,
}

/// Reads one answer out of the bytes a connection receives, as they arrive.
pub struct AnswerReader {
    limit: usize,
    head_request: bool,
    state: State,
    /// How much of a head or trailer section not yet complete was searched for its end.
    scanned: usize,
    status: StatusCode,
    keep_alive: bool,
    body: Collected,
}

impl AnswerReader {
    /// A reader for the answer to a request just written; a body longer than `limit` bytes is
    /// refused. The answer to a HEAD request has no body whatever its head says.
    pub fn new(method: &Method, limit: usize) -> Self {
        AnswerReader {
            limit,
            head_request: *method == Method::HEAD,
            state: State::Head,
            scanned: 0,
            status: StatusCode::OK,
            keep_alive: false,
            body: Collected::default(),
        }
    }

    /// Takes what it can of `received`: the whole answer once it is there, leaving any bytes
    /// after it; `None` while more is needed. An error leaves the connection unusable.
    pub fn read(&mut self, received: &mut BytesMut) -> Result<Option<Answer>, Error> {
        loop {
            match self.state {
                State::Head => {
                    if !self.read_head(received)? {
                        return Ok(None);
                    }
                }
                State::Fixed(remaining) => {
                    let remaining = self.take_body(received, remaining)?;
                    if remaining > 0 {
                        self.state = State::Fixed(remaining);
                        return Ok(None);
                    }
                    self.state = State::Done;
                }
                // A chunk size has one hex digit at least (httparse reads none as 0, which would
                // end the body).
                State::ChunkSize if received.first().is_some_and(|b| !b.is_ascii_hexdigit()) => {
                    return Err(Error::Malformed("invalid chunk size"));
                }
                // Limits hold however the bytes came: only as much as the limit allows is
                // parsed, so a line complete in one read is refused where it would have been,
                // arriving in pieces.
                State::ChunkSize => {
                    match httparse::parse_chunk_size(within(received, MAX_CHUNK_LINE + 1)) {
                        Ok(httparse::Status::Complete((used, _))) if used > MAX_CHUNK_LINE => {
                            return Err(Error::Malformed("chunk size line too long"));
                        }
                        Ok(httparse::Status::Complete((used, 0))) => {
                            received.advance(used);
                            self.state = State::Trailers;
                        }
                        Ok(httparse::Status::Complete((used, size))) => {
                            if size > (self.limit - self.body.len()) as u64 {
                                return Err(Error::TooLong);
                            }
                            received.advance(used);
                            self.state = State::ChunkData(size);
                        }
                        Ok(httparse::Status::Partial) if received.len() > MAX_CHUNK_LINE => {
                            return Err(Error::Malformed("chunk size line too long"));
                        }
                        Ok(httparse::Status::Partial) => return Ok(None),
                        Err(_) => return Err(Error::Malformed("invalid chunk size")),
                    }
                }
                State::ChunkData(remaining) => {
                    let remaining = self.take_body(received, remaining)?;
                    if remaining > 0 {
                        self.state = State::ChunkData(remaining);
                        return Ok(None);
                    }
                    self.state = State::ChunkEnd;
                }
                State::ChunkEnd => {
                    if received.len() < 2 {
                        return Ok(None);
                    }
                    if received[..2] != *b"\r\n" {
                        return Err(Error::Malformed("chunk longer than its size"));
                    }
                    received.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    if !self.section_ended(received, "trailers too long")? {
                        return Ok(None);
                    }
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(within(received, MAX_HEAD + 1), &mut headers) {
                        Ok(httparse::Status::Complete((used, _))) if used <= MAX_HEAD => {
                            received.advance(used);
                            self.state = State::Done;
                        }
                        Ok(httparse::Status::Complete(_)) => {
                            return Err(Error::Malformed("trailers too long"));
                        }
                        Ok(httparse::Status::Partial) if received.len() > MAX_HEAD => {
                            return Err(Error::Malformed("trailers too long"));
                        }
                        Ok(httparse::Status::Partial) => return Ok(None),
                        Err(_) => return Err(Error::Malformed("invalid trailer")),
                    }
                }
                State::UntilClose => {
                    let all = received.len() as u64;
                    self.take_body(received, all)?;
                    return Ok(None);
                }
                State::Done => return Ok(Some(self.finish())),
            }
        }
    }

    /// The connection ended (the peer closed it): the answer if that is how its body ends.
    pub fn closed(&mut self) -> Result<Answer, Error> {
        match self.state {
            State::UntilClose => Ok(self.finish()),
            _ => Err(Error::Truncated),
        }
    }

    /// Whether the connection can carry another request once this answer has been read: the
    /// server did not say it closes, and the answer's end was known without the connection's.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    fn finish(&mut self) -> Answer {
        self.state = State::Done;
        std::mem::take(&mut self.body).answer(self.status)
    }

    /// Up to `remaining` bytes of body out of `received`; what is still to come after them.
    fn take_body(&mut self, received: &mut BytesMut, remaining: u64) -> Result<u64, Error> {
        let here = remaining.min(received.len() as u64);
        if here > 0 {
            self.body
                .take(received.split_to(here as usize).freeze(), self.limit)?;
        }
        Ok(remaining - here)
    }

    /// Whether an empty line, which ends a head or a trailer section, has come within the
    /// limit of either. Only bytes not looked at before are scanned, so that a head arriving a
    /// byte at a time is not parsed again from its start at every byte.
    fn section_ended(&mut self, received: &[u8], too_long: &'static str) -> Result<bool, Error> {
        let window = within(received, MAX_HEAD + 1);
        // From two bytes back: a line break may have come in two reads.
        let new = &window[self.scanned.saturating_sub(2).min(window.len())..];
        let ended = new.windows(2).any(|pair| pair == b"\n\n")
            || new.windows(3).any(|triple| triple == b"\n\r\n")
            // A trailer section may be empty: it ends where it starts.
            || matches!(self.state, State::Trailers)
                && (window.starts_with(b"\r\n") || window.starts_with(b"\n"));
        if ended {
            self.scanned = 0;
            return Ok(true);
        }
        if received.len() > MAX_HEAD {
            return Err(Error::Malformed(too_long));
        }
        self.scanned = window.len();
        Ok(false)
    }

    /// Parses a head if `received` holds a whole one, and decides how the body is framed.
    /// False while the head is incomplete.
    fn read_head(&mut self, received: &mut BytesMut) -> Result<bool, Error> {
        if !self.section_ended(received, "head too long")? {
            return Ok(false);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let used = match response.parse(within(received, MAX_HEAD + 1)) {
            Ok(httparse::Status::Complete(used)) if used <= MAX_HEAD => used,
            Ok(httparse::Status::Complete(_)) => return Err(Error::Malformed("head too long")),
            Ok(httparse::Status::Partial) if received.len() > MAX_HEAD => {
                return Err(Error::Malformed("head too long"));
            }
            Ok(httparse::Status::Partial) => return Ok(false),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::Malformed("too many headers"));
            }
            Err(_) => return Err(Error::Malformed("invalid head")),
        };
        let code = response.code.unwrap_or_default();
        let status =
            StatusCode::from_u16(code).map_err(|_| Error::Malformed("invalid status code"))?;
        let framing = Framing::of(response.version == Some(1), response.headers)?;
        received.advance(used);
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::Malformed("switching protocols unasked"));
        }
        if status.is_informational() {
            // An interim answer: the final one follows.
            return Ok(true);
        }
        self.status = status;
        self.keep_alive = framing.keep_alive;
        self.state = if self.head_request
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            State::Done
        } else if framing.chunked {
            State::ChunkSize
        } else if let Some(length) = framing.length {
            if length > self.limit as u64 {
                return Err(Error::TooLong);
            }
            State::Fixed(length)
        } else {
            self.keep_alive = false;
            State::UntilClose
        };
        Ok(true)
    }
}

/// What an answer's head says about where its body ends and what follows it.
struct Framing {
    chunked: bool,
    length: Option<u64>,
    keep_alive: bool,
}

impl Framing {
    fn of(http11: bool, headers: &[httparse::Header<'_>]) -> Result<Self, Error> {
        let mut framing = Framing {
            chunked: false,
            length: None,
            keep_alive: http11,
        };
        let mut close = false;
        for header in headers {
            let name = header.name;
            if name.eq_ignore_ascii_case("transfer-encoding") {
                // The request asks for no transfer coding (it has no TE header), so chunked
                // is the one an answer may have (RFC 9112, 6.1), and once: anything else would
                // be handed on still encoded.
                for coding in elements(header.value) {
                    if framing.chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                        return Err(Error::Malformed("transfer coding other than chunked"));
                    }
                    framing.chunked = true;
                }
            } else if name.eq_ignore_ascii_case("content-length") {
                if elements(header.value).next().is_none() {
                    return Err(Error::Malformed("invalid Content-Length"));
                }
                for element in elements(header.value) {
                    let length = parse_length(element)?;
                    if framing.length.is_some_and(|known| known != length) {
                        return Err(Error::Malformed("conflicting Content-Length"));
                    }
                    framing.length = Some(length);
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for option in elements(header.value) {
                    if option.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if option.eq_ignore_ascii_case(b"keep-alive") {
                        framing.keep_alive = true;
                    }
                }
            }
        }
        // Both framings at once is how requests are smuggled past a proxy: the coding wins
        // (RFC 9112, 6.3) and the connection is not trusted with another request.
        if framing.chunked && framing.length.is_some() {
            framing.length = None;
            close = true;
        }
        // A chunked answer over HTTP/1.0 cannot be, by that version's rules.
        if framing.chunked && !http11 {
            close = true;
        }
        framing.keep_alive &= !close;
        Ok(framing)
    }
}

/// The comma-separated elements of a header value, without the spaces around them.
fn elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|element| element.trim_ascii())
        .filter(|element| !element.is_empty())
}

/// The first `limit` bytes of `received`, or all of them.
fn within(received: &[u8], limit: usize) -> &[u8] {
    &received[..received.len().min(limit)]
}

fn parse_length(digits: &[u8]) -> Result<u64, Error> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Error::Malformed("invalid Content-Length"));
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or(Error::Malformed("invalid Content-Length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads an answer out of `bytes` fed `step` bytes at a time, then tells the reader the
    /// connection closed if the answer is not complete by then.
    fn read_in_steps(
        method: &Method,
        bytes: &[u8],
        step: usize,
        limit: usize,
    ) -> (Result<Answer, Error>, bool, BytesMut) {
        let mut reader = AnswerReader::new(method, limit);
        let mut received = BytesMut::new();
        for piece in bytes.chunks(step) {
            received.extend_from_slice(piece);
            match reader.read(&mut received) {
                Ok(Some(answer)) => {
                    let keep_alive = reader.keep_alive();
                    // The rest of what was fed stays for whoever reads next.
                    let fed = piece.as_ptr() as usize - bytes.as_ptr() as usize + piece.len();
                    received.extend_from_slice(&bytes[fed..]);
                    return (Ok(answer), keep_alive, received);
                }
                Ok(None) => {}
                // What is left after a refusal is of no use to anyone.
                Err(e) => return (Err(e), false, BytesMut::new()),
            }
        }
        (reader.closed(), false, received)
    }

    /// The same answer fed whole, and one byte at a time: both must read alike.
    fn read_answer(bytes: &[u8]) -> (Result<Answer, Error>, bool, BytesMut) {
        let whole = read_in_steps(&Method::POST, bytes, bytes.len().max(1), 1 << 20);
        let bytewise = read_in_steps(&Method::POST, bytes, 1, 1 << 20);
        assert_eq!(
            format!("{:?} {} {:?}", whole.0, whole.1, whole.2),
            format!("{:?} {} {:?}", bytewise.0, bytewise.1, bytewise.2),
            "fed whole and byte by byte"
        );
        whole
    }

    fn assert_malformed(answer: &[u8]) {
        let read = read_answer(answer);
        assert!(
            matches!(read.0, Err(Error::Malformed(_))),
            "{}: {:?}",
            String::from_utf8_lossy(answer),
            read.0
        );
    }

    fn body(result: &(Result<Answer, Error>, bool, BytesMut)) -> (u16, &[u8]) {
        let answer = result.0.as_ref().expect("an answer");
        (answer.status.as_u16(), &answer.body)
    }

    #[test]
    fn a_request_is_one_well_formed_message() {
        let mut out = b"left from the last request".to_vec();
        let host = HeaderValue::from_static("gateway.test:3100");
        let body = br#"{"textMessage":{"text":"hi"}}"#;
        write_request(
            &mut out,
            &Method::POST,
            &"/3rdparty/v1/messages?skipPhoneValidation=true"
                .parse()
                .unwrap(),
            [("Host", &host)],
            Some(body),
        );
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "POST /3rdparty/v1/messages?skipPhoneValidation=true HTTP/1.1\r\n\
             Host: gateway.test:3100\r\n\
             Content-Length: 29\r\n\
             \r\n\
             {\"textMessage\":{\"text\":\"hi\"}}"
        );
        write_request(
            &mut out,
            &Method::GET,
            &"/health".parse().unwrap(),
            [],
            None,
        );
        assert_eq!(out, b"GET /health HTTP/1.1\r\n\r\n");
        write_request(&mut out, &Method::POST, &"/x".parse().unwrap(), [], None);
        assert_eq!(out, b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn a_body_of_known_length_ends_there_and_keeps_the_connection() {
        let read =
            read_answer(b"HTTP/1.1 202 Accepted\r\nContent-Length: 11\r\n\r\n{\"id\":\"x\"}\n");
        assert_eq!(body(&read), (202, &b"{\"id\":\"x\"}\n"[..]));
        assert!(read.1, "kept alive");
        assert!(read.2.is_empty());
    }

    #[test]
    fn bytes_after_the_answer_are_left_to_the_caller() {
        let read = read_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1");
        assert_eq!(body(&read), (200, &b"{}"[..]));
        assert_eq!(&read.2[..], b"HTTP/1.1");
    }

    #[test]
    fn a_chunked_body_is_joined_with_extensions_and_trailers_skipped() {
        let read = read_answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n\
              4;name=value\r\n{\"id\r\n6\r\n\":\"x\"}\r\n0\r\nExpires: never\r\n\r\n",
        );
        assert_eq!(body(&read), (200, &b"{\"id\":\"x\"}"[..]));
        assert!(read.1);
        assert!(read.2.is_empty());
    }

    #[test]
    fn chunks_that_are_not_what_their_size_says_are_refused() {
        for chunks in [
            &b"2\r\n{}}\r\n0\r\n\r\n"[..],
            // No size at all is not the last chunk.
            b"\r\n\r\n",
            b";ext\r\n\r\n",
            b"x\r\n",
        ] {
            let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            answer.extend_from_slice(chunks);
            assert_malformed(&answer);
        }
    }

    #[test]
    fn a_body_without_length_ends_with_the_connection() {
        let read = read_answer(b"HTTP/1.1 200 OK\r\n\r\n{\"a\":1}");
        assert_eq!(body(&read), (200, &b"{\"a\":1}"[..]));
        assert!(!read.1, "the connection ended with the body");
    }

    #[test]
    fn answers_without_a_body_end_at_their_head() {
        for head in [
            &b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"[..],
            b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let read = read_answer(head);
            assert!(read.0.as_ref().unwrap().body.is_empty());
            assert!(read.1);
        }
        let (answer, keep_alive, _) = read_in_steps(
            &Method::HEAD,
            b"HTTP/1.1 200 OK\r\nContent-Length: 512\r\n\r\n",
            4,
            16,
        );
        assert!(answer.unwrap().body.is_empty());
        assert!(keep_alive);
    }

    #[test]
    fn interim_answers_are_skipped() {
        let read = read_answer(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
              HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
        );
        assert_eq!(body(&read), (201, &b"{}"[..]));
        assert_malformed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n");
    }

    #[test]
    fn the_server_closing_is_heard() {
        for head in [
            &b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"[..],
            b"HTTP/1.1 200 OK\r\nconnection: Keep-Alive, CLOSE\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        ] {
            let read = read_answer(head);
            assert_eq!(body(&read), (200, &b"{}"[..]));
            assert!(!read.1, "{}", String::from_utf8_lossy(head));
        }
        let read = read_answer(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}",
        );
        assert!(read.1, "HTTP/1.0 kept alive when it says so");
    }

    #[test]
    fn doubtful_framing_is_refused_or_ends_the_connection() {
        for head in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}}"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n{}}",
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
            b"SMPP/3.4 200 OK\r\n\r\n",
        ] {
            assert_malformed(head);
        }
        // The same length twice is one length.
        let read = read_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n{}");
        assert_eq!(body(&read), (200, &b"{}"[..]));
        // Both framings: the chunked one is read, and the connection is not used again.
        let read = read_answer(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n\
              2\r\n{}\r\n0\r\n\r\n",
        );
        assert_eq!(body(&read), (200, &b"{}"[..]));
        assert!(!read.1);
    }

    #[test]
    fn an_answer_cut_short_is_not_an_answer() {
        for cut in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",
        ] {
            let read = read_answer(cut);
            assert!(matches!(read.0, Err(Error::Truncated)), "{:?}", read.0);
        }
    }

    #[test]
    fn bodies_over_the_limit_are_refused_before_they_are_read() {
        let too_long = |answer: &[u8]| {
            let (result, _, _) = read_in_steps(&Method::GET, answer, answer.len(), 4);
            matches!(result, Err(Error::TooLong))
        };
        assert!(too_long(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"));
        assert!(too_long(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n"
        ));
        assert!(too_long(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\n"
        ));
        assert!(too_long(b"HTTP/1.1 200 OK\r\n\r\nabcde"));
        assert!(!too_long(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd"
        ));
    }

    /// `answer` read fed whole and in 4 KiB reads: the refusal both give.
    fn refusal(answer: &[u8]) -> String {
        let (whole, _, _) = read_in_steps(&Method::GET, answer, answer.len(), 1 << 20);
        let (pieces, _, _) = read_in_steps(&Method::GET, answer, 4096, 1 << 20);
        let (whole, pieces) = (format!("{whole:?}"), format!("{pieces:?}"));
        assert_eq!(whole, pieces, "fed whole and in pieces");
        whole
    }

    #[test]
    fn heads_and_chunk_lines_without_end_are_refused() {
        let endless_line = |start: &[u8], length: usize| {
            let mut bytes = start.to_vec();
            bytes.resize(length, b'a');
            bytes
        };
        let head = endless_line(b"HTTP/1.1 200 OK\r\nX-Padding: ", MAX_HEAD + 100);
        assert_eq!(refusal(&head), r#"Err(Malformed("head too long"))"#);
        // Many lines, each short: the same limit, whichever way the bytes come.
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        while head.len() <= MAX_HEAD {
            head.extend_from_slice(&endless_line(b"X-Padding: ", 1100));
            head.extend_from_slice(b"\r\n");
        }
        assert_eq!(refusal(&head), r#"Err(Malformed("head too long"))"#);

        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut line = endless_line(&[&chunked[..], b"1;name="].concat(), chunked.len() + 1100);
        assert_eq!(
            refusal(&line),
            r#"Err(Malformed("chunk size line too long"))"#
        );
        // The same when the line is complete in the bytes at hand, and when it goes wrong
        // after the limit.
        line.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(
            refusal(&line),
            r#"Err(Malformed("chunk size line too long"))"#
        );
        line.truncate(chunked.len() + 1100);
        line.extend_from_slice(b"\rX");
        assert_eq!(
            refusal(&line),
            r#"Err(Malformed("chunk size line too long"))"#
        );

        let trailers = endless_line(
            &[&chunked[..], b"2\r\n{}\r\n0\r\nX-Padding: "].concat(),
            MAX_HEAD + 200,
        );
        assert_eq!(refusal(&trailers), r#"Err(Malformed("trailers too long"))"#);
    }

    #[test]
    fn a_body_in_pieces_is_gathered_in_order_up_to_the_limit() {
        let mut one = Collected::default();
        one.take(Bytes::from_static(b"{}"), 8).unwrap();
        assert_eq!(one.answer(StatusCode::OK).body, "{}");

        let mut pieces = Collected::default();
        for piece in [&b"ab"[..], b"cd", b"ef"] {
            pieces.take(Bytes::from_static(piece), 6).unwrap();
        }
        assert!(matches!(
            pieces.take(Bytes::from_static(b"g"), 6),
            Err(Error::TooLong)
        ));
        assert_eq!(pieces.answer(StatusCode::OK).body, "abcdef");
    }
}
