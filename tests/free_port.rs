//! Ports for the servers the tests and benchmarks start. A probe's socket is closed before the
//! server binds its port, and the kernel may hand the same port out again meanwhile: to the
//! next probe of the same test, or to a test running alongside. So no port is given out twice
//! in one process.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// A port nobody listens on right now, and that this process was not given before.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("probe for a free port")
            .port();
        if HANDED_OUT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(port)
        {
            return port;
        }
    }
}
