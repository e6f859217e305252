//! The liveness interface: a TAP that exists exactly as long as this process and is up
//! exactly while the appliance is ready. Every route udplb announces goes `via` it, so
//! the routing daemon withdraws them all when it goes down (not ready, stopping) or
//! disappears (udplb died, SIGKILL included: the kernel deletes a non-persistent TAP when
//! its last file descriptor closes) — fate-sharing enforced by the kernel, not by a timer.
//!
//! Created with the `tun` crate (`/dev/net/tun`, `TUNSETIFF` with `IFF_TAP|IFF_NO_PI`, not
//! persistent, close-on-exec). `TUNSETIFF` without `IFF_TUN_EXCL` attaches to an existing
//! *persistent* TAP of the same name, which would outlive udplb and keep the routes
//! announced (fail open). So an existing interface of that name is refused before the
//! call ([`LivenessError::Exists`]), looked up with `if_nametoindex` in this network
//! namespace.

use tun::AbstractDevice;

/// Why the liveness interface could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    /// An interface of that name exists: a leftover persistent TAP, or another udplb.
    #[error(
        "announce.liveness_interface: an interface named {0:?} already exists (another \
         udplb, or a leftover persistent TAP): routes through it would not be withdrawn when \
         udplb stops; delete it (ip link delete {0}) and start again"
    )]
    Exists(String),
    /// The name is not a valid interface name.
    #[error("announce.liveness_interface: {0:?} is not a valid interface name (1 to 15 bytes, no '/', whitespace or ':')")]
    BadName(String),
    /// The TAP could not be created or its flags changed.
    #[error("liveness interface {name}: {source}")]
    Tap {
        /// The interface name.
        name: String,
        /// What failed.
        source: tun::Error,
    },
}

/// Whether `name` can name a Linux network interface.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0 || b == b'"')
}

/// Whether an interface named `name` exists in this network namespace.
pub fn exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// The liveness TAP. Dropping it deletes the interface.
pub struct Liveness {
    name: String,
    device: tun::Device,
    up: bool,
}

impl Liveness {
    /// Creates the TAP `name`, administratively down.
    ///
    /// # Errors
    /// [`LivenessError::Exists`] when an interface of that name exists; the creation
    /// failure otherwise (no `CAP_NET_ADMIN`, no `/dev/net/tun`).
    pub fn create(name: &str) -> Result<Liveness, LivenessError> {
        if !valid_name(name) {
            return Err(LivenessError::BadName(name.to_owned()));
        }
        if exists(name) {
            return Err(LivenessError::Exists(name.to_owned()));
        }
        let mut config = tun::Configuration::default();
        config.tun_name(name).layer(tun::Layer::L2).down();
        let device = tun::create(&config).map_err(|source| LivenessError::Tap {
            name: name.to_owned(),
            source,
        })?;
        Ok(Liveness {
            name: name.to_owned(),
            device,
            up: false,
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the interface was last set up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Sets the interface administratively up or down (`SIOCSIFFLAGS`); does nothing when
    /// it already is.
    ///
    /// # Errors
    /// The kernel refused the change.
    pub fn set_up(&mut self, up: bool) -> Result<(), LivenessError> {
        if up == self.up {
            return Ok(());
        }
        self.device
            .enabled(up)
            .map_err(|source| LivenessError::Tap {
                name: self.name.clone(),
                source,
            })?;
        self.up = up;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel_rules() {
        assert!(valid_name("udplb-live"));
        assert!(valid_name("a"));
        assert!(valid_name("fifteen-bytes-x"));
        assert!(!valid_name("sixteen-bytes-xx"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a:1"));
        assert!(!valid_name("a\"b"));
        assert!(!valid_name(".."));
        assert!(exists("lo"), "loopback exists in every namespace");
        assert!(!exists("udplb-no-such"));
    }
}
