//! Where model output may be downloaded from: the SSRF guard of [`super::Replicate::download`].
//!
//! A prediction's output URL is data from a third party. Fetched blindly from inside the VPC it
//! could reach the instance metadata service, the database or any internal host, so the worker
//! only downloads:
//! - over `https`, from the provider's delivery hosts (`replicate.delivery` and its subdomains by
//!   default; `REPLICATE_OUTPUT_HOSTS` replaces the list);
//! - following redirects only while they stay within the same allowlist (each hop is checked);
//! - from hosts whose every DNS answer is a public address (no loopback, private, link-local,
//!   CGNAT, multicast or documentation ranges), checked by the client's own resolver at connect
//!   time, so a name that re-resolves to a private address between check and use is caught too.
//!
//! Tests and local development against a fake Replicate allow one exact origin (e.g.
//! `http://127.0.0.1:PORT`) and private addresses explicitly, in code: the environment can only
//! name https domains (outside production and staging, the worker adds the origin of
//! `REPLICATE_API_BASE` when it is set, so a local fake can serve its own output files).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::platform::config::{ConfigError, Env};

/// The delivery hosts of Replicate's output files.
pub const DEFAULT_OUTPUT_DOMAINS: &[&str] = &["replicate.delivery"];

/// Redirect hops followed at most (each one within the allowlist).
const MAX_REDIRECTS: usize = 5;

/// One allowed place to download output from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputHost {
    /// `https` on the default port, to this domain or any of its subdomains.
    HttpsDomain(String),
    /// Exactly this origin (scheme, host and port): a local fake in tests and development.
    Origin(url::Origin),
}

/// The download allowlist. The default is production's: https from `replicate.delivery` (and
/// subdomains), public addresses only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPolicy {
    hosts: Vec<OutputHost>,
    allow_private_addresses: bool,
}

/// Why an output URL (or a redirect, or a DNS answer) was refused. Names the host, never the
/// whole URL (its path and query are the provider's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutputRefused(pub String);

impl Default for OutputPolicy {
    fn default() -> Self {
        OutputPolicy::https_domains(DEFAULT_OUTPUT_DOMAINS.iter().copied())
    }
}

impl OutputPolicy {
    /// https from these domains and their subdomains, public addresses only.
    pub fn https_domains<S: Into<String>>(domains: impl IntoIterator<Item = S>) -> Self {
        OutputPolicy {
            hosts: domains
                .into_iter()
                .map(|d| OutputHost::HttpsDomain(d.into().to_ascii_lowercase()))
                .collect(),
            allow_private_addresses: false,
        }
    }

    /// Only the origin of `url` (scheme, host, port), private addresses allowed: a fake Replicate
    /// on this machine, for tests and local development. Never built from the environment.
    pub fn local_origin(url: &Url) -> Self {
        OutputPolicy {
            hosts: Vec::new(),
            allow_private_addresses: false,
        }
        .with_local_origin(url)
    }

    /// This policy plus the origin of `url`, private addresses allowed: local development against
    /// a fake Replicate (`REPLICATE_API_BASE` outside production and staging) that serves its
    /// output files itself.
    pub fn with_local_origin(mut self, url: &Url) -> Self {
        self.hosts.push(OutputHost::Origin(url.origin()));
        self.allow_private_addresses = true;
        self
    }

    /// Whether hosts may be (or resolve to) loopback, private or link-local addresses.
    pub fn allowing_private_addresses(self, allow: bool) -> Self {
        OutputPolicy {
            allow_private_addresses: allow,
            ..self
        }
    }

    pub fn allows_private_addresses(&self) -> bool {
        self.allow_private_addresses
    }

    /// `REPLICATE_OUTPUT_HOSTS`: comma-separated domain names (https only, subdomains included),
    /// default `replicate.delivery`. Only domain names are accepted, so the environment can never
    /// open plain http, an IP address or a private network.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let Some(raw) = env.optional("REPLICATE_OUTPUT_HOSTS") else {
            return Ok(OutputPolicy::default());
        };
        let mut domains = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = entry.to_ascii_lowercase();
            let labels_ok = entry.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            let is_domain = labels_ok && entry.contains('.') && entry.parse::<IpAddr>().is_err();
            if !is_domain {
                return Err(ConfigError::invalid(
                    "REPLICATE_OUTPUT_HOSTS",
                    format!("`{entry}` is not a domain name (expected e.g. replicate.delivery)"),
                ));
            }
            domains.push(entry);
        }
        if domains.is_empty() {
            return Err(ConfigError::invalid(
                "REPLICATE_OUTPUT_HOSTS",
                "names no domain (unset it for the default, replicate.delivery)",
            ));
        }
        Ok(OutputPolicy::https_domains(domains))
    }

    /// Whether `url` may be fetched: allowed scheme, host and port, no credentials, and (unless
    /// private addresses are allowed) no private IP literal. DNS answers are checked separately,
    /// at connect time.
    pub fn check(&self, url: &Url) -> Result<(), OutputRefused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutputRefused(format!(
                "the `{}` scheme is not downloaded",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutputRefused("the URL carries credentials".into()));
        }
        let Some(host) = url.host() else {
            return Err(OutputRefused("the URL has no host".into()));
        };
        let allowed = self.hosts.iter().any(|rule| match rule {
            OutputHost::HttpsDomain(domain) => {
                url.scheme() == "https"
                    && url.port().is_none()
                    && matches!(&host, Host::Domain(name)
                        if name.eq_ignore_ascii_case(domain)
                            || name.to_ascii_lowercase().ends_with(&format!(".{domain}")))
            }
            OutputHost::Origin(origin) => &url.origin() == origin,
        });
        if !allowed {
            return Err(OutputRefused(format!(
                "{}://{} is not an allowed output host",
                url.scheme(),
                host_and_port(url)
            )));
        }
        let literal = match host {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        };
        if let Some(ip) = literal
            && !self.allow_private_addresses
            && !is_public(ip)
        {
            return Err(OutputRefused(format!("{ip} is not a public address")));
        }
        Ok(())
    }

    /// The HTTP client downloads go through: redirects checked hop by hop against this policy,
    /// DNS answers checked for public addresses (unless allowed), no proxy, no `Referer`.
    pub(super) fn client(self: &Arc<Self>, user_agent: &'static str) -> reqwest::Result<reqwest::Client> {
        let policy = Arc::clone(self);
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(OutputRefused(format!("more than {MAX_REDIRECTS} redirects")));
            }
            match policy.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(OutputRefused(format!("a redirect went elsewhere: {refused}"))),
            }
        });
        let mut builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .user_agent(user_agent)
            .redirect(redirects)
            .referer(false)
            .no_proxy();
        if !self.allow_private_addresses {
            builder = builder.dns_resolver(PublicAddressesOnly);
        }
        builder.build()
    }
}

/// The refusal inside a reqwest error (from the redirect policy or the resolver), if that is what
/// the error is.
pub(super) fn refusal_in(error: &reqwest::Error) -> Option<OutputRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<OutputRefused>() {
            return Some(refused.clone());
        }
        source = err.source();
    }
    None
}

fn host_and_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The system resolver (as reqwest's default), refusing a name if any of its addresses is not
/// public: an allowed name pointed at 127.0.0.1 or 169.254.169.254 never gets a connection.
struct PublicAddressesOnly;

impl Resolve for PublicAddressesOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let lookup = host.clone();
            let addrs: Vec<SocketAddr> =
                tokio::task::spawn_blocking(move || (lookup.as_str(), 0).to_socket_addrs().map(Iterator::collect))
                    .await??;
            if let Some(private) = addrs.iter().find(|addr| !is_public(addr.ip())) {
                return Err(Box::new(OutputRefused(format!(
                    "{host} resolves to {}, which is not a public address",
                    private.ip()
                ))) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A globally routable unicast address (std's `is_global` is still unstable). Refuses loopback,
/// unspecified, private (RFC 1918), CGNAT, link-local (the metadata service), benchmarking,
/// documentation, IETF-reserved, multicast and broadcast ranges; IPv6 unique-local and
/// link-local; and IPv4 embedded in IPv6 (mapped, NAT64, 6to4) by the IPv4 rules.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..=127).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (18..=19).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match segments {
        // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return is_public_v4(embedded_v4(hi, lo)),
        // 6to4 (2002::/16) carries one in bits 16..48.
        [0x2002, hi, lo, ..] => return is_public_v4(embedded_v4(hi, lo)),
        _ => {}
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x2001 && segments[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID…)
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]) // discard-only 100::/64
        || segments[0] == 0) // the rest of ::/16 (IPv4-compatible and reserved)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn url(raw: &str) -> Url {
        raw.parse().unwrap()
    }

    #[test]
    fn the_default_allows_https_from_replicate_delivery_only() {
        let policy = OutputPolicy::default();
        for ok in [
            "https://replicate.delivery/xezq/abc/out-0.webp",
            "https://pbxt.replicate.delivery/abc/out.png",
            "https://REPLICATE.delivery/a.jpg",
        ] {
            assert_eq!(policy.check(&url(ok)), Ok(()), "{ok}");
        }
        for refused in [
            "http://replicate.delivery/out.png",
            "https://replicate.delivery:8443/out.png",
            "https://evilreplicate.delivery/out.png",
            "https://replicate.delivery.evil.example/out.png",
            "https://user:pw@replicate.delivery/out.png",
            "https://169.254.169.254/latest/meta-data/",
            "https://127.0.0.1/out.png",
            "https://[::1]/out.png",
            "http://localhost/out.png",
            "ftp://replicate.delivery/out.png",
            "file:///etc/passwd",
            "data:image/png;base64,AAAA",
        ] {
            assert!(policy.check(&url(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_local_origin_allows_exactly_that_origin() {
        let policy = OutputPolicy::local_origin(&url("http://127.0.0.1:4567/v1"));
        assert_eq!(policy.check(&url("http://127.0.0.1:4567/files/out.png")), Ok(()));
        for refused in [
            "http://127.0.0.1:4568/files/out.png",
            "https://127.0.0.1:4567/files/out.png",
            "http://localhost:4567/files/out.png",
            "https://replicate.delivery/out.png",
        ] {
            assert!(policy.check(&url(refused)).is_err(), "{refused}");
        }
        // An allowed origin that is a private address still needs private addresses allowed.
        let strict = policy.allowing_private_addresses(false);
        assert!(strict.check(&url("http://127.0.0.1:4567/files/out.png")).is_err());
    }

    #[test]
    fn the_environment_names_https_domains_only() {
        let read = |value: Option<&'static str>| {
            let mut vars: HashMap<&str, &str> = HashMap::new();
            if let Some(value) = value {
                vars.insert("REPLICATE_OUTPUT_HOSTS", value);
            }
            OutputPolicy::from_env(&Env(&vars))
        };
        assert_eq!(read(None).unwrap(), OutputPolicy::default());
        assert_eq!(read(Some("  ")).unwrap(), OutputPolicy::default(), "blank is unset");
        let custom = read(Some(" replicate.delivery, Files.Example.com ")).unwrap();
        assert_eq!(custom.check(&url("https://cdn.files.example.com/x.png")), Ok(()));
        assert!(!custom.allows_private_addresses());
        for bad in [
            " , ",
            "127.0.0.1",
            "http://replicate.delivery",
            "localhost",
            "replicate.delivery:443",
            "-x.example",
            "a..b",
        ] {
            assert!(read(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_globally_routable_addresses_are_public() {
        for public in [
            "8.8.8.8",
            "54.230.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.170",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }
}
