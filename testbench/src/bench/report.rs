//! `RESULTS.md` and the plots, drawn from [`Results`]: `results.json` is saved first, then
//! `plot.py` (next to it, with matplotlib) draws the PNGs and the markdown is written.
//! `--render-only` redoes the second part from a saved `results.json`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::ladder::{CASES, MANY_FLOWS, MANY_SOURCES, NEW_FLOWS};
use super::peers::{Peer, IDLE_TIMEOUT_S, NOFILE, UDPLB_FLOW_CAPACITY, UDPLB_IDLE_BACKOFF_US};
use super::results::{Ladder, Results, RrReport, Step};
use super::{DNS_RR_RATE, ECHO_PORT, EQUAL_LOAD_PPS, RR_RATE};
use crate::error::{Error, Result};
use crate::exec;

/// Writes `out/results.json`.
///
/// # Errors
/// The directory or the file cannot be written.
pub fn save(out: &Path, r: &Results) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io("create output dir", e))?;
    let json =
        serde_json::to_string_pretty(r).map_err(|e| Error::invalid("results", e.to_string()))?;
    std::fs::write(out.join("results.json"), json).map_err(|e| Error::io("write results.json", e))
}

/// Reads `out/results.json` of an earlier run.
///
/// # Errors
/// The file cannot be read or parsed.
pub fn load(out: &Path) -> Result<Results> {
    let path = out.join("results.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| Error::Parse {
        tool: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// Draws the plots from `out/results.json` (saved beforehand) with the `plot.py` found
/// in `plot_dir` (or in `out`), and writes `out/RESULTS.md` for `r`. A plot that cannot
/// be drawn is a note in the report, not an error.
///
/// # Errors
/// RESULTS.md cannot be written.
pub fn render(out: &Path, r: &Results) -> Result<()> {
    let mut notes = Vec::new();
    let script = [
        out.join("plot.py"),
        Path::new("docs/benchmarks/plot.py").to_owned(),
    ]
    .into_iter()
    .find(|p| p.exists());
    match script {
        None => notes.push("plots not drawn: no plot.py next to the results".into()),
        Some(script) => {
            if let Err(e) = exec::run(
                // Debian's interpreter, which has python3-matplotlib (a pyenv shim may
                // come first).
                std::process::Command::new(if Path::new("/usr/bin/python3").exists() {
                    "/usr/bin/python3"
                } else {
                    "python3"
                })
                .arg(script)
                .arg(out.join("results.json"))
                .arg(out),
                None,
                Duration::from_secs(120),
            ) {
                notes.push(format!("plots not drawn: {e}"));
            }
        }
    }
    std::fs::write(out.join("RESULTS.md"), markdown(r, &notes))
        .map_err(|e| Error::io("write RESULTS.md", e))?;
    eprintln!("wrote {}", out.join("RESULTS.md").display());
    Ok(())
}

/// The throughput cases in table order.
fn case_names() -> Vec<&'static str> {
    CASES
        .iter()
        .map(|c| c.name)
        .chain(std::iter::once(NEW_FLOWS.name))
        .collect()
}

/// A search's maximum, `(gen)` when the generator bound it, or that no step passed.
fn ladder_cell(l: &Ladder) -> String {
    match l.max_pps {
        Some(max) => format!(
            "{}{}",
            fmt_k(Some(max)),
            if l.generator_bound { " (gen)" } else { "" }
        ),
        None => match l.steps.last() {
            Some(last) => format!(
                "< {} ({:.1} % lost)",
                fmt_k(last.offered_pps.or(Some(last.sent_pps))),
                last.loss * 100.0
            ),
            None => "—".into(),
        },
    }
}

fn fmt_k(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{:.0}k", v / 1000.0))
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".into(), |v| format!("{v:.digits$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".into(),
    }
}

/// Per-CPU busy (softirq) shares of a step, e.g. `cpu0 99 % (si 3 %), cpu1 100 % (si 71 %)`.
fn cpu_cell(s: &Step) -> String {
    s.cpu_busy
        .iter()
        .zip(&s.cpu_softirq)
        .enumerate()
        .map(|(i, (b, si))| format!("cpu{i} {:.0} % (si {:.0} %)", b * 100.0, si * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The udplb row the ratios use: the kernel-attached port that forwarded more over all
/// throughput cases (`net_af_xdp` on a tie or without figures).
pub fn best_udplb(r: &Results) -> Peer {
    let total = |p: Peer| -> f64 {
        r.peers.get(&p).map_or(0.0, |x| {
            x.ladders.values().filter_map(|l| l.max_pps).sum::<f64>()
        })
    };
    if total(Peer::UdplbAfPacket) > total(Peer::UdplbAfXdp) {
        Peer::UdplbAfPacket
    } else {
        Peer::UdplbAfXdp
    }
}

/// The markdown report: the figures of `r`, the fixed prose, and `notes` on the run.
pub fn markdown(r: &Results, notes: &[String]) -> String {
    let mut s = String::new();
    let echo_peers = [
        Peer::Direct,
        Peer::UdplbAfXdp,
        Peer::UdplbAfPacket,
        Peer::UdplbTap,
        Peer::Nftables,
        Peer::Nginx,
    ];
    let cases = case_names();
    let ladder_of = |p: Peer, c: &str| r.peers.get(&p).and_then(|x| x.ladders.get(c));
    let max_of = |p: Peer, c: &str| ladder_of(p, c).and_then(|l| l.max_pps);
    let udplb = best_udplb(r);
    header(&mut s, r);
    generator_section(&mut s, r, &cases, &echo_peers);

    let _ = writeln!(s, "## Absolute figures\n");
    let _ = writeln!(s, "Highest rate with < 0.1 % loss, datagrams per second delivered to the backends' UDP layer (`(gen)`: the generator's maximum went through without loss — the peer was not saturated); new flows: new flows per second, one datagram each. CPU: machine CPU seconds (all CPUs: user + system + irq + softirq, from `/proc/stat`; the generator's own CPU time subtracted) per million delivered datagrams.\n");
    let _ = write!(s, "| peer |");
    for c in &cases {
        let _ = write!(s, " {c} |");
    }
    let _ = writeln!(
        s,
        " CPU s/Mpkt at max (64B 1 flow) | CPU s/Mpkt at {}k pps (64B 1 flow) | RSS growth, {}k flows |",
        EQUAL_LOAD_PPS / 1000.0,
        MANY_FLOWS / 1000
    );
    let _ = writeln!(s, "|---|{}---|---|---|", "---|".repeat(cases.len()));
    for p in echo_peers {
        let _ = write!(s, "| {} |", p.label());
        for c in &cases {
            let cell = ladder_of(p, c).map_or_else(|| "failed".into(), ladder_cell);
            let _ = write!(s, " {cell} |");
        }
        let x = r.peers.get(&p);
        let cpu_max = ladder_of(p, cases[0]).and_then(|l| l.cpu_s_per_mpkt);
        let cpu_eq = x
            .and_then(|x| x.equal_load.as_ref())
            .filter(|st| st.loss < super::ladder::MAX_LOSS)
            .and_then(Step::cpu_s_per_mpkt);
        let rss = x
            .and_then(|x| x.rss_growth_kib)
            .map_or("n/a (kernel)".into(), |k| {
                format!("{:.1} MiB", k as f64 / 1024.0)
            });
        let _ = writeln!(
            s,
            " {} | {} | {rss} |",
            fmt_opt(cpu_max, 2),
            fmt_opt(cpu_eq, 2)
        );
    }
    delivery_section(&mut s, r, &echo_peers, &cases);
    latency_section(&mut s, r);
    ratio_section(&mut s, r, udplb, &cases, &max_of);
    saturation_section(&mut s, r, &echo_peers, &cases);
    let _ = writeln!(
        s,
        "## Plots\n\n![highest rate with < 0.1 % loss](max_pps.png)\n\n![delivered vs sent, every step](throughput.png)\n\n![latency CDF](latency_cdf.png)\n"
    );
    let _ = writeln!(s, "## Notes\n");
    let _ = writeln!(s, "{}", NOTES.trim());
    for (peer, x) in &r.peers {
        for n in &x.notes {
            let _ = writeln!(s, "- {} in this run: {n}", peer.label());
        }
    }
    for n in notes.iter().chain(r.failures.iter()) {
        let _ = writeln!(s, "- run note: {n}");
    }
    s
}

fn header(s: &mut String, r: &Results) {
    let _ = writeln!(s, "# udplb side by side with its peers\n");
    let _ = writeln!(
        s,
        "Generated by `{}` (driver: `testbench bench-peers`, testbench/src/bench/) in one run of {:.0} s{}. Do not edit by hand; rerun the script.\n",
        if r.command.is_empty() { "scripts/bench-peers" } else { &r.command },
        r.duration_s,
        if r.quick { " — a `--quick` smoke run: short steps, 64-byte cases only" } else { "" }
    );
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(
        s,
        "- {} × {} vCPUs, kernel {}; run started {}\n- load average before: {}; after: {}\n- Other jobs (builds and tests of other engineers) may share the machine: the load averages above say how busy it was. Every figure is from one run; peers are measured minutes apart.\n",
        r.cpu, r.cpus, r.kernel, r.started, r.loadavg, r.loadavg_end
    );
    let _ = writeln!(s, "## Setup\n");
    let _ = writeln!(s, "Topology: the testbench's namespaces: one client (198.19.0.100) → lb namespace (bridge; the peer) → three backends 198.18.1.11–13; VIP 198.18.0.10. Every peer gets a fresh topology.\n");
    let _ = writeln!(
        s,
        "CPU placement (2 vCPUs: one for the generator, one for the system under test):\n"
    );
    for p in &r.placement {
        let _ = writeln!(s, "- {p}");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "| peer | how it runs in the lb namespace |\n|---|---|");
    let _ = writeln!(s, "| direct (no LB) | kernel router, the client sends straight to the 3 backends: the path's own ceiling |");
    let _ = writeln!(s, "| udplb (net_af_xdp) | `udplb run`, one port `net_af_xdp0,iface=<veth>,start_queue=0,queue_count=1` on a veth whose peer is on the bridge; 1 worker lcore, client-IP preservation (destination rewrite only, as nftables DNAT), flow table {UDPLB_FLOW_CAPACITY}, idle {IDLE_TIMEOUT_S} s, `idle_backoff_us: {UDPLB_IDLE_BACKOFF_US}`, `--no-huge` |");
    let _ = writeln!(
        s,
        "| udplb (net_af_packet) | the same on `net_af_packet0,iface=<veth>,qpairs=1` |"
    );
    let _ = writeln!(
        s,
        "| udplb (net_tap) | the same on `net_tap` (a TAP the testbench bridges), for reference |"
    );
    let _ = writeln!(s, "| nftables DNAT | kernel router + `dnat to jhash ip saddr . udp sport mod 3 map {{…}}` in prerouting, conntrack UDP timeout {IDLE_TIMEOUT_S} s |");
    let _ = writeln!(s, "| nginx stream | nginx 1.22, 1 worker pinned to the SUT CPU, `listen … udp reuseport`, `hash $remote_addr$remote_port consistent`, `proxy_responses 1`, `proxy_timeout {IDLE_TIMEOUT_S}s`, `max_fails=0`, {NOFILE} open files |");
    let _ = writeln!(s, "| dnsdist | dnsdist 1.7 defaults (leastOutstanding, no packet cache) over the 3 dnsmasqs, pinned to the SUT CPU (DNS workload only) |\n");
    let _ = writeln!(s, "Load: `testbench udpgen`, a DPDK generator on a kernel-attached port of the client's veth: every datagram built in an mbuf from a template (valid IPv4 and UDP checksums), no socket. 1 flow = one 5-tuple (198.19.0.100:10000 → VIP:{ECHO_PORT}); {MANY_FLOWS} flows = {MANY_SOURCES} source addresses (198.19.64.0–255) × 512 source ports, consecutive datagrams from different flows; new flows = every datagram a 5-tuple never sent before. Frame sizes are on the wire (64 B = 60 B + FCS: 18 B of UDP payload; 512 B: 466 B). Backends: sockets on UDP {ECHO_PORT} that are never read (`testbench hold`), so the backends spend nothing beyond the kernel's delivery, the same for every peer.\n");
    let _ = writeln!(s, "Method: per case, an unpaced step first; if it loses ≥ 0.1 %, paced steps from 60 % of what the generator sent downwards (× 0.6) until one passes, then bisection between the highest passing and the lowest failing rate until they are within 10 % (at most 8 paced steps; what an overloaded peer delivered is no bound: in receive livelock it delivers a fraction of what it sustains below its capacity). Steps last ~1 s (new flows: 0.5 s). Delivered = datagrams that reached the backends' UDP layer (`InDatagrams + RcvbufErrors` of `/proc/net/snmp`), cross-checked against the frames their links received (`ip -s link`). The many flows are opened once (one pass at 100k pps) before their cases; every peer's flow state expires ({IDLE_TIMEOUT_S} s) before the new-flow case.\n");
}

fn generator_section(s: &mut String, r: &Results, cases: &[&str], peers: &[Peer]) {
    let _ = writeln!(s, "## The generator alone\n");
    let _ = writeln!(s, "`testbench udpgen` ({}) unpaced into an nftables `netdev` ingress chain that drops everything on the lb side of the client's veth (processed on the SUT CPU). Goal: at least twice what the best peer forwards in the same case.\n", if r.generator.driver.is_empty() { "—" } else { &r.generator.driver });
    let _ = writeln!(s, "| case | generator sent pps | taken by the lb side | best peer's max | generator / best peer |\n|---|---|---|---|---|");
    for c in cases.iter().filter(|c| **c != NEW_FLOWS.name) {
        let Some(g) = r.generator.cases.get(*c) else {
            let _ = writeln!(s, "| {c} | — | — | — | — |");
            continue;
        };
        let taken = g.sent.saturating_sub(g.ingress_dropped) as f64 / g.elapsed_s.max(1e-6);
        let best = peers
            .iter()
            .filter(|p| **p != Peer::Direct)
            .filter_map(|p| r.peers.get(p)?.ladders.get(*c)?.max_pps.map(|m| (m, *p)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let _ = writeln!(
            s,
            "| {c} | {} | {} | {} | {} |",
            fmt_k(Some(g.sent_pps)),
            fmt_k(Some(taken)),
            best.map_or("—".into(), |(m, p)| format!(
                "{} ({})",
                fmt_k(Some(m)),
                p.label()
            )),
            ratio(Some(taken), best.map(|b| b.0))
        );
    }
    let _ = writeln!(s);
}

fn delivery_section(s: &mut String, r: &Results, peers: &[Peer], cases: &[&str]) {
    let _ = writeln!(s, "\nCounted twice: at each peer's best step, datagrams sent by the generator, frames received by the backends' links, datagrams that reached their UDP layer:\n");
    let _ = writeln!(
        s,
        "| peer | case | sent | at the links | at UDP | loss |\n|---|---|---|---|---|---|"
    );
    for p in peers {
        for c in cases {
            let Some(best) = r
                .peers
                .get(p)
                .and_then(|x| x.ladders.get(*c))
                .and_then(Ladder::best)
            else {
                continue;
            };
            let _ = writeln!(
                s,
                "| {} | {c} | {} | {} | {} | {:.3} % |",
                p.label(),
                best.sent,
                best.link_delivered,
                best.delivered,
                best.loss * 100.0
            );
        }
    }
    let _ = writeln!(s);
}

fn latency_section(s: &mut String, r: &Results) {
    let _ = writeln!(s, "Request/response round trips (closed loop: `testbench loadgen`, 64 flows, 2 outstanding; 64 B echo at {RR_RATE:.0} req/s; DNS `whoami.test TXT` at {DNS_RR_RATE:.0} q/s; DNS max = 8 outstanding, as fast as answers come). The backends run echo servers (or dnsmasq) instead of the sinks:\n");
    let _ = writeln!(s, "| peer | echo p50 µs | p99 | p99.9 | answered | DNS p50 µs | p99 | p99.9 | DNS max q/s (answered %) |\n|---|---|---|---|---|---|---|---|---|");
    for p in [
        Peer::Direct,
        Peer::UdplbAfXdp,
        Peer::UdplbAfPacket,
        Peer::UdplbTap,
        Peer::Nftables,
        Peer::Nginx,
        Peer::Dnsdist,
    ] {
        let x = r.peers.get(&p);
        let lat = |rr: Option<&RrReport>| match rr {
            Some(l) => format!(
                "{:.0} | {:.0} | {:.0} | {:.2} %",
                l.p50_us,
                l.p99_us,
                l.p999_us,
                100.0 * l.received as f64 / l.sent.max(1) as f64
            ),
            None => "— | — | — | —".into(),
        };
        let dns = match x.and_then(|x| x.dns_rr.as_ref()) {
            Some(l) => format!("{:.0} | {:.0} | {:.0}", l.p50_us, l.p99_us, l.p999_us),
            None => "— | — | —".into(),
        };
        let dmax = match x.and_then(|x| x.dns_max.as_ref()) {
            Some(m) => format!(
                "{:.0} ({:.2} %)",
                m.received as f64 / m.elapsed_s.max(1e-6),
                100.0 * m.received as f64 / m.sent.max(1) as f64
            ),
            None => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {dns} | {dmax} |",
            p.label(),
            lat(x.and_then(|x| x.echo_rr.as_ref()))
        );
    }
    let _ = writeln!(s);
}

fn ratio_section(
    s: &mut String,
    r: &Results,
    udplb: Peer,
    cases: &[&str],
    max_of: &dyn Fn(Peer, &str) -> Option<f64>,
) {
    let _ = writeln!(s, "## Ratios udplb / peer (same run)\n");
    let _ = writeln!(s, "udplb = **{}**, the faster of its two kernel-attached ports in this run (by the sum of its throughput rows; both are in the tables above). Throughput: > 1 means udplb forwards more; goal ≥ 1.5× nftables on every row. Latency: < 1 means udplb is faster. CPU: < 1 means udplb spends less per datagram; goal < 1 against every peer.\n", udplb.label());
    let _ = writeln!(s, "| measure | vs direct (no LB) | vs nftables | vs nginx | vs dnsdist | vs udplb (net_tap) | goal |\n|---|---|---|---|---|---|---|");
    for c in cases {
        let u = max_of(udplb, c);
        let nft = max_of(Peer::Nftables, c);
        let goal = match (u, nft) {
            (Some(u), Some(n)) if n > 0.0 => {
                let x = u / n;
                if x >= 1.5 {
                    format!("met ({x:.2}× ≥ 1.5×)")
                } else {
                    format!("missed by {:.0} %", (1.0 - x / 1.5) * 100.0)
                }
            }
            _ => "—".into(),
        };
        let _ = writeln!(
            s,
            "| max {c} | {} | {} | {} | — | {} | {goal} |",
            ratio(u, max_of(Peer::Direct, c)),
            ratio(u, max_of(Peer::Nftables, c)),
            ratio(u, max_of(Peer::Nginx, c)),
            ratio(u, max_of(Peer::UdplbTap, c)),
        );
    }
    let cpu = |p: Peer, equal: bool| -> Option<f64> {
        let x = r.peers.get(&p)?;
        if equal {
            x.equal_load
                .as_ref()
                .filter(|st| st.loss < super::ladder::MAX_LOSS)
                .and_then(Step::cpu_s_per_mpkt)
        } else {
            x.ladders.get(cases[0])?.cpu_s_per_mpkt
        }
    };
    for (label, equal) in [
        ("CPU s/Mpkt at max (64B 1 flow)", false),
        ("CPU s/Mpkt at 100k pps (64B 1 flow)", true),
    ] {
        let u = cpu(udplb, equal);
        let others = [Peer::Nftables, Peer::Nginx].map(|p| cpu(p, equal));
        let goal = if u.is_some() && others.iter().all(|o| o.is_some_and(|o| u < Some(o))) {
            "met".to_owned()
        } else {
            let worst = others
                .iter()
                .flatten()
                .map(|o| u.map_or(f64::NAN, |u| u / o))
                .fold(0.0f64, f64::max);
            format!("missed ({worst:.2}× the cheapest)")
        };
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {} | — | {} | {goal} |",
            ratio(u, cpu(Peer::Direct, equal)),
            ratio(u, others[0]),
            ratio(u, others[1]),
            ratio(u, cpu(Peer::UdplbTap, equal)),
        );
    }
    let rr_of = |p: Peer, dns: bool, f: fn(&RrReport) -> f64| {
        r.peers
            .get(&p)
            .and_then(|x| {
                if dns {
                    x.dns_rr.as_ref()
                } else {
                    x.echo_rr.as_ref()
                }
            })
            .map(f)
    };
    for (name, f) in [
        ("p50", (|l: &RrReport| l.p50_us) as fn(&RrReport) -> f64),
        ("p99", |l: &RrReport| l.p99_us),
        ("p99.9", |l: &RrReport| l.p999_us),
    ] {
        let u = rr_of(udplb, false, f);
        let _ = writeln!(
            s,
            "| echo latency {name} | {} | {} | {} | — | {} | |",
            ratio(u, rr_of(Peer::Direct, false, f)),
            ratio(u, rr_of(Peer::Nftables, false, f)),
            ratio(u, rr_of(Peer::Nginx, false, f)),
            ratio(u, rr_of(Peer::UdplbTap, false, f)),
        );
        let ud = rr_of(Peer::UdplbAfXdp, true, f);
        let _ = writeln!(
            s,
            "| DNS latency {name} (udplb on net_af_xdp) | {} | — | — | {} | — | |",
            ratio(ud, rr_of(Peer::Direct, true, f)),
            ratio(ud, rr_of(Peer::Dnsdist, true, f))
        );
    }
    let _ = writeln!(s);
}

fn saturation_section(s: &mut String, r: &Results, peers: &[Peer], cases: &[&str]) {
    let _ = writeln!(s, "## What saturated\n");
    let _ = writeln!(s, "CPU shares during each peer's unpaced step (CPU 0: the generator; CPU 1: the system under test and its softirq work). A peer is saturated when CPU 1 is near 100 % and it loses datagrams; the generator, when CPU 0 is and nothing is lost.\n");
    let _ = writeln!(s, "| peer | case | sent pps | delivered pps | loss | dropped entering the lb side | CPUs |\n|---|---|---|---|---|---|---|");
    for p in peers {
        for c in cases {
            let Some(u) = r
                .peers
                .get(p)
                .and_then(|x| x.ladders.get(*c))
                .and_then(Ladder::unpaced)
            else {
                continue;
            };
            let _ = writeln!(
                s,
                "| {} | {c} | {} | {} | {:.1} % | {} | {} |",
                p.label(),
                fmt_k(Some(u.sent_pps)),
                fmt_k(Some(u.delivered_pps)),
                u.loss * 100.0,
                u.ingress_dropped,
                cpu_cell(u)
            );
        }
    }
    let _ = writeln!(s);
}

/// Fixed remarks on what the figures mean; RESULTS.md carries them verbatim.
const NOTES: &str = r"
- **One vCPU each.** The generator has CPU 0 to itself; every peer gets CPU 1 for everything it needs: its processes and the kernel's softirq work on its packets (bridge, routing and NAT for the kernel peers; bridge, XDP or AF_PACKET delivery and the AF_XDP/AF_PACKET transmit path for udplb; the backends' receive for all). The kernel work of a veth path is most of the cost per datagram here, for every peer.
- **udplb on a kernel-attached port still pays the kernel.** On a veth, `net_af_xdp` runs in copy mode (the kernel copies each frame into the XDP socket and builds an skb for each one sent), and `net_af_packet` copies both ways through its rings; each burst sent is a system call. udplb's own per-datagram work (`scripts/bench-fastpath`, `scripts/bench-worker`) is tens of nanoseconds; the rest of its CPU per datagram here is the kernel's. On a NIC with a DPDK driver that cost disappears; this machine has none.
- udplb's worker shares CPU 1 with that kernel work, so it backs off with a short cap (`idle_backoff_us: 20`: it polls 10 µs after its last frame, then sleeps 1 µs doubling up to 20 µs) instead of spinning: with a busy-polling worker the kernel's half of udplb's path would wait for the scheduler.
- nginx cannot hold 131k flows here: one upstream socket per session and an open-file limit of 20,000 (root cannot raise it in this environment), so its many-flow rows lose datagrams at any rate. Its new-flow rate is bounded the same way.
- The CPU columns count the whole machine (softirq included) minus the generator's own CPU time, so the kernel peers' work is counted; at the maximum every peer saturates CPU 1 by definition, so the equal-load column (one fixed rate every peer sustains) compares cost without saturation.
- Memory: udplb allocates its flow table at start (its growth with flows is ~0 by design; the table's size is fixed by `flows.capacity`); nginx grows per session; conntrack memory lives in the kernel slab and is not attributed.
- DNS workload: dnsmasq (single-threaded, on CPU 0 with the latency client) bounds the DNS maximum for every peer.
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::results::PeerResult;

    #[test]
    fn cells_and_ratios() {
        assert!(NOTES.contains("One vCPU each"));
        assert_eq!(fmt_k(Some(12_345.0)), "12k");
        assert_eq!(fmt_k(None), "—");
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50×");
        assert_eq!(ratio(Some(3.0), None), "—");
        assert_eq!(ratio(Some(3.0), Some(0.0)), "—");
        let mut l = Ladder {
            max_pps: Some(150_000.0),
            generator_bound: true,
            ..Ladder::default()
        };
        assert_eq!(ladder_cell(&l), "150k (gen)");
        l.max_pps = None;
        assert_eq!(ladder_cell(&l), "—");
        l.steps.push(Step {
            offered_pps: Some(20_000.0),
            loss: 0.5,
            ..Step::default()
        });
        assert_eq!(ladder_cell(&l), "< 20k (50.0 % lost)");
    }

    #[test]
    fn the_faster_kernel_attached_port_is_the_udplb_row() {
        let mut r = Results::default();
        assert_eq!(best_udplb(&r), Peer::UdplbAfXdp);
        let with = |pps: f64| {
            let mut x = PeerResult::default();
            x.ladders.insert(
                "64B 1 flow".into(),
                Ladder {
                    max_pps: Some(pps),
                    ..Ladder::default()
                },
            );
            x
        };
        r.peers.insert(Peer::UdplbAfXdp, with(100.0));
        r.peers.insert(Peer::UdplbAfPacket, with(200.0));
        assert_eq!(best_udplb(&r), Peer::UdplbAfPacket);
    }

    #[test]
    fn an_empty_run_renders_every_section() {
        let md = markdown(&Results::default(), &["a note".into()]);
        for section in [
            "## Machine",
            "## Setup",
            "## The generator alone",
            "## Absolute figures",
            "## Ratios",
            "## What saturated",
            "## Notes",
        ] {
            assert!(md.contains(section), "{section} missing");
        }
        assert!(md.contains("| udplb (net_af_xdp) | failed |"), "{md}");
        assert!(md.ends_with("- run note: a note\n"), "{md}");
    }
}
