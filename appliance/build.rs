//! Builds the thin DPDK binding of `appliance::dpdk`.
//!
//! 1. `pkg-config --cflags libdpdk` gives every flag the DPDK headers need (`-include
//!    rte_config.h`, `-march=...`, the multiarch include directory); all of them go to bindgen
//!    and to the C compiler, or the headers are not found or disagree with the libraries.
//! 2. bindgen (experimental features) writes Rust declarations for the allowlisted items, C
//!    wrappers for the `static inline` functions (`wrap_static_fns`: `rte_eth_rx_burst`,
//!    `rte_pktmbuf_alloc`, ...), and evaluates the `RTE_BIT64`-based constants through clang
//!    (`clang_macro_fallback`; without it `RTE_ETH_RSS_*` and `RTE_MBUF_F_*` are silently absent).
//! 3. `cc` compiles those wrappers with `src/dpdk/shim.c` (errno, anonymous-union bit-fields).
//! 4. Every `-l` of `pkg-config --libs libdpdk` is linked as a dylib, plus the ring PMD and the
//!    vdev bus, which we call directly (`rte_eth_from_rings`, `rte_vdev_uninit`). The other
//!    drivers are plugins that the EAL loads from Debian's plugin directory.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Functions we call; everything else in the headers stays out of the binding.
const FUNCTIONS: &[&str] = &[
    // EAL and lcores
    "rte_eal_init",
    "rte_eal_cleanup",
    "rte_eal_get_runtime_dir",
    "rte_eal_process_type",
    "rte_eal_remote_launch",
    "rte_eal_wait_lcore",
    "rte_eal_mp_wait_lcore",
    "rte_eal_get_lcore_state",
    "rte_get_next_lcore",
    "rte_get_main_lcore",
    "rte_lcore_count",
    "rte_lcore_id",
    "rte_lcore_to_socket_id",
    "rte_socket_id",
    "rte_thread_register",
    "rte_thread_unregister",
    "rte_strerror",
    // mempools and mbufs
    "rte_pktmbuf_pool_create",
    "rte_mempool_free",
    "rte_mempool_avail_count",
    "rte_mempool_in_use_count",
    "rte_pktmbuf_alloc",
    "rte_pktmbuf_free",
    "rte_pktmbuf_free_bulk",
    "rte_pktmbuf_append",
    "rte_pktmbuf_prepend",
    "rte_pktmbuf_trim",
    "rte_pktmbuf_adj",
    "rte_pktmbuf_tailroom",
    "rte_pktmbuf_headroom",
    // ethdev
    "rte_eth_dev_get_port_by_name",
    "rte_eth_dev_get_name_by_port",
    "rte_eth_dev_is_valid_port",
    "rte_eth_dev_socket_id",
    "rte_eth_dev_info_get",
    "rte_eth_dev_configure",
    "rte_eth_dev_adjust_nb_rx_tx_desc",
    "rte_eth_rx_queue_setup",
    "rte_eth_tx_queue_setup",
    "rte_eth_dev_start",
    "rte_eth_dev_stop",
    "rte_eth_dev_close",
    "rte_eth_dev_set_mtu",
    "rte_eth_dev_get_mtu",
    "rte_eth_macaddr_get",
    "rte_eth_dev_default_mac_addr_set",
    "rte_eth_promiscuous_enable",
    "rte_eth_promiscuous_disable",
    "rte_eth_promiscuous_get",
    "rte_eth_link_get_nowait",
    "rte_eth_stats_get",
    "rte_eth_stats_reset",
    "rte_eth_xstats_get_names",
    "rte_eth_xstats_get",
    "rte_eth_rx_burst",
    "rte_eth_tx_burst",
    "rte_eth_tx_prepare",
    // ring-backed ports for in-process tests
    "rte_ring_create",
    "rte_ring_free",
    "rte_ring_dequeue",
    "rte_eth_from_rings",
    "rte_vdev_uninit",
    // shim.c
    "udplb_rte_errno",
    "udplb_mbuf_set_tx_offload",
    "udplb_mbuf_l2_len",
    "udplb_mbuf_l3_len",
];

/// Constants (macros and enums) we use.
const VARS: &[&str] = &[
    "RTE_ETH_RSS_IP",
    "RTE_ETH_RSS_UDP",
    "RTE_ETH_TX_OFFLOAD_IPV4_CKSUM",
    "RTE_ETH_TX_OFFLOAD_UDP_CKSUM",
    "RTE_MBUF_F_TX_IPV4",
    "RTE_MBUF_F_TX_IPV6",
    "RTE_MBUF_F_TX_IP_CKSUM",
    "RTE_MBUF_F_TX_UDP_CKSUM",
    "RTE_MBUF_DEFAULT_BUF_SIZE",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_ETH_LINK_UP",
    "RTE_ETH_LINK_FULL_DUPLEX",
    "RTE_ETH_NAME_MAX_LEN",
    "RTE_MEMPOOL_NAMESIZE",
    "RTE_MAX_LCORE",
    "RING_F_SP_ENQ",
    "RING_F_SC_DEQ",
    "RING_F_EXACT_SZ",
    "SOCKET_ID_ANY",
];

/// Types we name directly (the functions pull in what they need).
const TYPES: &[&str] = &[
    "rte_eth_conf",
    "rte_eth_dev_info",
    "rte_eth_rxmode",
    "rte_eth_txmode",
    "rte_eth_rss_conf",
    "rte_eth_rx_mq_mode",
    "rte_eth_tx_mq_mode",
    "rte_rmt_call_main_t",
];

fn pkg_config(arg: &str) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args([arg, "libdpdk"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run pkg-config (apt-get install pkg-config): {e}"));
    assert!(
        out.status.success(),
        "pkg-config {arg} libdpdk failed: {} (apt-get install libdpdk-dev)",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn main() {
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let src = manifest.join("src/dpdk");
    for file in ["wrapper.h", "shim.h", "shim.c"] {
        println!("cargo:rerun-if-changed={}", src.join(file).display());
    }
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let cflags = pkg_config("--cflags");
    let static_fns = out_dir.join("static_fns");

    let mut builder = bindgen::Builder::default()
        .header(src.join("wrapper.h").display().to_string())
        .clang_arg(format!("-I{}", src.display()))
        .clang_args(&cflags)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&static_fns)
        .clang_macro_fallback()
        .layout_tests(false)
        .derive_default(true)
        .generate_comments(false)
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    builder
        .generate()
        .expect("bindgen failed on the DPDK headers")
        .write_to_file(out_dir.join("bindings.rs"))
        .expect("cannot write bindings.rs");

    let mut cc = cc::Build::new();
    cc.file(static_fns.with_extension("c"))
        .file(src.join("shim.c"))
        .include(&src)
        .include(&manifest)
        .warnings(false);
    for flag in &cflags {
        cc.flag(flag);
    }
    cc.compile("udplb_dpdk_shim");

    for flag in pkg_config("--libs") {
        if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        } else if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        }
    }
    for lib in ["rte_net_ring", "rte_bus_vdev"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
}
