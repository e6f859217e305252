//! What the peer's processes cost, from `/proc/<pid>`: CPU seconds and resident memory of
//! everything running in a namespace.

use crate::netns::Netns;

/// CPU seconds (user + system) used so far by every process in `ns`.
pub(super) fn cpu_seconds(ns: &Netns) -> f64 {
    let ticks: u64 = ns
        .pids()
        .unwrap_or_default()
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| stat_ticks(&stat))
        .sum();
    ticks as f64 / clock_ticks()
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
}
