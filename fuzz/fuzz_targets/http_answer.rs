//! A gateway's HTTP/1.1 answers from arbitrary bytes, read as the server's gateway client reads
//! them off a kept-alive connection. Reading must never panic; the bytes must read alike
//! however they are cut into reads; no body may exceed the limit; and answers follow one
//! another on the connection only while each says it may be reused.
//!
//! The first byte chooses the request (HEAD or POST) and the limit; the rest is the stream.

#![no_main]

use bytes::BytesMut;
use http::Method;
use http1_framing::AnswerReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, stream)) = data.split_first() else {
        return;
    };
    let method = if choice & 1 == 1 {
        Method::HEAD
    } else {
        Method::POST
    };
    let limit = 16usize << (choice >> 4);
    let whole = read_stream(&method, limit, &[stream]);
    let pieces: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(whole, read_stream(&method, limit, &pieces));
});

/// Every answer the stream holds, as (status, body, reusable), then how reading ended.
fn read_stream(method: &Method, limit: usize, reads: &[&[u8]]) -> Vec<String> {
    let mut read = Vec::new();
    let mut received = BytesMut::new();
    let mut reader = AnswerReader::new(method, limit);
    for bytes in reads {
        received.extend_from_slice(bytes);
        loop {
            match reader.read(&mut received) {
                Ok(Some(answer)) => {
                    assert!(answer.body.len() <= limit);
                    read.push(format!(
                        "{} {:?} {}",
                        answer.status,
                        answer.body,
                        reader.keep_alive()
                    ));
                    if !reader.keep_alive() {
                        return read;
                    }
                    reader = AnswerReader::new(method, limit);
                }
                Ok(None) => break,
                Err(e) => {
                    read.push(format!("error: {e}"));
                    return read;
                }
            }
        }
    }
    match reader.closed() {
        Ok(answer) => {
            assert!(answer.body.len() <= limit);
            read.push(format!("{} {:?} closed", answer.status, answer.body));
        }
        Err(e) => read.push(format!("closed: {e}")),
    }
    read
}
