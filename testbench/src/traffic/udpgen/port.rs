//! The generator's DPDK side: one port, one lcore, jobs in and reports out (through the
//! appliance crate's safe binding, `appliance::dpdk`).

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use appliance::dpdk::{
    Device, DpdkError, Eal, Mbuf, MbufBurst, Mempool, Port, PortBuilder, QueueId, RxQueue,
    SocketId, TxQueue,
};

use super::frames::{FrameSpec, Frames};
use super::{GenOptions, Hello, Job, JobReport};
use crate::error::{Error, Result};

/// Mbufs of the pool: the PMDs copy a frame into their own ring and free the mbuf at
/// once, so a few bursts' worth are in flight at most.
const MBUFS: u32 = 8191;
const MBUF_CACHE: u32 = 256;
/// Loop rounds between looks at the clock bound and the receive queue.
const HOUSEKEEPING_ROUNDS: u32 = 64;

fn dpdk(what: &str, e: DpdkError) -> Error {
    Error::invalid("udpgen", format!("{what}: {e}"))
}

/// Runs the generator: EAL on `opts.lcore` without hugepages, the port, then one
/// [`JobReport`] line on `output` per [`Job`] line of `input` until `input` ends. The
/// port is closed and the EAL cleaned up on every path out, and the runtime directory
/// removed.
///
/// # Errors
/// The EAL or the port cannot start, or `output` cannot be written. A bad job line is
/// answered with a report whose `error` says why, not an error.
pub fn serve(opts: &GenOptions, input: impl BufRead, mut output: impl Write) -> Result<()> {
    let device: Device = opts
        .device
        .parse()
        .map_err(|e| Error::invalid("udpgen --device", format!("{e}")))?;
    let mut args: Vec<String> = [
        "-l",
        &opts.lcore.to_string(),
        "--no-huge",
        "-m",
        "256",
        "--no-shconf",
        "--no-pci",
        "--file-prefix",
        &opts.file_prefix,
        "--log-level=lib.eal:error",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(device.eal_args());
    let eal = Eal::init(&args).map_err(|e| dpdk("EAL", e))?;
    let runtime = eal.runtime_dir();
    let served = serve_port(&device, input, &mut output);
    // net_af_xdp keeps the mbufs of its fill ring and of unfinished TX completions after
    // the port is closed, so the pool (and with it the EAL) may stay alive: the process
    // exits right after, so that is reported, not an error.
    if let Err(e) = eal.cleanup() {
        eprintln!("udpgen: EAL not cleaned up ({e}); exiting");
    }
    if let Some(dir) = runtime {
        let _ = dir.remove();
    }
    served
}

/// The port's life: open, hello, jobs, close (queues, port and pool dropped in order).
fn serve_port(device: &Device, input: impl BufRead, output: &mut impl Write) -> Result<()> {
    let pool = Mempool::new(
        "udpgen",
        MBUFS,
        MBUF_CACHE,
        Mempool::DEFAULT_DATA_ROOM,
        SocketId::ANY,
    )
    .map_err(|e| dpdk("mempool", e))?;
    let mut port: Port = PortBuilder::new(device)
        .map_err(|e| dpdk("port", e))?
        .mempool(&pool)
        .rss(false)
        .tx_checksum_offload(false)
        .build()
        .map_err(|e| dpdk("port", e))?;
    port.start().map_err(|e| dpdk("port start", e))?;
    let mac = port.mac_addr().map_err(|e| dpdk("port MAC", e))?;
    let mut io = GenIo {
        rx: port.rx_queue(QueueId(0)).map_err(|e| dpdk("rx queue", e))?,
        tx: port.tx_queue(QueueId(0)).map_err(|e| dpdk("tx queue", e))?,
        pool: &pool,
        port: &port,
    };
    let hello = Hello {
        mac,
        driver: port.driver().to_owned(),
    };
    writeln_json(output, &hello)?;
    for line in input.lines() {
        let line = line.map_err(|e| Error::io("udpgen stdin", e))?;
        if line.trim().is_empty() {
            continue;
        }
        let report = match serde_json::from_str::<Job>(&line) {
            Ok(job) => io.run(&job, mac),
            Err(e) => JobReport {
                error: Some(format!("bad job: {e}")),
                ..JobReport::default()
            },
        };
        writeln_json(output, &report)?;
    }
    Ok(())
}

fn writeln_json(output: &mut impl Write, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string(value).map_err(|e| Error::invalid("udpgen", e.to_string()))?;
    writeln!(output, "{text}")
        .and_then(|()| output.flush())
        .map_err(|e| Error::io("udpgen stdout", e))
}

/// The queues and pool a job uses.
struct GenIo<'p> {
    rx: RxQueue,
    tx: TxQueue,
    pool: &'p Mempool,
    port: &'p Port,
}

impl GenIo<'_> {
    /// Runs `job` with frames from `src_mac`; never sends more than `job.count` nor runs
    /// longer than `job.max_ms`.
    fn run(&mut self, job: &Job, src_mac: [u8; 6]) -> JobReport {
        let spec = FrameSpec {
            src_mac,
            dst_mac: job.dst_mac,
            space: job.space,
            targets: job.targets.clone(),
            frame_len: job.frame_len,
        };
        let frames = match Frames::new(&spec) {
            Ok(f) => f,
            Err(e) => {
                return JobReport {
                    error: Some(e),
                    ..JobReport::default()
                }
            }
        };
        if job.flows == 0 || job.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return JobReport {
                error: Some("flows must be at least 1 and a rate positive".into()),
                ..JobReport::default()
            };
        }
        let before = self.port.stats().unwrap_or_default();
        let mut report = self.send(job, &frames);
        let after = self.port.stats().unwrap_or_default();
        report.port_opackets = after.opackets.saturating_sub(before.opackets);
        report.port_oerrors = after.oerrors.saturating_sub(before.oerrors);
        report.sent_pps = if report.elapsed_s > 0.0 {
            report.sent as f64 / report.elapsed_s
        } else {
            0.0
        };
        report
    }

    /// The send loop: fill the burst with what is due, send, retry what the port left.
    fn send(&mut self, job: &Job, frames: &Frames) -> JobReport {
        let mut report = JobReport::default();
        let mut burst = MbufBurst::new();
        let mut received = MbufBurst::new();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(job.max_ms);
        let mut made = 0u64;
        let mut rounds = 0u32;
        let mut last_sent_at = start;
        while report.sent < job.count {
            rounds = rounds.wrapping_add(1);
            if rounds.is_multiple_of(HOUSEKEEPING_ROUNDS) {
                if Instant::now() >= deadline {
                    report.cut_at_bound = true;
                    break;
                }
                self.rx.rx_burst(&mut received);
                report.received += received.free_all() as u64;
            }
            let due = match job.rate {
                None => job.count,
                // Whole datagrams due by now, the next one included; far below u64::MAX.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(rate) => (start.elapsed().as_secs_f64() * rate) as u64 + 1,
            }
            .min(job.count);
            while made < due && !burst.is_full() {
                let Ok(mut m) = Mbuf::alloc(self.pool) else {
                    report.alloc_failures += 1;
                    break;
                };
                match m.append(frames.len()) {
                    Ok(data) => {
                        frames.write(job.first_flow.wrapping_add(made % job.flows), data);
                    }
                    Err(_) => {
                        report.error = Some("mbufs too small for the frame".into());
                        return report;
                    }
                }
                // The burst had room (checked above).
                let _ = burst.push(m);
                made += 1;
            }
            if burst.is_empty() {
                continue;
            }
            let offered = burst.len();
            let sent = self.tx.tx_burst(&mut burst);
            if sent > 0 {
                report.sent += sent as u64;
                last_sent_at = Instant::now();
            }
            if sent < offered {
                report.tx_partial += 1;
            }
        }
        burst.free_all();
        report.elapsed_s = last_sent_at.duration_since(start).as_secs_f64();
        report
    }
}
