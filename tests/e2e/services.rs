//! The services a deployment of several instances runs beside them — Redis for the shared
//! delivery state, HAProxy in front — started by the tests that need them on free loopback
//! ports, and stopped when dropped. Both come from Debian (`redis-server`, `haproxy`), which
//! tests/run installs.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::support::{TempDir, free_port};

/// A child process killed (and reaped) when dropped.
struct Service {
    child: Child,
    name: &'static str,
}

impl Service {
    fn spawn(name: &'static str, cmd: &mut Command) -> Service {
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (tests/run installs it): {e}"));
        Service { child, name }
    }

    async fn wait_for(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} not listening on {port}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {}", self.name);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Redis {
    service: Service,
    pub url: String,
}

impl Redis {
    /// An empty redis-server without persistence.
    pub async fn start() -> Redis {
        let port = free_port();
        let mut service = Service::spawn(
            "redis-server",
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"]),
        );
        service.wait_for(port).await;
        Redis {
            service,
            url: format!("redis://127.0.0.1:{port}/0"),
        }
    }

    /// SIGSTOP: connections stay open and nothing answers, as when Redis is cut off; nothing
    /// it holds is lost.
    pub fn pause(&self) {
        self.service.signal("-STOP");
    }

    pub fn resume(&self) {
        self.service.signal("-CONT");
    }
}

/// HAProxy in front of the instances: SMPP as TCP to the instance with the fewest connections
/// (binds last for hours, so counting them spreads the load), the webhooks as HTTP round robin.
pub struct Haproxy {
    _service: Service,
    _dir: TempDir,
}

impl Haproxy {
    /// The ports to listen on are picked by the caller, because the instances must know the
    /// webhook URL before HAProxy can know them.
    pub async fn start(
        smpp: u16,
        http: u16,
        smpp_backends: &[SocketAddr],
        http_backends: &[SocketAddr],
    ) -> Haproxy {
        let dir = TempDir::new("haproxy");
        let mut config = format!(
            "defaults\n  timeout connect 2s\n  timeout client 10m\n  timeout server 10m\n\n\
             frontend smpp\n  mode tcp\n  bind 127.0.0.1:{smpp}\n  default_backend smpp\n\n\
             backend smpp\n  mode tcp\n  balance leastconn\n"
        );
        for (n, backend) in smpp_backends.iter().enumerate() {
            let _ = writeln!(config, "  server smpp{n} {backend}");
        }
        let _ = write!(
            config,
            "\nfrontend webhooks\n  mode http\n  bind 127.0.0.1:{http}\n  \
             default_backend webhooks\n\nbackend webhooks\n  mode http\n  balance roundrobin\n"
        );
        for (n, backend) in http_backends.iter().enumerate() {
            let _ = writeln!(config, "  server web{n} {backend}");
        }
        let path = dir.path().join("haproxy.cfg");
        fs::write(&path, config).expect("write haproxy.cfg");
        let mut service = Service::spawn(
            "haproxy",
            Command::new("haproxy").arg("-db").arg("-f").arg(&path),
        );
        service.wait_for(smpp).await;
        service.wait_for(http).await;
        Haproxy {
            _service: service,
            _dir: dir,
        }
    }
}
