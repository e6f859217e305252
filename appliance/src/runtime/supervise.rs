//! The supervisor: the management thread's view of whether this appliance can serve, and
//! what it announces. Every `announce.interval` (and at once on a configuration change or
//! a drain command) it evaluates the health ([`crate::health`]), advances the drain
//! ([`crate::drain`]), decides what to announce ([`crate::announce::decide`]) and, when
//! announcing is configured, has the [`Announcer`] apply it. `/healthz`, `/v1/drain`, the
//! status and the metrics read the same state.
//!
//! Time is passed in ([`Supervisor::tick`]), so tests drive the clock without a thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use serde_json::json;

use crate::announce::{decide, vip_readiness, AnnounceStatus, Announcer, Decision, Phase};
use crate::control::ControlPlane;
use crate::drain::{Drain, DrainReport};
use crate::health::{Health, HealthCheck, Problem};
use crate::metrics::ApplianceSample;

/// What wakes the supervisor thread before its interval.
enum Wake {
    /// Evaluate now (configuration change, drain command).
    Now,
    /// Withdraw everything and return.
    Stop,
}

/// Health, drain and announcement state, shared by the supervisor thread and the
/// management API.
pub struct Supervisor {
    plane: Arc<ControlPlane>,
    health: HealthCheck,
    drain_default: Duration,
    drain: Mutex<Drain>,
    /// The last decision, and the announcer's state after applying it (`None` when
    /// announcing is not configured).
    announce: Mutex<(Option<Decision>, Option<AnnounceStatus>)>,
    announcing: bool,
    stopping: AtomicBool,
    wake_tx: Sender<Wake>,
    wake_rx: Receiver<Wake>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Supervisor {
    /// A supervisor over `plane` checking `health`; drains without a deadline wait
    /// `drain_default`; `announcing` says whether an [`Announcer`] will be driven.
    pub fn new(
        plane: Arc<ControlPlane>,
        health: HealthCheck,
        drain_default: Duration,
        announcing: bool,
    ) -> Arc<Supervisor> {
        let (wake_tx, wake_rx) = bounded(16);
        Arc::new(Supervisor {
            plane,
            health,
            drain_default,
            drain: Mutex::new(Drain::default()),
            announce: Mutex::new((None, None)),
            announcing,
            stopping: AtomicBool::new(false),
            wake_tx,
            wake_rx,
        })
    }

    /// The health at `now` (a graceful stop in progress is a problem too).
    pub fn health(&self, now: Instant) -> Health {
        let mut health = self.health.evaluate(now, self.plane.tables().generation());
        if self.stopping.load(Ordering::SeqCst) {
            health.problems.push(Problem::Stopping);
        }
        health
    }

    /// Flows in the flow tables (as of the workers' last reports).
    pub fn flows(&self) -> u64 {
        self.plane.sums().fast_path.flows_active
    }

    fn phase(&self) -> Phase {
        if self.stopping.load(Ordering::SeqCst) {
            Phase::Stopping
        } else if lock(&self.drain).withdraws() {
            Phase::Draining
        } else {
            Phase::Serving
        }
    }

    /// One evaluation at `now`: decide, apply through `announcer` (when announcing),
    /// advance the drain.
    pub fn tick(&self, now: Instant, announcer: Option<&mut Announcer>) {
        let healthy = self.health(now).is_healthy();
        let decision = decide(healthy, self.phase(), &vip_readiness(&self.plane.tables()));
        let status = announcer.map(|a| {
            a.apply(&decision, now);
            a.status().clone()
        });
        // Without announcing there is nothing to wait for.
        let withdrawn = status.as_ref().is_none_or(AnnounceStatus::withdrawn);
        let flows = self.flows();
        lock(&self.drain).update(now, flows, withdrawn);
        *lock(&self.announce) = (Some(decision), status);
    }

    /// Asks the supervisor thread to evaluate now.
    pub fn wake(&self) {
        let _ = self.wake_tx.try_send(Wake::Now);
    }

    /// Starts draining at `now` (`deadline`: the settings' default when `None`).
    pub fn drain(&self, now: Instant, deadline: Option<Duration>) -> DrainReport {
        let deadline = deadline.unwrap_or(self.drain_default);
        lock(&self.drain).start(now, deadline);
        log::info!("drain requested: VIPs withdrawn, flows served for up to {deadline:?}");
        self.wake();
        self.drain_report(now)
    }

    /// Cancels a drain at `now`.
    pub fn undrain(&self, now: Instant) -> DrainReport {
        if lock(&self.drain).cancel() {
            log::info!("drain cancelled: VIPs announced again when ready");
        }
        self.wake();
        self.drain_report(now)
    }

    /// Where the drain stands at `now`.
    pub fn drain_report(&self, now: Instant) -> DrainReport {
        let flows = self.flows();
        lock(&self.drain).report(now, flows)
    }

    /// Whether any VIP is announced now.
    pub fn announces(&self) -> bool {
        let guard = lock(&self.announce);
        match &*guard {
            (Some(d), Some(s)) => s.link_up && s.synced && d.announced().next().is_some(),
            _ => false,
        }
    }

    /// The metrics sample at `now`.
    pub fn sample(&self, now: Instant) -> ApplianceSample {
        let health = self.health(now);
        let vips = match &*lock(&self.announce) {
            (_, Some(status)) => status
                .vips
                .iter()
                .map(|(vip, withheld)| (vip.to_string(), status.announced(*withheld)))
                .collect(),
            _ => Vec::new(),
        };
        ApplianceSample {
            healthy: health.is_healthy(),
            heartbeat_ages: health
                .heartbeat_ages
                .iter()
                .map(|a| a.map(|d| d.as_secs_f64()))
                .collect(),
            drain_state: self.drain_report(now).state,
            vips,
        }
    }

    /// The `kind: ApplianceStatus` document appended to `GET /v1/status`.
    pub fn status_document(&self, now: Instant) -> String {
        let health = self.health(now);
        let drain = self.drain_report(now);
        let workers: Vec<_> = health
            .heartbeat_ages
            .iter()
            .enumerate()
            .map(|(w, age)| json!({"worker": w, "heartbeatAgeSeconds": age.map(|d| d.as_secs_f64())}))
            .collect();
        let announce = match &*lock(&self.announce) {
            (_, Some(s)) => json!({
                "livenessInterface": {"name": s.interface, "up": s.link_up},
                "bird": {"synced": s.synced, "lastError": s.last_error},
                "vips": s.vips.iter().map(|(vip, withheld)| json!({
                    "vip": vip.to_string(),
                    "announced": s.announced(*withheld),
                    "reason": withheld.map(|w| w.to_string()),
                })).collect::<Vec<_>>(),
                "returnRoutes": s.return_routes.iter().map(|(p, on)| json!({
                    "prefix": p.to_string(), "announced": on,
                })).collect::<Vec<_>>(),
            }),
            _ => serde_json::Value::Null,
        };
        let tables = self.plane.tables();
        let shared: Vec<_> = tables
            .shared_endpoints()
            .iter()
            .map(|e| e.addr.to_string())
            .collect();
        let doc = json!({
            "apiVersion": "udplb.io/v1alpha1",
            "kind": "ApplianceStatus",
            "metadata": {"name": "appliance"},
            "status": {
                "healthy": health.is_healthy(),
                "problems": health.reasons(),
                "workers": workers,
                "drain": {
                    "state": drain.state,
                    "flowsRemaining": drain.flows_remaining,
                    "elapsedMs": drain.elapsed_ms,
                    "deadlineInMs": drain.deadline_in_ms,
                    "endedBy": drain.ended_by,
                },
                "announce": announce,
                "sharedEndpoints": shared,
            },
        });
        let yaml = serde_norway::to_string(&doc).unwrap_or_default();
        format!("---\n{yaml}")
    }

    /// Whether an announcer is driven.
    pub fn announcing(&self) -> bool {
        self.announcing
    }

    /// Runs the supervisor on its own thread, every `interval` and whenever woken.
    ///
    /// # Errors
    /// The thread could not be created.
    pub fn spawn(
        self: &Arc<Self>,
        announcer: Option<Announcer>,
        interval: Duration,
    ) -> std::io::Result<SupervisorThread> {
        let me = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("udplb-supervise".into())
            .spawn(move || me.run(announcer, interval))?;
        Ok(SupervisorThread {
            supervisor: Arc::clone(self),
            thread,
        })
    }

    fn run(&self, mut announcer: Option<Announcer>, interval: Duration) -> Option<Announcer> {
        loop {
            match self.wake_rx.recv_timeout(interval) {
                Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Wake::Now) | Err(RecvTimeoutError::Timeout) => {}
            }
            self.tick(Instant::now(), announcer.as_mut());
        }
        // Stopping: withdraw everything before the caller stops workers and ports.
        self.tick(Instant::now(), announcer.as_mut());
        announcer
    }

    /// Marks a graceful stop: `/healthz` answers 503 and everything is withdrawn at the
    /// next evaluation.
    pub fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

/// The supervisor's thread.
pub struct SupervisorThread {
    supervisor: Arc<Supervisor>,
    thread: JoinHandle<Option<Announcer>>,
}

impl SupervisorThread {
    /// Withdraws everything (liveness interface down, every protocol disabled), stops the
    /// thread and returns the announcer: keep it until the process ends (dropping it
    /// deletes the liveness interface).
    pub fn stop(self) -> Option<Announcer> {
        self.supervisor.begin_stop();
        // The channel is bounded: wait for room rather than lose the stop.
        let _ = self.supervisor.wake_tx.send(Wake::Stop);
        match self.thread.join() {
            Ok(announcer) => announcer,
            Err(_) => {
                log::error!("the supervisor thread panicked");
                None
            }
        }
    }
}
