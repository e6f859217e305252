//! Kernel packet counters inside a namespace: what its UDP layer took in (`/proc/net/snmp`,
//! `/proc/net/snmp6`) and what each interface carried and dropped (`ip -s link`).
//!
//! The bench and the tests read them on both sides of the appliance, so that every
//! datagram is accounted for by a counter, not only by what the generator says it sent.

use std::collections::BTreeMap;
use std::ops::Sub;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns::Netns;

/// Datagrams that reached the UDP layer of `ns` so far, IPv4 and IPv6: delivered to a
/// socket or dropped there for a full receive buffer, so that a slow receiver does not
/// count against the path. Unlike an echo server's own counters this holds for any
/// number of flows.
///
/// # Errors
/// The files cannot be read, or lack the counters.
pub fn udp_arrivals(ns: &Netns) -> Result<u64> {
    let out = ns.run(
        "cat",
        &["/proc/net/snmp", "/proc/net/snmp6"],
        Duration::from_secs(5),
    )?;
    parse_udp_arrivals(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| Error::Parse {
        tool: "/proc/net/snmp".into(),
        detail: "no Udp InDatagrams/RcvbufErrors".into(),
    })
}

/// `InDatagrams + RcvbufErrors` of the `Udp:` lines of `/proc/net/snmp`, plus
/// `Udp6InDatagrams + Udp6RcvbufErrors` of `/proc/net/snmp6` where present.
fn parse_udp_arrivals(text: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |name: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    let v6 = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    Some(
        get("InDatagrams")?
            + get("RcvbufErrors")?
            + v6("Udp6InDatagrams ")
            + v6("Udp6RcvbufErrors "),
    )
}

/// Datagrams the UDP layer of `ns` dropped for a full socket receive buffer so far
/// (`RcvbufErrors`, IPv4 and IPv6): a receiver that fell behind.
///
/// # Errors
/// The files cannot be read, or lack the counter.
pub fn udp_rcvbuf_errors(ns: &Netns) -> Result<u64> {
    let out = ns.run(
        "cat",
        &["/proc/net/snmp", "/proc/net/snmp6"],
        Duration::from_secs(5),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let parsed = (|| {
        let names: Vec<&str> = lines.next()?.split_whitespace().collect();
        let values: Vec<&str> = lines.next()?.split_whitespace().collect();
        let i = names.iter().position(|n| *n == "RcvbufErrors")?;
        let v4: u64 = values.get(i)?.parse().ok()?;
        let v6: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("Udp6RcvbufErrors ")?.trim().parse().ok())
            .unwrap_or(0);
        Some(v4 + v6)
    })();
    parsed.ok_or_else(|| Error::Parse {
        tool: "/proc/net/snmp".into(),
        detail: "no Udp RcvbufErrors".into(),
    })
}

/// One interface's packet counters (`ip -s link`, 64-bit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Frames dropped on receive.
    pub rx_dropped: u64,
    /// Frames sent. On a TAP: written towards the program that reads it (DPDK).
    pub tx_packets: u64,
    /// Frames dropped on send. On a veth: the peer's backlog was full; on a TAP: the queue
    /// towards its reader was full.
    pub tx_dropped: u64,
}

impl Sub for LinkStats {
    type Output = LinkStats;

    /// What was counted between two readings (`after - before`).
    fn sub(self, before: LinkStats) -> LinkStats {
        LinkStats {
            rx_packets: self.rx_packets.saturating_sub(before.rx_packets),
            rx_dropped: self.rx_dropped.saturating_sub(before.rx_dropped),
            tx_packets: self.tx_packets.saturating_sub(before.tx_packets),
            tx_dropped: self.tx_dropped.saturating_sub(before.tx_dropped),
        }
    }
}

/// The counters of interface `iface` in `ns`.
///
/// # Errors
/// `ip` fails (no such interface) or prints something unexpected.
pub fn link_stats(ns: &Netns, iface: &str) -> Result<LinkStats> {
    let out = ns.ip(&["-j", "-s", "link", "show", "dev", iface])?;
    parse_links(&out.stdout)?
        .remove(iface)
        .ok_or_else(|| Error::Parse {
            tool: "ip -j -s link".into(),
            detail: format!("no statistics for {iface}"),
        })
}

/// The counters of every interface in `ns`, by name.
///
/// # Errors
/// `ip` fails or prints something unexpected.
pub fn all_link_stats(ns: &Netns) -> Result<BTreeMap<String, LinkStats>> {
    let out = ns.ip(&["-j", "-s", "link", "show"])?;
    parse_links(&out.stdout)
}

fn parse_links(json: &[u8]) -> Result<BTreeMap<String, LinkStats>> {
    let bad = |detail: String| Error::Parse {
        tool: "ip -j -s link".into(),
        detail,
    };
    let links: serde_json::Value = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
    let links = links
        .as_array()
        .ok_or_else(|| bad("not a JSON array".into()))?;
    let mut out = BTreeMap::new();
    for link in links {
        let name = link
            .get("ifname")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| bad(format!("no ifname in {link}")))?;
        let get = |dir: &str, what: &str| {
            link.get("stats64")
                .and_then(|s| s.get(dir)?.get(what)?.as_u64())
                .ok_or_else(|| bad(format!("no stats64.{dir}.{what} for {name}")))
        };
        out.insert(
            name.to_owned(),
            LinkStats {
                rx_packets: get("rx", "packets")?,
                rx_dropped: get("rx", "dropped")?,
                tx_packets: get("tx", "packets")?,
                tx_dropped: get("tx", "dropped")?,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_arrivals_add_delivered_and_buffer_drops_of_both_families() {
        let snmp = "Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 120 3 7 5 30 0\nUdpLite: InDatagrams\nUdpLite: 9\n";
        assert_eq!(parse_udp_arrivals(snmp), Some(150));
        let snmp6 = "Udp6InDatagrams                 \t40\nUdp6NoPorts 2\nUdp6RcvbufErrors 1\nUdpLite6InDatagrams 5\n";
        assert_eq!(parse_udp_arrivals(&format!("{snmp}{snmp6}")), Some(191));
        assert_eq!(parse_udp_arrivals("Udp: InDatagrams\nUdp: x\n"), None);
        assert_eq!(parse_udp_arrivals(""), None);
    }

    #[test]
    fn link_statistics_from_ip_json() {
        let json = br#"[{"ifindex":1,"ifname":"lo","stats64":{"rx":{"bytes":0,"packets":1,"errors":0,"dropped":2},"tx":{"bytes":0,"packets":3,"errors":0,"dropped":4}}},
            {"ifindex":5,"ifname":"ulbt1","stats64":{"rx":{"packets":10,"dropped":0},"tx":{"packets":20,"dropped":7}}}]"#;
        let links = parse_links(json).expect("parses");
        assert_eq!(
            links["lo"],
            LinkStats {
                rx_packets: 1,
                rx_dropped: 2,
                tx_packets: 3,
                tx_dropped: 4
            }
        );
        let later = LinkStats {
            tx_packets: 25,
            tx_dropped: 9,
            ..links["ulbt1"]
        };
        assert_eq!(
            later - links["ulbt1"],
            LinkStats {
                rx_packets: 0,
                rx_dropped: 0,
                tx_packets: 5,
                tx_dropped: 2
            }
        );
        assert!(parse_links(br#"[{"ifname":"x"}]"#).is_err());
        assert!(parse_links(b"nonsense").is_err());
    }
}
