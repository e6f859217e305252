//! The include file udplb writes for BIRD: one static protocol per announced prefix, its
//! route through the liveness interface, `disabled;` when it must not be announced.
//!
//! ```text
//! protocol static udplb4_198_19_0_10 { ipv4; route 198.19.0.10/32 via "udplb-live"; }
//! protocol static udplb4_198_19_0_11 { disabled; ipv4; route 198.19.0.11/32 via "udplb-live"; }
//! protocol static udplb6_2001_0002_0000_00ff_0000_0000_0000_0010 { ipv6; route 2001:2:0:ff::10/128 via "udplb-live"; }
//! protocol static udplbr4_0_0_0_0_0 { ipv4; route 0.0.0.0/0 via "udplb-live"; }
//! ```
//!
//! The state lives in the file, not in run-time `enable`/`disable` commands: `configure`
//! resets a protocol whose file state differs from its run-time one, so the file is the
//! only source of truth that survives a reconfiguration or a BIRD restart. Names are
//! derived from the prefix alone (`udplb4_`/`udplb6_` for VIPs, `udplbr4_`/`udplbr6_` for
//! return routes, so the export filter can tell them apart by name), the entries are
//! sorted, and the text is therefore a pure function of the decision: udplb compares it
//! with what it wrote last and talks to BIRD only when it changes. The file is replaced
//! atomically (a temporary file in the same directory, then `rename`), readable by BIRD's
//! user (mode 0644 whatever the umask), so BIRD never reads half a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pipelines::net::IpNet;

/// What a prefix is announced for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteKind {
    /// A VIP host route: traffic for the VIP comes to this appliance.
    Vip,
    /// A return route: replies from backends (preserve-client) come back through this
    /// appliance.
    Return,
}

/// One protocol of the file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// VIP or return route.
    pub kind: RouteKind,
    /// The prefix (a VIP is a /32 or /128).
    pub prefix: IpNet,
    /// Whether it is announced.
    pub enabled: bool,
}

/// The BIRD protocol name of `prefix` announced as `kind`: `udplb4_198_19_0_10`,
/// `udplb6_2001_0002_0000_00ff_0000_0000_0000_0010` (every group, four hex digits), and
/// for return routes `udplbr4_…_<prefix length>`.
pub fn protocol_name(kind: RouteKind, prefix: IpNet) -> String {
    let (family, addr) = match prefix.network() {
        IpAddr::V4(a) => (
            "4",
            a.octets()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("_"),
        ),
        IpAddr::V6(a) => (
            "6",
            a.segments()
                .iter()
                .map(|g| format!("{g:04x}"))
                .collect::<Vec<_>>()
                .join("_"),
        ),
    };
    match kind {
        RouteKind::Vip => format!("udplb{family}_{addr}"),
        RouteKind::Return => format!("udplbr{family}_{addr}_{}", prefix.prefix_len()),
    }
}

/// The file's text for `entries` routed via `interface` (sorted by kind, then prefix).
pub fn render(entries: &[Entry], interface: &str) -> String {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by_key(|e| (e.kind, e.prefix.network(), e.prefix.prefix_len()));
    let mut out = String::from(
        "# Written by udplb (announce.bird.include): one static protocol per prefix it may\n\
         # announce, \"disabled\" while it must not. Rewritten on every change; do not edit.\n",
    );
    for e in sorted {
        let channel = if e.prefix.network().is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let disabled = if e.enabled { "" } else { "disabled; " };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "protocol static {} {{ {disabled}{channel}; route {}/{} via \"{interface}\"; }}",
            protocol_name(e.kind, e.prefix),
            e.prefix.network(),
            e.prefix.prefix_len(),
        );
    }
    out
}

/// Replaces `path` with `text` atomically: a temporary file next to it (same file
/// system), mode 0644, synced, then renamed over it.
///
/// # Errors
/// What the file system said (missing directory, permissions).
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }

    #[test]
    fn names_are_derived_from_the_prefix() {
        assert_eq!(
            protocol_name(RouteKind::Vip, net("198.19.0.10/32")),
            "udplb4_198_19_0_10"
        );
        assert_eq!(
            protocol_name(RouteKind::Vip, net("2001:2:0:ff::10/128")),
            "udplb6_2001_0002_0000_00ff_0000_0000_0000_0010"
        );
        assert_eq!(
            protocol_name(RouteKind::Return, net("0.0.0.0/0")),
            "udplbr4_0_0_0_0_0"
        );
        assert_eq!(
            protocol_name(RouteKind::Return, net("2001:2:0:100::/56")),
            "udplbr6_2001_0002_0000_0100_0000_0000_0000_0000_56"
        );
    }

    #[test]
    fn the_file_is_exact_and_sorted() {
        let entries = [
            Entry {
                kind: RouteKind::Return,
                prefix: net("198.19.0.0/24"),
                enabled: true,
            },
            Entry {
                kind: RouteKind::Vip,
                prefix: net("2001:2:0:ff::10/128"),
                enabled: true,
            },
            Entry {
                kind: RouteKind::Vip,
                prefix: net("198.19.0.11/32"),
                enabled: false,
            },
            Entry {
                kind: RouteKind::Vip,
                prefix: net("198.19.0.10/32"),
                enabled: true,
            },
        ];
        assert_eq!(
            render(&entries, "udplb-live"),
            "# Written by udplb (announce.bird.include): one static protocol per prefix it may\n\
             # announce, \"disabled\" while it must not. Rewritten on every change; do not edit.\n\
             protocol static udplb4_198_19_0_10 { ipv4; route 198.19.0.10/32 via \"udplb-live\"; }\n\
             protocol static udplb4_198_19_0_11 { disabled; ipv4; route 198.19.0.11/32 via \"udplb-live\"; }\n\
             protocol static udplb6_2001_0002_0000_00ff_0000_0000_0000_0010 { ipv6; route 2001:2:0:ff::10/128 via \"udplb-live\"; }\n\
             protocol static udplbr4_198_19_0_0_24 { ipv4; route 198.19.0.0/24 via \"udplb-live\"; }\n"
        );
        // The same decision in another order gives the same text.
        let mut reversed = entries.to_vec();
        reversed.reverse();
        assert_eq!(
            render(&reversed, "udplb-live"),
            render(&entries, "udplb-live")
        );
        // Nothing to announce: only the header (BIRD accepts an empty include).
        assert_eq!(render(&[], "x").lines().count(), 2);
    }

    #[test]
    fn writes_replace_the_file_atomically_and_readably() {
        let dir = std::env::temp_dir().join(format!("udplb-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("vips.conf");
        write_atomic(&path, "one\n").expect("write");
        write_atomic(&path, "two\n").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["vips.conf"], "no temporary file left");
        assert!(write_atomic(&dir.join("absent/vips.conf"), "x").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
