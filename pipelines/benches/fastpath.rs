//! Fast-path benchmarks: bursts of 32 frames of 60–64 bytes through
//! `FastPath::process_burst`, with 1 and 1,000,000 live flows.
//!
//! Only `process_burst` is timed (`iter_custom`): restoring the frames between bursts
//! (they are rewritten in place) and, for the new-flow cases, forgetting the flows just
//! created so the occupancy stays constant, happen off the clock. Frames for the
//! 1 M-flow cases are drawn pseudo-randomly from the whole population, so flow-table
//! accesses miss the caches as they would under real traffic.
//!
//! DSR cases use the DSR listeners (`:60`); `ipv4_reverse_preserve_stateless` is a
//! preserve-client reply that the worker translates from the tables (no flow there), as
//! workers without the flow do with several workers.
//!
//! The 1 M-flow populations use the preserve-client listener: FullNAT needs one SNAT port
//! per flow and one SNAT address holds 64,512, so 1 M FullNAT flows do not fit one worker.
//!
//! Run: `cargo bench -p pipelines --bench fastpath` (or `scripts/bench-fastpath`).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pipelines::neighbor::Neighbors;
use pipelines::net::{Network, PortRange};
use pipelines::parse::FlowKey;
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::testkit::{self, decode_verified, udp_frame};
use pipelines::{Context, DropReason, FastPath, FastPathParams, Verdict};

const BURST: usize = 32;
const STRIDE: usize = 64;
const MILLION: usize = 1_000_000;

/// Frames of equal length stored back to back, all arriving on one port.
struct Pool {
    bytes: Vec<u8>,
    len: usize,
    keys: Vec<FlowKey>,
    port: u16,
}

impl Pool {
    fn new() -> Pool {
        Pool {
            bytes: Vec::new(),
            len: 0,
            keys: Vec::new(),
            port: 0,
        }
    }

    fn push(&mut self, f: &[u8], key: FlowKey) {
        assert!(f.len() <= STRIDE);
        self.len = f.len();
        self.port = testkit::arrival_port(f);
        let start = self.bytes.len();
        self.bytes.resize(start + STRIDE, 0);
        self.bytes[start..start + f.len()].copy_from_slice(f);
        self.keys.push(key);
    }

    fn count(&self) -> usize {
        self.keys.len()
    }

    fn frame(&self, i: usize) -> &[u8] {
        &self.bytes[i * STRIDE..i * STRIDE + self.len]
    }
}

struct Rig {
    tables: Tables,
    network: Network,
    neighbors: Neighbors,
    worker: FastPath,
}

impl Rig {
    fn new(capacity: u32) -> Rig {
        let mut p = FastPathParams::new(
            0,
            1,
            PortRange {
                first: 1024,
                last: 65535,
            },
        );
        p.flow_capacity = capacity;
        Rig {
            tables: Tables::build(&testkit::config(), &DataplaneParams::default()).unwrap(),
            network: testkit::network(false),
            neighbors: testkit::neighbors(4),
            worker: FastPath::new(p).unwrap(),
        }
    }

    fn run(&mut self, f: &mut [u8], now: u64) -> Verdict {
        let ctx = Context {
            tables: &self.tables,
            network: &self.network,
            neighbors: &self.neighbors,
        };
        self.worker.process(&ctx, now, testkit::arrival_port(f), f)
    }
}

fn client4(i: usize) -> SocketAddr {
    let [hi, mid, b, c] = u32::try_from(i).expect("client index").to_be_bytes();
    let ip = Ipv4Addr::new(198, 19, b, c);
    SocketAddr::from((ip, 1024 + u16::from_be_bytes([hi, mid])))
}

fn client6(i: usize) -> SocketAddr {
    let [a, b, c, d] = u32::try_from(i).expect("client index").to_be_bytes();
    let ip = Ipv6Addr::new(
        0x2001,
        2,
        0,
        9,
        0,
        0,
        u16::from_be_bytes([a, b]),
        u16::from_be_bytes([c, d]),
    );
    SocketAddr::from((ip, 40000))
}

fn key(src: SocketAddr, dst: SocketAddr) -> FlowKey {
    FlowKey {
        src: src.ip(),
        dst: dst.ip(),
        src_port: src.port(),
        dst_port: dst.port(),
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Forward frames from `n` clients to `vip`, payload sized for a 60/64-byte frame.
fn forward_pool(n: usize, client: fn(usize) -> SocketAddr, vip: SocketAddr) -> Pool {
    let payload = if vip.is_ipv4() { 18 } else { 2 };
    let mut p = Pool::new();
    for i in 0..n {
        let c = client(i);
        p.push(
            &udp_frame(c, vip, 64, &[], testkit::PORT0_MAC, &vec![0x5a; payload]),
            key(c, vip),
        );
    }
    p
}

/// Runs every frame of `pool` once, creating its flow.
fn populate(rig: &mut Rig, pool: &Pool) {
    let mut buf = [0u8; STRIDE];
    for i in 0..pool.count() {
        buf[..pool.len].copy_from_slice(pool.frame(i));
        let v = rig.run(&mut buf[..pool.len], 1);
        assert!(
            matches!(v, Verdict::Tx { .. }),
            "population frame {i}: {v:?}"
        );
    }
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

/// How the frames of a burst are chosen.
enum Pick {
    /// Frame 0 every time (one flow).
    Same,
    /// Uniformly at random from the pool.
    Random,
    /// The next frames in order, cycling (new flows, forgotten after each burst).
    NewFlows,
}

/// Times `iters` bursts drawn from `pool`.
fn time_bursts(
    rig: &mut Rig,
    pool: &Pool,
    pick: &Pick,
    iters: u64,
    rng: &mut Lcg,
    cursor: &mut usize,
) -> Duration {
    let mut frames = vec![[0u8; STRIDE]; BURST];
    let mut used = [0usize; BURST];
    let mut verdicts = [Verdict::Drop(DropReason::Stray); BURST];
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        for (b, u) in frames.iter_mut().zip(used.iter_mut()) {
            *u = match pick {
                Pick::Same => 0,
                Pick::Random => rng.next(pool.count()),
                Pick::NewFlows => {
                    *cursor = (*cursor + 1) % pool.count();
                    *cursor
                }
            };
            b[..pool.len].copy_from_slice(pool.frame(*u));
        }
        let mut bufs: Vec<&mut [u8]> = frames.iter_mut().map(|f| &mut f[..pool.len]).collect();
        let ctx = Context {
            tables: &rig.tables,
            network: &rig.network,
            neighbors: &rig.neighbors,
        };
        let start = Instant::now();
        rig.worker
            .process_burst(&ctx, 2, pool.port, &mut bufs, &mut verdicts);
        total += start.elapsed();
        black_box(&verdicts);
        debug_assert!(verdicts.iter().all(|v| matches!(v, Verdict::Tx { .. })));
        if let Pick::NewFlows = pick {
            for &u in &used {
                rig.worker.remove_flow(&pool.keys[u]);
            }
        }
    }
    total
}

fn check_all_tx(rig: &mut Rig, pool: &Pool, pick: &Pick) {
    let mut rng = Lcg(7);
    let mut cursor = 0;
    let tx_before = rig.worker.counters().tx_packets;
    time_bursts(rig, pool, pick, 4, &mut rng, &mut cursor);
    assert_eq!(
        rig.worker.counters().tx_packets - tx_before,
        4 * BURST as u64,
        "every benchmark packet must be forwarded"
    );
}

fn case(c: &mut Criterion, name: &str, rig: &mut Rig, pool: &Pool, pick: Pick) {
    check_all_tx(rig, pool, &pick);
    let mut group = c.benchmark_group("fastpath");
    group.throughput(Throughput::Elements(BURST as u64));
    let mut rng = Lcg(42);
    let mut cursor = 0;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| time_bursts(rig, pool, &pick, iters, &mut rng, &mut cursor));
    });
    group.finish();
}

/// The reply frame a backend sends for the flow a forwarded frame created.
fn reply_of(forwarded: &[u8]) -> (Vec<u8>, FlowKey) {
    let d = decode_verified(forwarded).unwrap();
    let payload = if d.dst.is_ipv4() { 18 } else { 2 };
    (
        udp_frame(
            d.dst,
            d.src,
            64,
            &[],
            testkit::PORT1_MAC,
            &vec![0xa5; payload],
        ),
        key(d.dst, d.src),
    )
}

fn one_flow_cases(c: &mut Criterion) {
    let vip4 = sa("198.18.2.1:53");
    let vip6 = sa("[2001:2:0:2::1]:53");

    // Established: one FullNAT flow, every packet a flow-table hit.
    let mut rig = Rig::new(1 << 16);
    let pool = forward_pool(1, client4, vip4);
    populate(&mut rig, &pool);
    case(
        c,
        "ipv4_established_fullnat_1flow",
        &mut rig,
        &pool,
        Pick::Same,
    );

    // Reverse: the backend's replies to that flow.
    let mut f = pool.frame(0).to_vec();
    rig.run(&mut f, 1);
    let (reply, k) = reply_of(&f);
    let mut rpool = Pool::new();
    rpool.push(&reply, k);
    case(
        c,
        "ipv4_reverse_fullnat_1flow",
        &mut rig,
        &rpool,
        Pick::Same,
    );

    // New flows: Maglev pick, SNAT port, insert (then forgotten off the clock).
    let mut rig = Rig::new(1 << 16);
    let pool = forward_pool(4096, client4, vip4);
    case(c, "ipv4_new_fullnat_1flow", &mut rig, &pool, Pick::NewFlows);

    let mut rig = Rig::new(1 << 16);
    let pool = forward_pool(1, client6, vip6);
    populate(&mut rig, &pool);
    case(
        c,
        "ipv6_established_fullnat_1flow",
        &mut rig,
        &pool,
        Pick::Same,
    );
}

/// DSR (only the MACs change) and preserve-client replies translated from the tables
/// (what a worker without the flow does with several workers).
fn dsr_and_stateless_cases(c: &mut Criterion) {
    let dsr4 = sa("198.18.2.1:60");
    let dsr6 = sa("[2001:2:0:2::1]:60");

    let mut rig = Rig::new(1 << 16);
    let pool = forward_pool(1, client4, dsr4);
    populate(&mut rig, &pool);
    case(c, "ipv4_established_dsr_1flow", &mut rig, &pool, Pick::Same);

    let mut rig = Rig::new(1 << 16);
    let pool = forward_pool(4096, client4, dsr4);
    case(c, "ipv4_new_dsr_1flow", &mut rig, &pool, Pick::NewFlows);

    let mut rig = Rig::new(1 << 16);
    let pool = forward_pool(1, client6, dsr6);
    populate(&mut rig, &pool);
    case(c, "ipv6_established_dsr_1flow", &mut rig, &pool, Pick::Same);

    // A backend's reply with no flow on this worker: stateless, from the tables.
    let mut rig = Rig::new(1 << 16);
    let cl = client4(0);
    let mut rpool = Pool::new();
    rpool.push(
        &udp_frame(
            testkit::backend4(3),
            cl,
            64,
            &[],
            testkit::PORT1_MAC,
            &[0xa5u8; 18],
        ),
        key(testkit::backend4(3), cl),
    );
    case(
        c,
        "ipv4_reverse_preserve_stateless",
        &mut rig,
        &rpool,
        Pick::Same,
    );
    assert_eq!(rig.worker.flows_len(), 0);
    assert!(rig.worker.counters().stateless_replies > 0);
}

/// How the process's large allocations (the flow table among them) are backed, from
/// glibc's `glibc.malloc.hugetlb` tunable: `""` (4 KiB pages), `"_thp"` (1: transparent
/// huge pages by `madvise`) or `"_hugetlb"` (2: explicit huge pages, which need
/// `vm.nr_hugepages`). Appended to the 1 M-flow case names.
fn huge_page_suffix() -> &'static str {
    let t = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if t.contains("glibc.malloc.hugetlb=1") {
        "_thp"
    } else if t.contains("glibc.malloc.hugetlb=2") {
        "_hugetlb"
    } else {
        ""
    }
}

/// Anonymous memory in transparent huge pages and this process's huge-TLB pages, KiB
/// (`/proc/self/smaps_rollup`, `/proc/self/status`): proof of what backs the table.
fn huge_kib() -> (u64, u64) {
    let field = |file: &str, name: &str| {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    (
        field("/proc/self/smaps_rollup", "AnonHugePages:"),
        field("/proc/self/status", "HugetlbPages:"),
    )
}

fn million_flow_cases(c: &mut Criterion) {
    // Building the populations takes seconds; profiling the 1-flow cases skips them.
    if std::env::var_os("FASTPATH_SKIP_1M").is_some() {
        return;
    }
    let vip4 = sa("198.18.2.1:54");
    let vip6 = sa("[2001:2:0:2::1]:54");
    let mut rig = Rig::new(1 << 20);
    let pool = forward_pool(MILLION, client4, vip4);
    populate(&mut rig, &pool);
    assert_eq!(rig.worker.flows_len(), MILLION);
    let (thp, hugetlb) = huge_kib();
    // Huge pages asked for but not had (fragmented memory): say so in the case names.
    let sfx = match huge_page_suffix() {
        "_thp" if thp == 0 => "_thp_not_backed",
        "_hugetlb" if hugetlb == 0 => "_hugetlb_not_backed",
        s => s,
    };
    let name = |base: &str| format!("{base}{sfx}");
    eprintln!(
        "1m flows: flow table {} MiB (flow_memory_bytes), AnonHugePages {thp} KiB, \
         HugetlbPages {hugetlb} KiB",
        rig.worker.counters().flow_memory_bytes >> 20
    );
    case(
        c,
        &name("ipv4_established_preserve_1m"),
        &mut rig,
        &pool,
        Pick::Random,
    );

    // Replies of random flows among the million.
    let mut rpool = Pool::new();
    for i in 0..MILLION {
        let cl = client4(i);
        let payload = [0xa5u8; 18];
        rpool.push(
            &udp_frame(
                testkit::backend4(3),
                cl,
                64,
                &[],
                testkit::PORT1_MAC,
                &payload,
            ),
            key(testkit::backend4(3), cl),
        );
    }
    case(
        c,
        &name("ipv4_reverse_preserve_1m"),
        &mut rig,
        &rpool,
        Pick::Random,
    );
    drop(rpool);

    // New flows into a table holding a million.
    let new_pool = forward_pool(65536, |i| client4(MILLION + i), vip4);
    case(
        c,
        &name("ipv4_new_preserve_1m"),
        &mut rig,
        &new_pool,
        Pick::NewFlows,
    );
    drop((rig, pool, new_pool));

    let mut rig = Rig::new(1 << 20);
    let pool = forward_pool(MILLION, client6, vip6);
    populate(&mut rig, &pool);
    case(
        c,
        &name("ipv6_established_preserve_1m"),
        &mut rig,
        &pool,
        Pick::Random,
    );
}

fn sanity(_: &mut Criterion) {
    // The client ranges used above stay inside the benchmarking prefixes.
    assert!(matches!(client4(MILLION + 65535).ip(), IpAddr::V4(a) if a.octets()[..2] == [198, 19]));
}

criterion_group!(
    benches,
    sanity,
    one_flow_cases,
    dsr_and_stateless_cases,
    million_flow_cases
);
criterion_main!(benches);
