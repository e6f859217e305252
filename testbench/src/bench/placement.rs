//! Who runs where on this 2-vCPU machine, so that the generator is never what a peer
//! competes with: the generator alone on [`GEN_CPU`]; the system under test — its
//! processes and every softirq its packets cause — on [`SUT_CPU`].
//!
//! The generator's datagrams enter the lb namespace through the client's veth. Without
//! steering, the kernel would process each one (bridge, routing, NAT or XDP, the
//! backends' receive) in the generator's own system call, on the generator's CPU. Receive
//! packet steering on the lb side of that veth queues them to [`SUT_CPU`] instead, where
//! all of that runs in softirq; whatever the peer sends on is processed there too (a veth
//! hands its frames to the CPU that sends them). The bench process itself, and with it
//! the echo servers, sinks and latency clients it starts, runs on [`GEN_CPU`]
//! (`scripts/bench-peers` starts it with `taskset -c 0`); the peers' own processes are
//! pinned to [`SUT_CPU`].

use crate::error::{Error, Result};
use crate::topology::Topology;

/// The generator's CPU (DPDK lcore 0).
pub(super) const GEN_CPU: u32 = 0;
/// The system under test's CPU.
pub(super) const SUT_CPU: u32 = 1;

/// The lb-namespace end of client 0's veth (the topology names it after the client).
pub(super) const CLIENT_PORT: &str = "c0";

/// Bridge FDB ageing, centiseconds (one hour): one-way load to backends that never send
/// must not age their MACs out of the bridge, which would then flood every frame to
/// every port (the client's too).
const BRIDGE_AGEING_CS: &str = "360000";

/// Steers the receive processing of the client's traffic to [`SUT_CPU`] (RPS on the lb
/// side of the client's veth) and keeps the bridges' MAC tables for an hour. Returns a
/// description for the report.
///
/// # Errors
/// The sysfs file or `ip` cannot be written (not root).
pub(super) fn steer(topo: &Topology) -> Result<String> {
    let lb = topo.lb_ns();
    let mask = format!("{:x}", 1u64 << SUT_CPU);
    let file = format!("/sys/class/net/{CLIENT_PORT}/queues/rx-0/rps_cpus");
    lb.run(
        "sh",
        &["-c", &format!("echo {mask} > {file}")],
        crate::exec::SHORT_TIMEOUT,
    )?;
    for bridge in [crate::topology::BRIDGE, crate::topology::BACKEND_BRIDGE] {
        if lb.has_link(bridge) {
            lb.ip(&[
                "link",
                "set",
                bridge,
                "type",
                "bridge",
                "ageing_time",
                BRIDGE_AGEING_CS,
            ])?;
        }
    }
    Ok(format!(
        "RPS on the lb side of the client's veth ({CLIENT_PORT}, rps_cpus={mask}): the \
         kernel's work on the generator's datagrams runs in softirq on CPU {SUT_CPU}"
    ))
}

/// Pins every thread of process `pid` to `cpu` (`taskset -a -p -c`).
///
/// # Errors
/// `taskset` fails (the process is gone).
pub(super) fn pin(pid: u32, cpu: u32) -> Result<()> {
    let out = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .output()
        .map_err(|e| Error::io("taskset", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::invalid(
            "taskset",
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

/// The CPUs this process may run on (`taskset -p`), for the report.
pub(super) fn own_affinity() -> String {
    std::process::Command::new("taskset")
        .args(["-c", "-p", &std::process::id().to_string()])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .rsplit(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}
