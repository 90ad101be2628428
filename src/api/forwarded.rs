//! Where a KM-UU request was addressed: the host that selects the community and the scheme and
//! host of the `ClientReqUrl` a `KmsResponse` echoes (TS 33.180 D.3.1). With an HTTP proxy in
//! front (TS 23.434 HTTP-1 / HTTP-2 reference points) the node sees the proxy's request, so
//! the original host and scheme come from the proxy's headers — but only when the connection
//! comes from a trusted proxy (`client_listener.trusted_proxies`); from any other peer those
//! headers are ignored, so a client cannot pick a community or a `ClientReqUrl` by forging
//! them.
//!
//! The rule ([`origin`]), for a peer in the trusted list: the host is the `host=` of the last
//! element of `Forwarded` (RFC 7239; the element the proxy next to us added), else the last
//! value of `X-Forwarded-Host`; the scheme likewise from `proto=` or `X-Forwarded-Proto`
//! (`http` or `https` only). A forwarded value that is not a plausible `host[:port]` is
//! ignored. Otherwise (and for anything not forwarded): the `Host` header, else the request
//! URI's authority (HTTP/2 `:authority`), else `localhost`; the scheme is `https`, the only
//! one a node serves.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;

use crate::config::trusted_proxies::IpCidr;

/// Longest host accepted from a forwarding header.
const MAX_HOST: usize = 255;

/// The host and scheme a request was addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `host[:port]` as the client addressed it.
    pub host: String,
    /// `https` or `http`.
    pub scheme: &'static str,
}

impl Origin {
    /// The URL of `path` at this origin (the default `ClientReqUrl`).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.host)
    }
}

fn plausible_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= MAX_HOST
        && h.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// The value of parameter `key` in the last element of the `Forwarded` headers.
fn forwarded_param(headers: &HeaderMap, key: &str) -> Option<String> {
    let last = header(headers, "forwarded").last()?;
    last.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The forwarded host and scheme (each only if present and well-formed).
fn forwarded(headers: &HeaderMap) -> (Option<String>, Option<&'static str>) {
    let host = forwarded_param(headers, "host")
        .or_else(|| {
            header(headers, "x-forwarded-host")
                .last()
                .map(str::to_owned)
        })
        .filter(|h| plausible_host(h));
    let proto = forwarded_param(headers, "proto")
        .or_else(|| {
            header(headers, "x-forwarded-proto")
                .last()
                .map(str::to_owned)
        })
        .and_then(|p| match p.to_ascii_lowercase().as_str() {
            "https" => Some("https"),
            "http" => Some("http"),
            _ => None,
        });
    (host, proto)
}

/// The rule of the module docs: `peer` is the connection's remote address, `authority` the
/// request URI's.
pub fn origin(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    authority: Option<&str>,
    trusted: &[IpCidr],
) -> Origin {
    let direct_host = || {
        headers
            .get(actix_web::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| !h.is_empty())
            .or(authority)
            .unwrap_or("localhost")
            .to_owned()
    };
    let from_proxy = peer.is_some_and(|ip| trusted.iter().any(|n| n.contains(ip)));
    let (host, scheme) = if from_proxy {
        forwarded(headers)
    } else {
        (None, None)
    };
    Origin {
        host: host.unwrap_or_else(direct_host),
        scheme: scheme.unwrap_or("https"),
    }
}

/// [`origin`] of an actix request.
pub fn origin_of(req: &HttpRequest, trusted: &[IpCidr]) -> Origin {
    origin(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        req.uri().authority().map(|a| a.as_str()),
        trusted,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn trusted() -> Vec<IpCidr> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    fn at(peer: &str, h: &[(&str, &str)]) -> Origin {
        origin(Some(peer.parse().unwrap()), &headers(h), None, &trusted())
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let h = [
            ("host", "node1:8443"),
            ("x-forwarded-host", "kms2.example.org:443"),
            ("x-forwarded-proto", "http"),
        ];
        let via_proxy = at("10.1.2.3", &h);
        assert_eq!(via_proxy.host, "kms2.example.org:443");
        assert_eq!(via_proxy.url("/p"), "http://kms2.example.org:443/p");
        let direct = at("192.0.2.7", &h);
        assert_eq!(
            (direct.host.as_str(), direct.scheme),
            ("node1:8443", "https")
        );
        // No peer address known: not trusted.
        let unknown = origin(None, &headers(&h), None, &trusted());
        assert_eq!(unknown.host, "node1:8443");
    }

    #[test]
    fn forwarded_wins_and_the_last_element_counts() {
        let o = at(
            "10.0.0.1",
            &[
                ("host", "node1"),
                ("forwarded", "for=1.2.3.4;host=evil.example, for=5.6.7.8;host=\"kms.example.org\";proto=https"),
                ("x-forwarded-host", "other.example"),
            ],
        );
        assert_eq!((o.host.as_str(), o.scheme), ("kms.example.org", "https"));
        let o = at(
            "10.0.0.1",
            &[
                ("host", "node1"),
                ("x-forwarded-host", "a.example, b.example"),
            ],
        );
        assert_eq!(o.host, "b.example");
    }

    #[test]
    fn malformed_forwarded_values_are_ignored() {
        for bad in ["", "a b", "a/b", "a\"b", &"h".repeat(256)] {
            let o = at("10.0.0.1", &[("host", "node1"), ("x-forwarded-host", bad)]);
            assert_eq!(o.host, "node1", "{bad:?}");
        }
        let o = at(
            "10.0.0.1",
            &[("host", "node1"), ("x-forwarded-proto", "gopher")],
        );
        assert_eq!(o.scheme, "https");
        // HTTP/2 without a Host header: the authority.
        let o = origin(None, &HeaderMap::new(), Some("kms.example.org:9443"), &[]);
        assert_eq!(o.host, "kms.example.org:9443");
        assert_eq!(origin(None, &HeaderMap::new(), None, &[]).host, "localhost");
    }
}
