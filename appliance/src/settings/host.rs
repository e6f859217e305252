//! Whether the settings fit this host: every lcore named in `workers` is a CPU this process
//! can run on.
//!
//! Checked when the appliance starts, before the EAL, whose own answer to a missing lcore
//! is a usage dump that names no field. It is not part of parsing: a settings file written
//! for another machine (the shipped PCI example, say) still parses and validates here.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::validate::{FieldError, Validator};
use super::Settings;

/// A set of CPU ids, read and written in the kernel's cpulist format (`0-3,8,10-11`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuSet(BTreeSet<u32>);

/// Largest CPU id a cpulist may name (Linux's `NR_CPUS` is at most 8192), so a corrupt
/// range cannot ask for billions of entries.
const MAX_CPU: u32 = 1 << 16;

impl CpuSet {
    /// The CPUs this process can run on: those allowed to it (`Cpus_allowed_list` in
    /// `/proc/self/status`: affinity and cpuset) that are online
    /// (`/sys/devices/system/cpu/online`), from whichever of the two can be read; when
    /// neither can, CPUs 0 to `available_parallelism() - 1`.
    pub fn usable() -> CpuSet {
        let allowed = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .and_then(|list| list.trim().parse::<CpuSet>().ok())
            });
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|s| s.trim().parse::<CpuSet>().ok());
        match (allowed, online) {
            (Some(a), Some(o)) => CpuSet(a.0.intersection(&o.0).copied().collect()),
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => {
                let n = std::thread::available_parallelism().map_or(1, usize::from);
                (0..u32::try_from(n).unwrap_or(MAX_CPU)).collect()
            }
        }
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: u32) -> bool {
        self.0.contains(&cpu)
    }
}

impl FromIterator<u32> for CpuSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        CpuSet(iter.into_iter().collect())
    }
}

impl FromStr for CpuSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let cpu = |t: &str| {
                t.parse::<u32>()
                    .ok()
                    .filter(|c| *c <= MAX_CPU)
                    .ok_or_else(|| format!("{s:?}: {t:?} is not a CPU number"))
            };
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (cpu(a)?, cpu(b)?),
                None => (cpu(part)?, cpu(part)?),
            };
            if first > last {
                return Err(format!("{s:?}: {part:?} is an empty range"));
            }
            set.extend(first..=last);
        }
        Ok(CpuSet(set))
    }
}

impl fmt::Display for CpuSet {
    /// The cpulist form, ranges joined (`0-3,8`); `none` for the empty set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for &c in &self.0 {
            match runs.last_mut() {
                Some((_, last)) if last.checked_add(1) == Some(c) => *last = c,
                _ => runs.push((c, c)),
            }
        }
        if runs.is_empty() {
            return f.write_str("none");
        }
        let text: Vec<String> = runs
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        f.write_str(&text.join(","))
    }
}

impl Settings {
    /// Checks that `workers.main_lcore` and every `workers.lcores[i]` is in `cpus` (the
    /// EAL maps lcore N to CPU N).
    ///
    /// # Errors
    /// One error per lcore that is not, naming the field and the CPUs there are.
    pub fn check_cpus(&self, cpus: &CpuSet) -> Result<(), Vec<FieldError>> {
        let mut v = Validator::default();
        let mut check = |field: String, lcore: u32| {
            if !cpus.contains(lcore) {
                v.fail(
                    field,
                    format!("lcore {lcore} is not a CPU this process can run on (CPUs: {cpus})"),
                );
            }
        };
        check("workers.main_lcore".into(), self.workers.main_lcore);
        for (i, lcore) in self.workers.lcores.iter().enumerate() {
            check(format!("workers.lcores[{i}]"), *lcore);
        }
        if v.errors.is_empty() {
            Ok(())
        } else {
            Err(v.errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulists_parse_and_print_as_the_kernel_writes_them() {
        let set: CpuSet = "0-3,8,10-11\n".trim().parse().expect("cpulist");
        assert_eq!(set, [0, 1, 2, 3, 8, 10, 11].into_iter().collect());
        assert_eq!(set.to_string(), "0-3,8,10-11");
        assert_eq!("5".parse::<CpuSet>().expect("one").to_string(), "5");
        assert_eq!("".parse::<CpuSet>().expect("empty").to_string(), "none");
        assert_eq!(
            "3-1".parse::<CpuSet>(),
            Err("\"3-1\": \"3-1\" is an empty range".into())
        );
        assert_eq!(
            "0-x".parse::<CpuSet>(),
            Err("\"0-x\": \"x\" is not a CPU number".into())
        );
        assert!("0-4294967295".parse::<CpuSet>().is_err());
    }

    #[test]
    fn this_host_has_a_cpu() {
        let usable = CpuSet::usable();
        assert!(usable.0.first().is_some(), "{usable}");
    }

    #[test]
    fn missing_lcores_are_named_with_the_cpus_there_are() {
        let settings: Settings =
            "ports:\n  - {name: a, device: net_null0}\nworkers: {lcores: [1, 4, 2], main_lcore: 7}\n"
                .parse()
                .expect("valid settings");
        let two: CpuSet = "0-1".parse().expect("cpulist");
        let errors: Vec<String> = settings
            .check_cpus(&two)
            .expect_err("lcores 2, 4 and 7 do not exist")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "workers.main_lcore: lcore 7 is not a CPU this process can run on (CPUs: 0-1)",
                "workers.lcores[1]: lcore 4 is not a CPU this process can run on (CPUs: 0-1)",
                "workers.lcores[2]: lcore 2 is not a CPU this process can run on (CPUs: 0-1)",
            ]
        );
        let eight: CpuSet = "0-7".parse().expect("cpulist");
        assert_eq!(settings.check_cpus(&eight), Ok(()));
    }
}
