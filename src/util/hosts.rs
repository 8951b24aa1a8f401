//! Host name resolution without NSS (the binary is static glibc, so `getaddrinfo` is off limits):
//! IP literals first, then `/etc/hosts`, then `localhost`, then DNS (`super::dns`). Every
//! role resolves through here: agent enroll and run, `vigocli --server`, server listen addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Resolves `host:port` (or `[v6]:port`) to a socket address.
pub fn resolve(host_port: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = host_port.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = host_port.rsplit_once(':').ok_or_else(|| format!("{host_port:?} is not HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("{host_port:?}: bad port"))?;
    let ip = resolve_host(host)?;
    Ok(SocketAddr::new(ip, port))
}

pub fn resolve_host(host: &str) -> Result<IpAddr, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    if let Ok(text) = std::fs::read_to_string("/etc/hosts") {
        if let Some(ip) = lookup_in_hosts(&text, host) {
            return Ok(ip);
        }
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    if host.is_empty() {
        return Err("an empty host name cannot be resolved; give HOST:PORT".into());
    }
    super::dns::lookup(host)
}

fn lookup_in_hosts(text: &str, host: &str) -> Option<IpAddr> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let ip: IpAddr = fields.next()?.parse().ok()?;
            fields.any(|n| n.eq_ignore_ascii_case(host)).then_some(ip)
        })
        // Prefer IPv4 when a name has both, as most agents reach servers over v4.
        .min_by_key(|ip| !ip.is_ipv4())
}

/// This machine's host name, from the kernel.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_hosts_file() {
        assert_eq!(resolve("127.0.0.1:7443").unwrap().port(), 7443);
        assert_eq!(resolve("[::1]:1").unwrap().ip().to_string(), "::1");
        assert_eq!(resolve("localhost:9").unwrap().ip().to_string(), "127.0.0.1");
        let hosts = "# c\n10.0.0.5 db db.internal\n::1 db\n";
        assert_eq!(lookup_in_hosts(hosts, "DB").unwrap().to_string(), "10.0.0.5");
        assert!(lookup_in_hosts(hosts, "web").is_none());
        assert!(resolve(":1").unwrap_err().contains("empty host"));
        assert!(resolve("nope").unwrap_err().contains("HOST:PORT"));
    }
}
