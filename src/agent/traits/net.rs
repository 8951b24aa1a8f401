//! Network interfaces with their addresses (getifaddrs) and hardware address (/sys).

use std::collections::BTreeMap;

use serde_json::{json, Value};

pub fn interfaces() -> Result<Value, String> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(|e| format!("getifaddrs: {e}"))? {
        let entry = by_name.entry(ifa.interface_name.clone()).or_default();
        let Some(addr) = ifa.address else { continue };
        let prefix = |mask: Option<nix::sys::socket::SockaddrStorage>| -> u32 {
            match mask {
                Some(m) => match (m.as_sockaddr_in(), m.as_sockaddr_in6()) {
                    (Some(v4), _) => u32::from(v4.ip()).count_ones(),
                    (_, Some(v6)) => u128::from(v6.ip()).count_ones(),
                    _ => 0,
                },
                None => 0,
            }
        };
        if let Some(v4) = addr.as_sockaddr_in() {
            entry.push(format!("{}/{}", v4.ip(), prefix(ifa.netmask)));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            entry.push(format!("{}/{}", v6.ip(), prefix(ifa.netmask)));
        }
    }
    let list: Vec<Value> = by_name
        .into_iter()
        .map(|(name, mut addresses)| {
            addresses.sort();
            addresses.dedup();
            let mac = std::fs::read_to_string(format!("/sys/class/net/{name}/address"))
                .ok()
                .map(|m| m.trim().to_string());
            json!({ "name": name, "addresses": addresses, "mac": mac })
        })
        .collect();
    Ok(json!(list))
}
