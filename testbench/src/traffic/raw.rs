//! Sending hand-made Ethernet frames from inside a namespace, for malformed-traffic tests.
//!
//! The frames go out through an `AF_PACKET` socket opened by a three-line `python3`
//! program (`python3` is part of Debian's base system), so the crate itself needs no
//! `unsafe`. Frames are passed as hex lines on stdin; the kernel does not look inside
//! them, so bad lengths, checksums and truncated headers reach the wire as written.

use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::exec;
use crate::names::check_ifname;
use crate::netns::Netns;

/// Sends every hex word of stdin as one frame on the interface named in argv[1].
const SENDER: &str = concat!(
    "import socket,sys\n",
    "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n",
    "s.bind((sys.argv[1],0))\n",
    "frames=[bytes.fromhex(w) for w in sys.stdin.read().split()]\n",
    "for f in frames: s.send(f)\n",
    "print(len(frames))\n",
);

/// Smallest frame the sender accepts: destination MAC, source MAC, EtherType.
pub const MIN_FRAME: usize = 14;

/// Sends `frames` (complete Ethernet frames, FCS excluded) on `iface` in `ns`, in order.
/// Returns how many were sent.
///
/// # Errors
/// [`Error::Invalid`] for a frame shorter than [`MIN_FRAME`] or a bad interface name;
/// [`Error::Command`] if python3 fails (no such interface, frame larger than the MTU);
/// [`Error::Parse`] if it does not report the count.
pub fn send_frames(ns: &Netns, iface: &str, frames: &[Vec<u8>]) -> Result<usize> {
    check_ifname(iface)?;
    let input = hex_lines(frames)?;
    let mut cmd: Command = ns.command("python3");
    cmd.args(["-c", SENDER, iface]);
    let bound = Duration::from_secs(10) + Duration::from_millis(frames.len() as u64 / 10);
    let out = exec::run(&mut cmd, Some(input.as_bytes()), bound)?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|_| Error::Parse {
        tool: "python3 frame sender".into(),
        detail: format!("expected a count, got {text:?}"),
    })
}

/// One lowercase hex line per frame.
fn hex_lines(frames: &[Vec<u8>]) -> Result<String> {
    let mut input = String::new();
    for (i, frame) in frames.iter().enumerate() {
        if frame.len() < MIN_FRAME {
            return Err(Error::invalid(
                format!("raw frame #{i}"),
                format!(
                    "{} bytes; an Ethernet header alone is {MIN_FRAME}",
                    frame.len()
                ),
            ));
        }
        for b in frame {
            input.push_str(&format!("{b:02x}"));
        }
        input.push('\n');
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_become_hex_lines() {
        let mut a = vec![0xffu8; 6];
        a.extend([0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0xab]);
        let b = vec![0x0fu8; MIN_FRAME];
        assert_eq!(
            hex_lines(&[a, b]).expect("valid"),
            "ffffffffffff020000000001 0800ab\n0f0f0f0f0f0f0f0f0f0f0f0f0f0f\n".replace(' ', "")
        );
    }

    #[test]
    fn runt_frames_are_refused() {
        let frames = vec![vec![0u8; MIN_FRAME], vec![0u8; 3]];
        let err = hex_lines(&frames).expect_err("runt");
        assert!(err.to_string().contains("raw frame #1"), "{err}");
    }
}
