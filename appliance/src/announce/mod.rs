//! VIPs announced over BGP, health-gated, failing closed. udplb decides; BIRD 2 speaks BGP.
//!
//! - `gate`: what to announce — the liveness interface up while healthy, each VIP while
//!   it has a ready listener and the appliance is not draining, return routes while
//!   healthy ([`decide`]).
//! - `render`: the decision as BIRD configuration, one static protocol per prefix, routed
//!   via the liveness interface, `disabled;` when withheld; written atomically.
//! - `bird`: the control-socket client that sends `configure` ([`BirdClient`]).
//! - `liveness`: the TAP every route goes through; the kernel deletes it when udplb dies,
//!   and BIRD then withdraws everything ([`Liveness`]).
//!
//! [`Announcer`] applies decisions: it talks to BIRD only when the rendered file changes
//! (or an earlier attempt failed, retried every [`RETRY_INTERVAL`]). Order matters: when
//! the liveness interface must go down it goes down first (everything is withdrawn at
//! once, whatever BIRD's state); when it comes up it does so last, after BIRD has the
//! file, so nothing is announced that the file withholds. When BIRD refuses the
//! configuration (a broken include, 8002), every withheld protocol is disabled at run
//! time as a fallback and the file is retried.

mod bird;
mod gate;
mod liveness;
mod render;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use bird::{BirdClient, BirdError, Configured, Reply, ReplyLine};
pub use gate::{decide, host_prefix, listener_ready, vip_readiness, Decision, Phase, Withheld};
pub use liveness::{exists as interface_exists, valid_name as valid_interface_name};
pub use liveness::{Liveness, LivenessError};
pub use render::{protocol_name, render, write_atomic, Entry, RouteKind};

use pipelines::net::IpNet;

use crate::settings::AnnounceSettings;

/// How soon a failed exchange with BIRD (unreachable, refused) is tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// What the announcer needs from the settings.
#[derive(Clone, Debug)]
pub struct AnnounceConfig {
    /// BIRD's control socket.
    pub socket: PathBuf,
    /// The include file.
    pub include: PathBuf,
    /// Control-socket timeout.
    pub timeout: Duration,
    /// The liveness interface's name.
    pub interface: String,
    /// Return routes.
    pub return_routes: Vec<IpNet>,
}

impl From<&AnnounceSettings> for AnnounceConfig {
    fn from(s: &AnnounceSettings) -> Self {
        AnnounceConfig {
            socket: s.bird.socket.clone(),
            include: s.bird.include.clone(),
            timeout: s.bird.timeout.0,
            interface: s.liveness_interface.clone(),
            return_routes: s.return_routes.clone(),
        }
    }
}

/// What the announcer last did, for status and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceStatus {
    /// The liveness interface's name.
    pub interface: String,
    /// Whether it is up.
    pub link_up: bool,
    /// Whether BIRD accepted the current file.
    pub synced: bool,
    /// Every VIP with a listener: announced (`None`) or why not.
    pub vips: Vec<(IpAddr, Option<Withheld>)>,
    /// Return routes and whether they are announced.
    pub return_routes: Vec<(IpNet, bool)>,
    /// The last failure talking to BIRD, if the last attempt failed.
    pub last_error: Option<String>,
}

impl AnnounceStatus {
    /// Whether `vip` is announced: the decision says so, BIRD has it and the liveness
    /// interface is up.
    pub fn announced(&self, withheld: Option<Withheld>) -> bool {
        withheld.is_none() && self.synced && self.link_up
    }

    /// Whether no VIP can be announced any more (the liveness interface is down, or BIRD
    /// accepted a file that withholds every VIP): what a drain waits for.
    pub fn withdrawn(&self) -> bool {
        !self.link_up || (self.synced && self.vips.iter().all(|(_, w)| w.is_some()))
    }
}

/// Applies the gate's decisions: liveness interface, include file, BIRD.
pub struct Announcer {
    config: AnnounceConfig,
    liveness: Liveness,
    /// The file text BIRD last accepted.
    configured: Option<String>,
    /// The file text last written.
    written: Option<String>,
    /// No exchange with BIRD before this (after a failure).
    retry_at: Option<Instant>,
    status: AnnounceStatus,
}

impl Announcer {
    /// Creates the liveness interface (down) and hands BIRD a file that announces
    /// nothing, so a previous run's state never leaks into this one.
    ///
    /// # Errors
    /// The liveness interface could not be created ([`LivenessError::Exists`] when an
    /// interface of that name exists). Then the include file is still rewritten to
    /// announce nothing, so a leftover interface cannot keep VIPs announced.
    pub fn start(config: AnnounceConfig, now: Instant) -> Result<Announcer, LivenessError> {
        let liveness = match Liveness::create(&config.interface) {
            Ok(l) => l,
            Err(e) => {
                let empty = render(&[], &config.interface);
                if let Err(err) = write_atomic(&config.include, &empty)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        BirdClient::connect(&config.socket, config.timeout)
                            .and_then(|mut c| c.configure())
                            .map(drop)
                            .map_err(|e| e.to_string())
                    })
                {
                    log::warn!("announce: could not withdraw through BIRD: {err}");
                }
                return Err(e);
            }
        };
        let status = AnnounceStatus {
            interface: config.interface.clone(),
            ..AnnounceStatus::default()
        };
        let mut announcer = Announcer {
            config,
            liveness,
            configured: None,
            written: None,
            retry_at: None,
            status,
        };
        announcer.apply(
            &Decision {
                link_up: false,
                vips: Default::default(),
                return_routes: false,
            },
            now,
        );
        Ok(announcer)
    }

    /// The state after the last [`Announcer::apply`].
    pub fn status(&self) -> &AnnounceStatus {
        &self.status
    }

    /// The liveness interface's name.
    pub fn interface(&self) -> &str {
        self.liveness.name()
    }

    /// Applies `decision` at `now`.
    pub fn apply(&mut self, decision: &Decision, now: Instant) {
        if !decision.link_up {
            self.set_link(false);
        }
        let text = render(&self.entries(decision), &self.config.interface);
        let due = self.retry_at.is_none_or(|at| now >= at);
        if self.configured.as_deref() != Some(text.as_str()) && due {
            match self.hand_to_bird(&text, decision) {
                Ok(()) => {
                    self.configured = Some(text.clone());
                    self.retry_at = None;
                    self.status.last_error = None;
                }
                Err(e) => {
                    if self.status.last_error.as_deref() != Some(e.as_str()) {
                        log::warn!("announce: {e}; retrying every {RETRY_INTERVAL:?}");
                    }
                    self.configured = None;
                    self.retry_at = Some(now + RETRY_INTERVAL);
                    self.status.last_error = Some(e);
                }
            }
        }
        let synced = self.configured.as_deref() == Some(text.as_str());
        if decision.link_up && synced {
            self.set_link(true);
        }
        self.status.synced = synced;
        self.status.vips = decision.vips.iter().map(|(v, w)| (*v, *w)).collect();
        self.status.return_routes = self
            .config
            .return_routes
            .iter()
            .map(|p| {
                (
                    *p,
                    decision.return_routes && synced && self.liveness.is_up(),
                )
            })
            .collect();
        self.status.link_up = self.liveness.is_up();
    }

    fn entries(&self, decision: &Decision) -> Vec<Entry> {
        let vips = decision.vips.iter().map(|(vip, withheld)| Entry {
            kind: RouteKind::Vip,
            prefix: host_prefix(*vip),
            enabled: withheld.is_none(),
        });
        let returns = self.config.return_routes.iter().map(|p| Entry {
            kind: RouteKind::Return,
            prefix: *p,
            enabled: decision.return_routes,
        });
        vips.chain(returns).collect()
    }

    fn set_link(&mut self, up: bool) {
        if let Err(e) = self.liveness.set_up(up) {
            log::error!("announce: {e}");
        }
    }

    /// Writes `text` (when it changed) and has BIRD read it. On a refused configuration,
    /// disables every withheld protocol at run time before reporting the failure.
    fn hand_to_bird(&mut self, text: &str, decision: &Decision) -> Result<(), String> {
        if self.written.as_deref() != Some(text) {
            write_atomic(&self.config.include, text)
                .map_err(|e| format!("{}: {e}", self.config.include.display()))?;
            self.written = Some(text.to_owned());
        }
        let mut bird = BirdClient::connect(&self.config.socket, self.config.timeout)
            .map_err(|e| e.to_string())?;
        match bird.configure() {
            Ok(_) => Ok(()),
            Err(e @ BirdError::Refused { .. }) => {
                for entry in self.entries(decision).iter().filter(|e| !e.enabled) {
                    // 8003 (no such protocol yet) is as good as disabled.
                    let _ = bird.disable(&protocol_name(entry.kind, entry.prefix));
                }
                Err(format!(
                    "{e} (withheld protocols disabled at run time until the file is accepted)"
                ))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}
