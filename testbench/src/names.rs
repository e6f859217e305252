//! Unique names for one topology run, and recognising the names of other runs.
//!
//! Namespaces are `ulbtb-<pid>-<seq>-<role>`; the run directory is
//! `<tmp>/ulbtb-<pid>-<seq>`. The pid lets `testbench cleanup` tell leftovers of dead
//! runs from live ones; the per-process counter keeps parallel tests apart. Interface
//! names must fit in 15 bytes, so they carry a compact base-36 tag of the same pair.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result};

/// Prefix of every namespace and run directory the testbench creates.
pub const PREFIX: &str = "ulbtb";

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

static NEXT_SEQ: AtomicU32 = AtomicU32::new(0);

/// Identity of one run: the creating process and a per-process sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId {
    /// Process id of the creator.
    pub pid: u32,
    /// Sequence number within that process.
    pub seq: u32,
}

impl RunId {
    /// A fresh id for this process.
    pub fn next() -> RunId {
        RunId {
            pid: std::process::id(),
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// `ulbtb-<pid>-<seq>`: the stem of every namespace and the run directory.
    pub fn stem(&self) -> String {
        format!("{PREFIX}-{}-{}", self.pid, self.seq)
    }

    /// The namespace name for `role` (e.g. `lb`, `c0`, `b2`).
    pub fn netns(&self, role: &str) -> String {
        format!("{}-{role}", self.stem())
    }

    /// A short tag unique per run: the pid in base 36 padded to 5 digits (enough for
    /// the largest Linux pid, 2^22), then the sequence number in base 36.
    fn tag(&self) -> String {
        format!("{:0>5}{}", base36(self.pid), base36(self.seq))
    }

    /// An interface name `<kind><tag>` unique per run.
    ///
    /// # Errors
    /// [`Error::Invalid`] if it would exceed [`MAX_IFNAME`] bytes.
    pub fn ifname(&self, kind: &str) -> Result<String> {
        let name = format!("{kind}{}", self.tag());
        check_ifname(&name)?;
        Ok(name)
    }

    /// The pid of the run that made `name`, an interface name `<kind><tag>` (from
    /// [`RunId::ifname`]) possibly followed by more characters (DPDK file prefixes add
    /// `-<name>`); `None` for names that do not start with `kind` and a tag.
    pub fn pid_of_ifname(name: &str, kind: &str) -> Option<u32> {
        let digits = name.strip_prefix(kind)?.get(..5)?;
        digits.bytes().try_fold(0u32, |acc, b| {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'z' => b - b'a' + 10,
                _ => return None,
            };
            acc.checked_mul(36)?.checked_add(u32::from(d))
        })
    }

    /// Parses the run id out of a namespace or directory name made by [`RunId::netns`]
    /// or [`RunId::stem`]; `None` for names that are not ours.
    pub fn parse(name: &str) -> Option<RunId> {
        let rest = name.strip_prefix(PREFIX)?.strip_prefix('-')?;
        let mut parts = rest.splitn(3, '-');
        let pid = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        Some(RunId { pid, seq })
    }
}

/// Checks that `name` is a usable Linux interface name.
///
/// # Errors
/// [`Error::Invalid`] if it is empty, longer than [`MAX_IFNAME`], or contains `/`, `:` or
/// whitespace.
pub fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_IFNAME {
        return Err(Error::invalid(
            format!("interface name `{name}`"),
            format!("must be 1 to {MAX_IFNAME} bytes"),
        ));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(Error::invalid(
            format!("interface name `{name}`"),
            "must not contain '/', ':' or whitespace",
        ));
    }
    Ok(())
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_names_round_trip() {
        let id = RunId {
            pid: 4_194_304,
            seq: 17,
        };
        assert_eq!(id.netns("lb"), "ulbtb-4194304-17-lb");
        assert_eq!(RunId::parse(&id.netns("b12")), Some(id));
        assert_eq!(RunId::parse(&id.stem()), Some(id));
    }

    #[test]
    fn foreign_names_are_not_parsed() {
        assert_eq!(RunId::parse("ulbtbx-1-2-lb"), None);
        assert_eq!(RunId::parse("other-1-2-lb"), None);
        assert_eq!(RunId::parse("ulbtb-abc-2-lb"), None);
        assert_eq!(RunId::parse("ulbtb-12"), None);
    }

    #[test]
    fn ifnames_fit_for_the_largest_pid() {
        let id = RunId {
            pid: 4_194_304,
            seq: 46_655,
        };
        let name = id.ifname("ulbt").expect("fits");
        assert_eq!(name, "ulbt2hwcgzzz");
        assert!(name.len() <= MAX_IFNAME);
    }

    #[test]
    fn tags_are_unambiguous() {
        let a = RunId { pid: 1, seq: 36 }.ifname("t").expect("fits");
        let b = RunId { pid: 37, seq: 0 }.ifname("t").expect("fits");
        assert_eq!(a, "t0000110");
        assert_eq!(b, "t000110");
        assert_ne!(a, b);
    }

    #[test]
    fn pids_come_back_from_interface_names() {
        let id = RunId {
            pid: 4_194_304,
            seq: 46_655,
        };
        let tap = id.ifname("ulbt").expect("fits");
        assert_eq!(RunId::pid_of_ifname(&tap, "ulbt"), Some(4_194_304));
        let prefix = format!("testpmd-{tap}-io");
        assert_eq!(
            RunId::pid_of_ifname(&prefix, "testpmd-ulbt"),
            Some(4_194_304)
        );
        assert_eq!(RunId::pid_of_ifname("ulbtX", "ulbt"), None);
        assert_eq!(RunId::pid_of_ifname("ulbt00-9z", "ulbt"), None);
        assert_eq!(RunId::pid_of_ifname("eth0", "ulbt"), None);
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }

    #[test]
    fn bad_ifnames_are_refused() {
        assert!(check_ifname("").is_err());
        assert!(check_ifname("abcdefghijklmnop").is_err());
        assert!(check_ifname("a:b").is_err());
        assert!(check_ifname("eth0").is_ok());
    }
}
