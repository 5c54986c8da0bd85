//! Which client a request comes from, for the per-client rate limits.
//!
//! By default the client is the TCP peer. Behind a load balancer every peer is the balancer,
//! so the operator lists the proxies they run (`http.trusted_proxies`, addresses or CIDR
//! blocks) and the header those proxies name the client in (`http.client_ip_header`:
//! `x-forwarded-for` or RFC 7239 `forwarded`). Only a request whose peer is a trusted proxy
//! has that header read, and it is read from the right: each trusted proxy appends the address
//! it received the request from, so the first address that is not a trusted proxy is the
//! client. Anything left of it was written by the client and is ignored, so a spoofed header
//! gains nothing. A hop that does not parse (an obfuscated or garbled identifier) ends the walk
//! at the last trusted hop.
//!
//! The rate-limit key of an IPv6 client is its /64 network (what one subscriber is usually
//! given, so rotating addresses inside it does not escape the limit); an IPv4 client, or an
//! IPv4-mapped IPv6 address, is keyed on the address itself.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use forwarded_header_value::ForwardedStanza;
use ipnet::IpNet;
use tower_governor::GovernorError;
use tower_governor::key_extractor::KeyExtractor;

use crate::configuration::{ClientIpHeader, HttpSettings};

/// Finds a request's client address; a tower_governor key extractor keyed on
/// [`rate_limit_key`] of it.
#[derive(Debug, Clone)]
pub struct ClientIp {
    /// Proxies whose client header is believed.
    trusted: Arc<[IpNet]>,
    /// The header they name the client in.
    header: ClientIpHeader,
}

impl ClientIp {
    /// From `http.trusted_proxies` (each an address or a CIDR block) and
    /// `http.client_ip_header`; an entry that is neither is an error naming it.
    pub fn from_settings(http: &HttpSettings) -> anyhow::Result<Self> {
        let trusted = http
            .trusted_proxies
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .with_context(|| {
                        format!(
                            "http.trusted_proxies: {entry:?} is not an IP address or CIDR block"
                        )
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            trusted: trusted.into(),
            header: http.client_ip_header,
        })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer` with `headers` (see the module docs).
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in self.hops(headers).into_iter().rev() {
            let Some(hop) = hop else { break };
            client = canonical(hop);
            if !self.is_trusted(client) {
                break;
            }
        }
        client
    }

    /// The addresses of the configured header, leftmost (farthest) first, `None` for a hop
    /// that does not parse. Several header lines count as one list, in order.
    fn hops(&self, headers: &HeaderMap) -> Vec<Option<IpAddr>> {
        let name = match self.header {
            ClientIpHeader::XForwardedFor => "x-forwarded-for",
            ClientIpHeader::Forwarded => "forwarded",
        };
        let mut hops = Vec::new();
        for value in headers.get_all(name) {
            let Ok(value) = value.to_str() else {
                hops.push(None);
                continue;
            };
            for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                hops.push(match self.header {
                    ClientIpHeader::XForwardedFor => parse_xff_item(item),
                    ClientIpHeader::Forwarded => ForwardedStanza::from_str(item)
                        .ok()
                        .and_then(|s| s.forwarded_for_ip()),
                });
            }
        }
        hops
    }
}

/// One `X-Forwarded-For` entry: a bare address, or `[v6]:port` / `v4:port` as some proxies
/// write it.
fn parse_xff_item(item: &str) -> Option<IpAddr> {
    IpAddr::from_str(item)
        .ok()
        .or_else(|| SocketAddr::from_str(item).ok().map(|a| a.ip()))
}

/// IPv4-mapped IPv6 addresses as IPv4, so one client has one key whichever way it arrives.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key a client is rate-limited under: an IPv4 address as is, an IPv6 address's /64.
pub fn rate_limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .ok_or(GovernorError::UnableToExtractKey)?;
        Ok(rate_limit_key(self.client_of(peer, req.headers())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_ip(trusted: &[&str], header: ClientIpHeader) -> ClientIp {
        let http = HttpSettings {
            trusted_proxies: trusted.iter().map(|s| (*s).to_owned()).collect(),
            client_ip_header: header,
            ..HttpSettings::default()
        };
        ClientIp::from_settings(&http).unwrap()
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_str(name).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() {
        let c = client_ip(&[], ClientIpHeader::XForwardedFor);
        let spoofed = headers("x-forwarded-for", "1.2.3.4");
        assert_eq!(c.client_of(ip("203.0.113.9"), &spoofed), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let c = client_ip(&["10.0.0.0/8", "192.0.2.7"], ClientIpHeader::XForwardedFor);
        // The client wrote "6.6.6.6" itself; the proxies appended 198.51.100.4 and 10.1.1.1.
        let h = headers("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.1.1.1");
        assert_eq!(c.client_of(ip("192.0.2.7"), &h), ip("198.51.100.4"));
        // From an untrusted peer the header is ignored.
        assert_eq!(c.client_of(ip("198.51.100.99"), &h), ip("198.51.100.99"));
        // A trusted peer without the header: the peer.
        assert_eq!(
            c.client_of(ip("10.2.2.2"), &HeaderMap::new()),
            ip("10.2.2.2")
        );
        // Garbage ends the walk at the last trusted hop.
        let h = headers("x-forwarded-for", "198.51.100.4, nonsense, 10.1.1.1");
        assert_eq!(c.client_of(ip("10.0.0.1"), &h), ip("10.1.1.1"));
    }

    #[test]
    fn the_forwarded_header_is_read_the_same_way() {
        let c = client_ip(&["10.0.0.0/8"], ClientIpHeader::Forwarded);
        let h = headers(
            "forwarded",
            r#"for=6.6.6.6, for="[2001:db8::1]:4711";proto=https, for=10.0.0.5"#,
        );
        assert_eq!(c.client_of(ip("10.0.0.1"), &h), ip("2001:db8::1"));
        // X-Forwarded-For is not read when Forwarded is configured.
        let h = headers("x-forwarded-for", "198.51.100.4");
        assert_eq!(c.client_of(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            rate_limit_key(ip("2001:db8:1:2:aaaa::1")),
            rate_limit_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            rate_limit_key(ip("2001:db8:1:2::1")),
            rate_limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(rate_limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(rate_limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn an_invalid_trusted_proxy_entry_is_refused_with_its_name() {
        let http = HttpSettings {
            trusted_proxies: vec!["10.0.0.0/33".into()],
            ..HttpSettings::default()
        };
        let err = ClientIp::from_settings(&http).unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/33"), "{err}");
    }
}
