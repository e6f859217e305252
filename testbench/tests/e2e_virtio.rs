//! End-to-end over virtio: udplb on a DPDK `net_virtio_user` port, the way it runs in a VM
//! with a virtio NIC. The host side of the NIC is another DPDK process, `dpdk-testpmd`,
//! with a `net_vhost` port (vhost-user server) forwarding frames unchanged (`io`) to and
//! from a `net_tap` port bridged into the topology:
//!
//! ```text
//!  client ns ─ br0 ─ TAP ═ testpmd [net_tap0 ⇄ net_vhost0] ═ vhost.sock ═ udplb [net_virtio_user0]
//!  backends  ─┘        (io forwarding, paired ports)           (unix socket)
//! ```
//!
//! Start order: testpmd first, since its vhost port is the server and creates the socket;
//! udplb's virtio_user connects to it while probing its port and fails if it is absent.
//! Both run with `--no-huge`: since DPDK 19.02 no-huge memory is memfd-backed, so the
//! vhost side can map what virtio_user shares, and no hugepage has to be reserved.
#![allow(clippy::tests_outside_test_module)]

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use testbench::appliance::{Appliance, ApplianceOptions};
use testbench::bench::testpmd::Testpmd;
use testbench::demo::read_manifest_dir;
use testbench::{dig, exec, DigQuery, Dnsmasq, Topology};

/// Longest path a unix socket address holds (`sun_path`, including the final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// dpdk-testpmd as the vhost-user peer; on drop it is killed and its socket and DPDK
/// runtime directories are removed (also when the test panics).
struct VhostPeer {
    testpmd: Testpmd,
    socket: PathBuf,
    udplb_runtime_dir: PathBuf,
}

impl VhostPeer {
    /// Starts testpmd in the lb namespace with a vhost-user server on `socket` and a TAP
    /// named after the topology, bridges the TAP, and waits until it forwards.
    fn start(topo: &Topology, socket: &Path) -> VhostPeer {
        let sock = socket.to_string_lossy().into_owned();
        assert!(
            sock.len() <= MAX_SOCKET_PATH,
            "vhost-user socket path {sock} is longer than {MAX_SOCKET_PATH} bytes"
        );
        let vhost = format!("net_vhost0,iface={sock},client=0,queues=1");
        let tap = format!("net_tap0,iface={}", topo.tap_name());
        let testpmd = Testpmd::spawn(
            topo,
            "vhost",
            // Forwarding on lcore 0, so it does not share a CPU with udplb's worker
            // (lcore 1); the main lcore only prints statistics.
            &["--main-lcore", "1"],
            &[vhost, tap],
            &["--forward-mode=io", "--port-topology=paired"],
        )
        .expect("testpmd starts");
        let peer = VhostPeer {
            testpmd,
            socket: socket.to_owned(),
            // udplb's own (testbench::appliance::settings_yaml names it after the TAP).
            udplb_runtime_dir: Path::new("/var/run/dpdk")
                .join(format!("udplb-{}", topo.tap_name())),
        };
        exec::wait_for("the vhost-user socket", Duration::from_secs(30), || {
            Ok(socket.exists().then_some(()))
        })
        .unwrap_or_else(|e| panic!("{e}\ntestpmd log:\n{}", peer.log()));
        topo.attach_tap(topo.tap_name(), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}\ntestpmd log:\n{}", peer.log()));
        // Once both ports have started, net_tap has given the kernel side its MAC: replace
        // it, or the bridge would keep frames for it.
        peer.testpmd.wait_forwarding().expect("testpmd forwards");
        topo.detach_tap_mac(topo.tap_name())
            .expect("TAP gets its own MAC");
        peer
    }

    fn log(&self) -> String {
        self.testpmd.log()
    }
}

impl Drop for VhostPeer {
    fn drop(&mut self) {
        // Testpmd's own drop kills it and removes its runtime directory.
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir_all(&self.udplb_runtime_dir);
    }
}

#[test]
#[ignore = "needs root: network namespaces, DPDK (udplb, dpdk-testpmd)"]
fn dns_through_vip_on_a_virtio_user_port_with_a_vhost_peer() {
    let topo = Topology::builder()
        .clients(1)
        .backends(3)
        .build()
        .expect("topology builds");
    let _dns =
        Dnsmasq::start_on_backends(&topo, testbench::traffic::dns::DNS_PORT).expect("dnsmasq");
    let socket = topo.run_dir().join("vhost.sock");
    let peer = VhostPeer::start(&topo, &socket);

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/dns");
    let manifests = read_manifest_dir(&examples).expect("config/examples/dns");
    let mut opts = ApplianceOptions::new(manifests);
    opts.device = Some(format!(
        "net_virtio_user0,path={},queues=1",
        socket.display()
    ));
    let app = Appliance::start(&topo, &opts)
        .unwrap_or_else(|e| panic!("{e}\ntestpmd log:\n{}", peer.log()));
    assert!(
        app.log().contains("driver net_virtio_user"),
        "udplb's port is not virtio_user:\n{}",
        app.log()
    );

    let client = topo.client(0);
    let vips: [IpAddr; 2] = [
        topo.addressing().vip_v4.into(),
        topo.addressing().vip_v6.into(),
    ];
    let mut seen = BTreeSet::new();
    for vip in vips {
        let src: IpAddr = if vip.is_ipv4() {
            client.ipv4().into()
        } else {
            client.ipv6().into()
        };
        for i in 0..12u16 {
            let q = DigQuery::whoami(vip).source(SocketAddr::new(src, 21000 + i));
            // The first datagram towards a backend may wait for neighbor resolution.
            let answer = (0..10).find_map(|_| {
                dig(client.ns(), &q)
                    .expect("dig runs")
                    .txt()
                    .map(str::to_owned)
            });
            let answer = answer.unwrap_or_else(|| {
                panic!(
                    "no answer from {vip} via virtio\nudplb log:\n{}\ntestpmd log:\n{}",
                    app.log(),
                    peer.log()
                )
            });
            seen.insert(answer);
        }
    }
    assert!(
        seen.len() >= 2,
        "answers should spread over the backends, got {seen:?}"
    );
    // Every query and answer crossed testpmd. It prints its counters once a second, so
    // wait (bounded) for a block printed after the last answer.
    exec::wait_for(
        "testpmd to count 24 forwarded frames",
        Duration::from_secs(10),
        || Ok((peer.testpmd.counter("TX-packets:").unwrap_or(0) >= 24).then_some(())),
    )
    .unwrap_or_else(|e| panic!("{e}\ntestpmd log:\n{}", peer.log()));

    let (status, log) = app.stop().expect("udplb stops");
    assert!(status.success(), "udplb exit {status:?}:\n{log}");
    assert!(log.contains("0 mbufs outstanding"), "{log}");
    drop(peer);
    assert!(!socket.exists(), "vhost-user socket left behind");
}
