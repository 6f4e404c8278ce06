//! Matching the ESME's address against `allowed_peers`, with std's address types only: the
//! rules are plain addresses and CIDR ranges, nothing a dependency would add to.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// An address range: `10.0.0.0/8`, `2001:db8::/32`, or one address (a full-length prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    /// With the host bits cleared, so that containment is one masked comparison.
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// Reads `127.0.0.1`, `10.0.0.0/8`, `::1` or `fd00::/8`. Host bits below the prefix
    /// (`10.1.2.3/8`) are ignored, as most firewalls do.
    pub fn parse(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let max = max_prefix(addr);
        let prefix = match prefix {
            None => max,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(prefix) if prefix <= max => prefix,
                _ => {
                    return Err(format!(
                        "{text:?}: the prefix length must be a number from 0 to {max}"
                    ));
                }
            },
        };
        Ok(Network {
            base: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `addr` lies in the range. An IPv4 client of a dual-stack listener shows up as
    /// `::ffff:a.b.c.d`; it matches IPv4 rules as well, so operators need not write both.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let within = |addr: IpAddr| {
            max_prefix(addr) == max_prefix(self.base) && mask(addr, self.prefix) == self.base
        };
        within(addr)
            || match addr {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| within(v4.into())),
                IpAddr::V4(_) => false,
            }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// The IP of a peer address as the server gives it (`ip:port`, `[v6]:port`); a bare address
/// is accepted too. `None` when it is neither, which no rule can match.
pub fn peer_ip(peer: &str) -> Option<IpAddr> {
    peer.parse::<SocketAddr>()
        .map(|socket| socket.ip())
        .or_else(|_| peer.parse::<IpAddr>())
        .ok()
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & bits).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & bits).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn single_addresses_match_only_themselves() {
        let net = Network::parse("127.0.0.1").unwrap();
        assert!(net.contains(ip("127.0.0.1")));
        assert!(!net.contains(ip("127.0.0.2")));
        let net = Network::parse("::1").unwrap();
        assert!(net.contains(ip("::1")));
        assert!(!net.contains(ip("::2")));
    }

    #[test]
    fn ipv4_ranges() {
        let net = Network::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        let net = Network::parse("192.168.1.128/25").unwrap();
        assert!(net.contains(ip("192.168.1.200")));
        assert!(!net.contains(ip("192.168.1.127")));
        let any = Network::parse("0.0.0.0/0").unwrap();
        assert!(any.contains(ip("203.0.113.9")));
        assert!(!any.contains(ip("2001:db8::1")));
    }

    #[test]
    fn ipv6_ranges() {
        let net = Network::parse("2001:db8::/32").unwrap();
        assert!(net.contains(ip("2001:db8:ffff::1")));
        assert!(!net.contains(ip("2001:db9::1")));
        assert!(!net.contains(ip("10.0.0.1")));
        let any = Network::parse("::/0").unwrap();
        assert!(any.contains(ip("fe80::1")));
    }

    #[test]
    fn host_bits_are_ignored() {
        assert_eq!(
            Network::parse("10.1.2.3/8").unwrap(),
            Network::parse("10.0.0.0/8").unwrap()
        );
        assert_eq!(Network::parse("fd00::1/8").unwrap().to_string(), "fd00::/8");
    }

    #[test]
    fn mapped_ipv4_clients_match_ipv4_rules() {
        let net = Network::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        assert!(!net.contains(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn bad_rules_are_refused() {
        for rule in [
            "",
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "1.2.3.4/x",
        ] {
            assert!(Network::parse(rule).is_err(), "{rule}");
        }
    }

    #[test]
    fn peers_come_with_ports() {
        assert_eq!(peer_ip("127.0.0.1:40000"), Some(ip("127.0.0.1")));
        assert_eq!(peer_ip("[::1]:2775"), Some(ip("::1")));
        assert_eq!(peer_ip("[2001:db8::7]:1"), Some(ip("2001:db8::7")));
        assert_eq!(peer_ip("10.0.0.1"), Some(ip("10.0.0.1")));
        assert_eq!(peer_ip("somewhere:1"), None);
        assert_eq!(peer_ip(""), None);
    }
}
