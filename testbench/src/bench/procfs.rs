//! What the machine and the peer's processes spend, from `/proc`: CPU time of every CPU
//! (`/proc/stat`, so that softirq work done for no process is counted), CPU time of one
//! process, and resident memory of everything in a namespace.

use crate::netns::Netns;

/// Cumulative CPU ticks of one CPU, from a `cpuN` line of `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CpuTicks {
    /// user + nice + system + irq + softirq.
    pub(super) busy: u64,
    /// softirq alone.
    pub(super) softirq: u64,
    /// Every field but guest time (already in user): the CPU's whole time.
    pub(super) total: u64,
}

/// Per-CPU ticks of the whole machine (`/proc/stat` is not namespaced).
pub(super) fn machine_ticks() -> Vec<CpuTicks> {
    parse_stat(&std::fs::read_to_string("/proc/stat").unwrap_or_default())
}

fn parse_stat(text: &str) -> Vec<CpuTicks> {
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .take(8)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            let f = |i: usize| v.get(i).copied().unwrap_or(0);
            // user nice system idle iowait irq softirq steal
            CpuTicks {
                busy: f(0) + f(1) + f(2) + f(5) + f(6),
                softirq: f(6),
                total: (0..8).map(f).sum(),
            }
        })
        .collect()
}

/// What the machine did between two readings: busy seconds of all CPUs together, and per
/// CPU the busy and softirq shares.
pub(super) fn machine_delta(before: &[CpuTicks], after: &[CpuTicks]) -> (f64, Vec<f64>, Vec<f64>) {
    let hz = clock_ticks();
    let mut busy_s = 0.0;
    let mut busy = Vec::new();
    let mut softirq = Vec::new();
    for (b, a) in before.iter().zip(after) {
        let total = a.total.saturating_sub(b.total).max(1) as f64;
        let d_busy = a.busy.saturating_sub(b.busy) as f64;
        busy_s += d_busy / hz;
        busy.push(d_busy / total);
        softirq.push(a.softirq.saturating_sub(b.softirq) as f64 / total);
    }
    (busy_s, busy, softirq)
}

/// CPU seconds (user + system) used so far by process `pid` (0 if it is gone).
pub(super) fn process_cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_ticks(&s))
        .map_or(0.0, |t| t as f64 / clock_ticks())
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in clock ticks.
fn stat_ticks(stat: &str) -> Option<u64> {
    // Fields after the command name (which may hold spaces): state is field 3, utime and
    // stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident memory of every process in `ns`, KiB.
pub(super) fn rss_kib(ns: &Netns) -> u64 {
    ns.pids()
        .unwrap_or_default()
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|s| vm_rss_kib(&s))
        .sum()
}

/// `VmRSS` of a `/proc/<pid>/status` text, KiB.
fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_follow_a_command_name_with_spaces() {
        let stat =
            "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 1 0 99 1000 50";
        assert_eq!(stat_ticks(stat), Some(42));
        assert_eq!(stat_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn resident_memory_from_status() {
        let status = "Name:\tudplb\nVmPeak:\t  900 kB\nVmRSS:\t  12345 kB\nThreads:\t3\n";
        assert_eq!(vm_rss_kib(status), Some(12_345));
        assert_eq!(vm_rss_kib("Name:\tkthread\n"), None);
    }

    #[test]
    fn machine_ticks_per_cpu_count_softirq_as_busy() {
        let before = parse_stat(
            "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 5 0 5 50 0 0 0 0 0 0\ncpu1 5 0 5 50 0 0 0 0 0 0\nintr 1 2\n",
        );
        let after = parse_stat(
            "cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 15 0 5 140 0 0 0 0 0 0\ncpu1 5 0 25 50 0 10 70 0 0 0\n",
        );
        assert_eq!(before.len(), 2, "the aggregate line is not a CPU");
        assert_eq!(
            after[1],
            CpuTicks {
                busy: 110,
                softirq: 70,
                total: 160
            }
        );
        let (_, busy, softirq) = machine_delta(&before, &after);
        assert!((busy[0] - 0.1).abs() < 1e-9, "{busy:?}");
        assert!((busy[1] - 1.0).abs() < 1e-9, "{busy:?}");
        assert!((softirq[1] - 0.7).abs() < 1e-9, "{softirq:?}");
    }
}
