//! Port device strings (`appliance.yaml`): a PCI address or a virtual device, turned into
//! EAL arguments and into the ethdev name that finds the port afterwards.

use std::fmt;
use std::str::FromStr;

/// A device string DPDK would not take; the message quotes it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {reason}")]
pub struct InvalidDevice {
    /// The device string as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A DPDK port device as configured (`appliance.yaml` `ports[].device`): a PCI address (`0000:01:00.0`, optionally followed by
/// `,devargs`) given to the EAL with `-a`, or a virtual device (`net_tap0,iface=udplb0`,
/// `net_ring0`, `net_null0`, `net_af_packet0,iface=eth1`, `net_af_xdp0,iface=eth1`,
/// `net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap`, `net_virtio_user0,path=...`) given with
/// `--vdev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A PCI device; `address` is in the full `DDDD:BB:DD.F` form that names its port.
    Pci {
        /// Domain:bus:device.function, lower case, domain included.
        address: String,
        /// Driver arguments after the first comma, if any.
        args: Option<String>,
    },
    /// A virtual device; `name` (before the first comma) names its port.
    Vdev {
        /// The vdev name, e.g. `net_tap0`: driver name plus a unique suffix.
        name: String,
        /// Driver arguments after the first comma, if any.
        args: Option<String>,
    },
}

impl Device {
    /// The ethdev name DPDK gives the port (`rte_eth_dev_get_port_by_name`).
    pub fn port_name(&self) -> &str {
        match self {
            Device::Pci { address, .. } => address,
            Device::Vdev { name, .. } => name,
        }
    }

    /// The EAL arguments that create this device: `["-a", ...]` or `["--vdev", ...]`.
    pub fn eal_args(&self) -> [String; 2] {
        match self {
            Device::Pci { .. } => ["-a".to_owned(), self.to_string()],
            Device::Vdev { .. } => ["--vdev".to_owned(), self.to_string()],
        }
    }
}

/// The EAL arguments for all `devices`, in order. With no PCI device in the list, the caller
/// should add `--no-pci` so the EAL does not probe every NIC of the machine.
pub fn eal_args_for(devices: &[Device]) -> Vec<String> {
    devices.iter().flat_map(Device::eal_args).collect()
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, args) = match self {
            Device::Pci { address, args } => (address, args),
            Device::Vdev { name, args } => (name, args),
        };
        match args {
            Some(args) => write!(f, "{head},{args}"),
            None => f.write_str(head),
        }
    }
}

impl FromStr for Device {
    type Err = InvalidDevice;

    fn from_str(s: &str) -> Result<Device, InvalidDevice> {
        let invalid = |reason: String| InvalidDevice {
            text: s.to_owned(),
            reason,
        };
        let (head, args) = match s.split_once(',') {
            Some((head, args)) => (head, Some(args)),
            None => (s, None),
        };
        for arg in args.into_iter().flat_map(|a| a.split(',')) {
            match arg.split_once('=') {
                Some((k, _)) if !k.is_empty() => {}
                _ => return Err(invalid(format!("device argument {arg:?} is not KEY=VALUE"))),
            }
        }
        let args = args.map(str::to_owned);
        if let Some(address) = parse_pci(head) {
            return Ok(Device::Pci { address, args });
        }
        let vdev = head.strip_prefix("net_").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
        if !vdev {
            return Err(invalid(
                "expected a PCI address (0000:03:00.0) or a vdev (net_tap0,iface=udplb0): \
                 net_ and a lower-case driver name with an instance number"
                    .to_owned(),
            ));
        }
        Ok(Device::Vdev {
            name: head.to_owned(),
            args,
        })
    }
}

/// `DDDD:BB:DD.F` or `BB:DD.F` (hex) → the full lower-case form, else `None`.
fn parse_pci(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (domain, bus, devfn) = match parts.as_slice() {
        [bus, devfn] => ("0000", *bus, *devfn),
        [domain, bus, devfn] => (*domain, *bus, *devfn),
        _ => return None,
    };
    let (dev, func) = devfn.split_once('.')?;
    let hex = |p: &str, width: usize| p.len() == width && p.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = hex(domain, 4)
        && hex(bus, 2)
        && hex(dev, 2)
        && func.len() == 1
        && matches!(func.as_bytes()[0], b'0'..=b'7');
    ok.then(|| format!("{domain}:{bus}:{dev}.{func}").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Device {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn pci_addresses_get_their_domain_and_the_allow_flag() {
        let d = parse("01:00.1");
        assert_eq!(d.port_name(), "0000:01:00.1");
        assert_eq!(d.eal_args(), ["-a".to_owned(), "0000:01:00.1".to_owned()]);
        let d = parse("0000:AF:1F.7,txq_inline=128");
        assert_eq!(d.port_name(), "0000:af:1f.7");
        assert_eq!(d.eal_args()[1], "0000:af:1f.7,txq_inline=128");
    }

    #[test]
    fn vdevs_keep_their_arguments_and_are_named_by_their_head() {
        let d = parse("net_tap0,iface=udplb0");
        assert_eq!(d.port_name(), "net_tap0");
        assert_eq!(
            d.eal_args(),
            ["--vdev".to_owned(), "net_tap0,iface=udplb0".to_owned()]
        );
        let d = parse("net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap");
        assert_eq!(d.port_name(), "net_pcap0");
        assert_eq!(d.to_string(), "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap");
        assert_eq!(parse("net_null1").eal_args()[1], "net_null1");
        for vdev in [
            "net_af_packet0,iface=eth1",
            "net_af_xdp0,iface=eth1",
            "net_virtio_user0,path=/dev/vhost-net",
            "net_ring0",
        ] {
            assert!(matches!(parse(vdev), Device::Vdev { .. }), "{vdev}");
        }
        assert_eq!(
            "eth0".parse::<Device>().unwrap_err().to_string(),
            "\"eth0\": expected a PCI address (0000:03:00.0) or a vdev (net_tap0,iface=udplb0): \
             net_ and a lower-case driver name with an instance number"
        );
    }

    #[test]
    fn eal_args_for_lists_every_device_in_order() {
        let devs = [parse("net_ring0"), parse("0000:00:08.0")];
        assert_eq!(
            eal_args_for(&devs),
            ["--vdev", "net_ring0", "-a", "0000:00:08.0"].map(str::to_owned)
        );
    }

    #[test]
    fn bad_device_strings_are_rejected_with_the_string_in_the_message() {
        for bad in [
            "",
            "eth0",
            "net_",
            "net_tap0,",
            "net tap0",
            "00:1:00.0",
            "01:00.9",
            "0000:01:00",
            "0000:03:00.8",
            "0000:3:00.0",
            "net_Tap0",
            "net_tap0,iface",
        ] {
            let err = bad.parse::<Device>().expect_err(bad).to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }
}
