//! DNS for the host names that are neither IP literals nor in `/etc/hosts`. The binary is static
//! glibc, so `getaddrinfo`/NSS are off limits: hickory's pure-Rust resolver asks the name
//! servers of `/etc/resolv.conf` (with its search list, ndots, timeout and attempts), or, when
//! `VIGO_DNS_SERVERS` is set, only those servers.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::Resolver;

/// Comma- or space-separated `IP`, `IP:PORT` or `[IPv6]:PORT`: the DNS servers to ask instead
/// of those in `/etc/resolv.conf` (split-horizon setups, containers, and the tests).
pub const DNS_SERVERS_ENV: &str = "VIGO_DNS_SERVERS";
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Parses the value of `VIGO_DNS_SERVERS`; port 53 unless one is given.
pub fn parse_servers(list: &str) -> Result<Vec<SocketAddr>, String> {
    let servers: Vec<SocketAddr> = list
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| format!("{DNS_SERVERS_ENV}: {s:?} is not IP or IP:PORT"))
        })
        .collect::<Result<_, _>>()?;
    if servers.is_empty() {
        return Err(format!("{DNS_SERVERS_ENV} is set but names no server"));
    }
    Ok(servers)
}

/// The resolver's configuration and a description of where it came from, for messages.
fn configuration() -> Result<(ResolverConfig, ResolverOpts, String), String> {
    let (config, mut opts, from) = match std::env::var(DNS_SERVERS_ENV) {
        Ok(list) if !list.trim().is_empty() => {
            let servers = parse_servers(&list)?;
            let mut group = NameServerConfigGroup::new();
            for s in &servers {
                group.merge(NameServerConfigGroup::from_ips_clear(&[s.ip()], s.port(), true));
            }
            let shown: Vec<String> = servers.iter().map(ToString::to_string).collect();
            let from = format!("{} from {DNS_SERVERS_ENV}", shown.join(", "));
            (ResolverConfig::from_parts(None, vec![], group), ResolverOpts::default(), from)
        }
        _ => {
            let text = std::fs::read(RESOLV_CONF)
                .map_err(|e| format!("cannot read {RESOLV_CONF} to find a DNS server: {e}"))?;
            let (config, opts) = hickory_resolver::system_conf::parse_resolv_conf(text)
                .map_err(|e| format!("{RESOLV_CONF}: {e}"))?;
            let shown: Vec<String> =
                config.name_servers().iter().map(|n| n.socket_addr.to_string()).collect();
            let mut shown = shown;
            shown.dedup();
            (config, opts, format!("{} from {RESOLV_CONF}", shown.join(", ")))
        }
    };
    // /etc/hosts was read before DNS was asked (src/util/hosts.rs); one lookup, no cache to keep.
    opts.use_hosts_file = ResolveHosts::Never;
    opts.cache_size = 0;
    Ok((config, opts, from))
}

/// The address DNS gives for `host` (IPv4 first, as most agents reach servers over v4).
pub fn lookup(host: &str) -> Result<IpAddr, String> {
    let (config, opts, from) = configuration()?;
    let name = host.to_string();
    // Own thread and runtime: callers are plain functions, some of them inside a runtime.
    let answer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the DNS runtime: {e}"))?;
        rt.block_on(async {
            let resolver = Resolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build();
            resolver.lookup_ip(name.as_str()).await.map_err(|e| e.to_string())
        })
        .map(|found| found.iter().min_by_key(|ip| !ip.is_ipv4()))
    })
    .join()
    .map_err(|_| "the DNS lookup thread failed".to_string())?;
    match answer {
        Ok(Some(ip)) => Ok(ip),
        Ok(None) => Err(format!("cannot resolve {host:?}: DNS ({from}) has no address for it")),
        Err(e) => Err(format!(
            "cannot resolve {host:?}: {e} (DNS servers: {from}); check the name, or add it to /etc/hosts"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_server_lists_take_ports_and_refuse_names() {
        let s = parse_servers("127.0.0.1:5353, 10.0.0.2 [::1]:53").unwrap();
        let shown: Vec<String> = s.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.1:5353", "10.0.0.2:53", "[::1]:53"]);
        assert!(parse_servers("dns.example.com").unwrap_err().contains("not IP or IP:PORT"));
        assert!(parse_servers(" , ").is_err());
    }
}
