//! The rules that types alone cannot express (unique names, routes through known ports, a
//! prime Maglev size, ...), each problem reported with its field path, e.g.
//! `routes[0].port: no port named "wan"`. Every problem is listed, not just the first.

use std::fmt;
use std::net::IpAddr;

use pipelines::maglev::{is_prime, next_prime};
use pipelines::spec::{check_idle_timeout, NatMode};

use super::{Settings, MAX_PORTS, MAX_WORKERS};

/// One semantic problem: the field path and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `routes[0].via`.
    pub field: String,
    /// What is wrong, e.g. `198.19.0.1 is not inside any address prefix of port "lan"`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Largest accepted values, so a typo cannot ask for terabytes of preallocated memory.
const MAX_FLOW_CAPACITY: u32 = 1 << 28;
const MAX_TABLE_SIZE: u32 = 1 << 24;
/// The worker's burst arrays hold [`crate::worker::BURST`] frames.
pub(super) const MAX_BURST: u16 = 32;
const _: () = assert!(MAX_BURST as usize == crate::worker::BURST);
const MAX_QUEUE_DEPTH: u32 = 1 << 20;
const MAX_IDLE_BACKOFF_US: u32 = 1_000_000;
/// Smallest IPv4 MTU (RFC 791) and IPv6 MTU (RFC 8200).
const MIN_MTU_V4: u16 = 68;
const MIN_MTU_V6: u16 = 1280;
const MAX_MTU: u16 = 9702;

/// EAL options derived from `workers` and `ports`, refused in `eal_args`.
const RESERVED_EAL_ARGS: &[(&str, &str)] = &[
    ("-l", "workers.lcores"),
    ("--lcores", "workers.lcores"),
    ("-c", "workers.lcores"),
    ("--main-lcore", "workers.main_lcore"),
    ("-a", "ports[].device"),
    ("--allow", "ports[].device"),
    ("-b", "ports[].device"),
    ("--block", "ports[].device"),
    ("--vdev", "ports[].device"),
];

impl Settings {
    /// Checks the rules that types alone cannot express.
    ///
    /// # Errors
    /// Every violated rule, each with its field path.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Validator::default();
        self.validate_ports(&mut v);
        self.validate_addresses(&mut v);
        self.validate_routes(&mut v);
        self.validate_workers(&mut v);
        self.validate_capacities(&mut v);
        self.validate_management(&mut v);
        if let Some(announce) = &self.announce {
            announce.validate(&mut v);
        }
        self.drain.validate(&mut v);
        if v.errors.is_empty() {
            Ok(())
        } else {
            Err(v.errors)
        }
    }

    fn validate_ports(&self, v: &mut Validator) {
        if self.ports.is_empty() {
            v.fail("ports", "at least one port is required");
        }
        if self.ports.len() > usize::from(MAX_PORTS) {
            v.fail("ports", format!("at most {MAX_PORTS} ports"));
        }
        for (i, port) in self.ports.iter().enumerate() {
            let at = format!("ports[{i}]");
            if port.name.is_empty()
                || !port
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                v.fail(
                    format!("{at}.name"),
                    format!(
                        "{:?}: use letters, digits, '_', '-' or '.' (it is a metrics label)",
                        port.name
                    ),
                );
            }
            if let Some(j) = self.ports[..i].iter().position(|p| p.name == port.name) {
                v.fail(
                    format!("{at}.name"),
                    format!("{:?} is already the name of ports[{j}]", port.name),
                );
            }
            if let Some(j) = self.ports[..i]
                .iter()
                .position(|p| p.device.port_name() == port.device.port_name())
            {
                v.fail(
                    format!("{at}.device"),
                    format!(
                        "{:?} is already the device of ports[{j}]",
                        port.device.port_name()
                    ),
                );
            }
            if let Some(mac) = port.mac {
                if !mac.is_unicast() {
                    v.fail(
                        format!("{at}.mac"),
                        format!("{mac} is not a unicast address"),
                    );
                }
            }
            let needs_v6 = port.addresses.iter().any(|a| a.addr().is_ipv6());
            let min = if needs_v6 { MIN_MTU_V6 } else { MIN_MTU_V4 };
            if !(min..=MAX_MTU).contains(&port.mtu) {
                v.fail(
                    format!("{at}.mtu"),
                    format!(
                        "{} is out of range ({min} to {MAX_MTU}{})",
                        port.mtu,
                        if needs_v6 {
                            "; the port has IPv6 addresses"
                        } else {
                            ""
                        }
                    ),
                );
            }
        }
    }

    fn validate_addresses(&self, v: &mut Validator) {
        let mut own: Vec<(IpAddr, String)> = Vec::new();
        for (i, port) in self.ports.iter().enumerate() {
            for (j, prefix) in port.addresses.iter().enumerate() {
                let at = format!("ports[{i}].addresses[{j}]");
                v.unicast(&at, prefix.addr());
                if let Some((_, first)) = own.iter().find(|(a, _)| *a == prefix.addr()) {
                    v.fail(
                        at.clone(),
                        format!("{} is already assigned at {first}", prefix.addr()),
                    );
                }
                own.push((prefix.addr(), at));
            }
        }
        for (i, vip) in self.default_vips.iter().enumerate() {
            let at = format!("default_vips[{i}]");
            v.unicast(&at, *vip);
            if let Some((_, first)) = own.iter().find(|(a, _)| a == vip) {
                v.fail(at.clone(), format!("{vip} is already assigned at {first}"));
            }
            own.push((*vip, at));
        }
        for (field, ip) in self.snat_addresses() {
            let errors = v.errors.len();
            v.unicast(field, ip);
            if v.errors.len() == errors && self.snat_reach(ip).is_none() {
                v.fail(
                    field,
                    format!(
                        "{ip} is inside no port's address prefix and no route covers it, so \
                         backends' replies to it cannot reach the appliance: put it inside \
                         the prefix of the port facing the backends (that port then answers \
                         ARP/NDP for it), or add a route covering it and have the network \
                         route it to this appliance"
                    ),
                );
            }
        }
        if self.nat_mode == NatMode::FullNat {
            let v4 = self.default_vips.iter().any(IpAddr::is_ipv4);
            let v6 = self.default_vips.iter().any(IpAddr::is_ipv6);
            if v4 && self.snat.ipv4.is_none() {
                v.fail(
                    "snat.ipv4",
                    "required: nat_mode is fullnat and default_vips has an IPv4 address",
                );
            }
            if v6 && self.snat.ipv6.is_none() {
                v.fail(
                    "snat.ipv6",
                    "required: nat_mode is fullnat and default_vips has an IPv6 address",
                );
            }
        }
        if self.snat.ports.first == 0 {
            v.fail("snat.ports", "port 0 cannot be a source port");
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            v.unicast(&format!("neighbors[{i}].ip"), n.ip);
            if !n.mac.is_unicast() {
                v.fail(
                    format!("neighbors[{i}].mac"),
                    format!("{} is not a unicast address", n.mac),
                );
            }
            if let Some(j) = self.neighbors[..i].iter().position(|m| m.ip == n.ip) {
                v.fail(
                    format!("neighbors[{i}].ip"),
                    format!("{} is already listed at neighbors[{j}]", n.ip),
                );
            }
        }
    }

    fn validate_routes(&self, v: &mut Validator) {
        for (i, route) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            if route.prefix.addr() != route.prefix.network() {
                v.fail(
                    format!("{at}.prefix"),
                    format!(
                        "{}: host bits are set (did you mean {}?)",
                        route.prefix,
                        route.prefix.trunc()
                    ),
                );
            }
            if let Some(j) = self.routes[..i]
                .iter()
                .position(|r| r.prefix == route.prefix)
            {
                v.fail(
                    format!("{at}.prefix"),
                    format!("{} is already routed by routes[{j}]", route.prefix),
                );
            }
            if route.via.is_ipv4() != route.prefix.addr().is_ipv4() {
                v.fail(
                    format!("{at}.via"),
                    format!(
                        "{} is not of the same IP family as prefix {}",
                        route.via, route.prefix
                    ),
                );
                continue;
            }
            v.unicast(&format!("{at}.via"), route.via);
            match self.port(&route.port) {
                None => v.fail(
                    format!("{at}.port"),
                    format!("no port named {:?}", route.port),
                ),
                Some((_, port)) => {
                    if !port.addresses.iter().any(|a| a.contains(&route.via)) {
                        v.fail(
                            format!("{at}.via"),
                            format!(
                                "{} is not inside any address prefix of port {:?}",
                                route.via, route.port
                            ),
                        );
                    }
                }
            }
        }
    }

    fn validate_workers(&self, v: &mut Validator) {
        let w = &self.workers;
        if w.lcores.is_empty() {
            v.fail("workers.lcores", "at least one worker lcore is required");
        }
        if w.lcores.len() > usize::from(MAX_WORKERS) {
            v.fail(
                "workers.lcores",
                format!("at most {MAX_WORKERS} worker lcores"),
            );
        }
        for (i, lcore) in w.lcores.iter().enumerate() {
            if w.lcores[..i].contains(lcore) {
                v.fail(
                    format!("workers.lcores[{i}]"),
                    format!("lcore {lcore} is listed twice"),
                );
            }
            if *lcore == w.main_lcore {
                v.fail(
                    format!("workers.lcores[{i}]"),
                    format!("lcore {lcore} is the main lcore (workers.main_lcore)"),
                );
            }
        }
        if !(1..=MAX_BURST).contains(&w.burst) {
            v.fail(
                "workers.burst",
                format!("{} is out of range (1 to {MAX_BURST})", w.burst),
            );
        }
        if w.idle_backoff_us > MAX_IDLE_BACKOFF_US {
            v.fail(
                "workers.idle_backoff_us",
                format!(
                    "{} is out of range (0 to {MAX_IDLE_BACKOFF_US})",
                    w.idle_backoff_us
                ),
            );
        }
        // An idle worker sleeps `idle_backoff_us` between rounds: its heartbeat must not
        // look stale because of that (an out-of-range backoff is reported above alone).
        let backoff = std::time::Duration::from_micros(u64::from(
            if w.idle_backoff_us > MAX_IDLE_BACKOFF_US {
                0
            } else {
                w.idle_backoff_us
            },
        ));
        super::announce::check_range(
            v,
            "workers.heartbeat_timeout",
            w.heartbeat_timeout.0,
            std::time::Duration::from_millis(50).max(backoff * 2),
            std::time::Duration::from_secs(60),
        );
        for (i, arg) in self.eal_args.iter().enumerate() {
            let flag = arg.split('=').next().unwrap_or(arg);
            if let Some((_, from)) = RESERVED_EAL_ARGS.iter().find(|(f, _)| *f == flag) {
                v.fail(
                    format!("eal_args[{i}]"),
                    format!("{arg:?} is derived from {from}; remove it"),
                );
            }
        }
    }

    fn validate_capacities(&self, v: &mut Validator) {
        let f = &self.flows;
        if !(1..=MAX_FLOW_CAPACITY).contains(&f.capacity) {
            v.fail(
                "flows.capacity",
                format!("{} is out of range (1 to {MAX_FLOW_CAPACITY})", f.capacity),
            );
        }
        if let Err(message) = check_idle_timeout(f.idle_timeout.0) {
            v.fail("flows.idle_timeout", message);
        }
        let size = self.maglev.table_size;
        if size > MAX_TABLE_SIZE {
            v.fail(
                "maglev.table_size",
                format!("{size} is too large (at most {MAX_TABLE_SIZE})"),
            );
        } else if !is_prime(size) {
            v.fail(
                "maglev.table_size",
                format!(
                    "{size} is not prime (the next prime is {})",
                    next_prime(size)
                ),
            );
        }
        let name = &self.controller_name;
        let valid_controller = name
            .split_once('/')
            .is_some_and(|(domain, path)| !domain.is_empty() && !path.is_empty())
            && name.len() <= 253
            && name.bytes().all(|b| b.is_ascii_graphic());
        if !valid_controller {
            v.fail(
                "controller_name",
                format!("{name:?}: expected DOMAIN/PATH, e.g. \"udplb.io/appliance\""),
            );
        }
        let depth = self.slow_path.queue_depth;
        if !(1..=MAX_QUEUE_DEPTH).contains(&depth) {
            v.fail(
                "slow_path.queue_depth",
                format!("{depth} is out of range (1 to {MAX_QUEUE_DEPTH})"),
            );
        }
    }
}

/// Collects field errors.
#[derive(Default)]
pub(super) struct Validator {
    pub(super) errors: Vec<FieldError>,
}

impl Validator {
    pub(super) fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Own, VIP, SNAT, neighbor and next-hop addresses must be unicast host addresses.
    fn unicast(&mut self, field: &str, ip: IpAddr) {
        let bad = if ip.is_unspecified() {
            Some("the unspecified address")
        } else if ip.is_multicast() {
            Some("a multicast address")
        } else if ip.is_loopback() {
            Some("a loopback address")
        } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
            Some("the broadcast address")
        } else {
            None
        };
        if let Some(what) = bad {
            self.fail(field, format!("{ip} is {what}"));
        }
    }
}
