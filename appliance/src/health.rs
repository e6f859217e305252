//! Is this appliance able to serve? The one evaluation behind `GET /healthz` and the
//! announcement gate (`announce`): every port's link is up, every worker polls (its
//! [`Heartbeat`] is recent) and runs the configuration the control plane published.
//!
//! Time is passed in, so tests drive the clock. A worker gets `timeout` to adopt a newly
//! published configuration (it does so at its next round, within microseconds, but an
//! evaluation may land between the publication and that round).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::worker::Heartbeat;

/// One port's link, as the health check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortLink {
    /// The port's name from the settings.
    pub name: String,
    /// Whether the link is up.
    pub up: bool,
}

/// Reads the ports' links (the DPDK ports in the appliance; a fake in tests).
pub trait PortLinks: Send + Sync {
    /// Every port's link, in port order.
    fn links(&self) -> Vec<PortLink>;
}

/// Why the appliance cannot serve.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// A port's link is down.
    PortDown {
        /// The port's name.
        port: String,
    },
    /// A worker has not completed a poll round yet.
    NeverPolled {
        /// The worker's index.
        worker: usize,
    },
    /// A worker's last round is older than the limit: it is stuck or starved.
    HeartbeatStale {
        /// The worker's index.
        worker: usize,
        /// Age of its last round.
        age: Duration,
        /// The limit.
        limit: Duration,
    },
    /// A worker still runs an older configuration than the one published.
    ConfigNotApplied {
        /// The worker's index.
        worker: usize,
        /// Tables generation it runs.
        running: u64,
        /// Tables generation the control plane published.
        published: u64,
    },
    /// A graceful stop has begun.
    Stopping,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::PortDown { port } => write!(f, "port {port}: link down"),
            Problem::NeverPolled { worker } => write!(f, "worker {worker}: has not polled yet"),
            Problem::HeartbeatStale { worker, age, limit } => write!(
                f,
                "worker {worker}: heartbeat {:.1} s old (limit {:.1} s)",
                age.as_secs_f64(),
                limit.as_secs_f64()
            ),
            Problem::ConfigNotApplied {
                worker,
                running,
                published,
            } => write!(
                f,
                "worker {worker}: runs tables generation {running}, not the published {published}"
            ),
            Problem::Stopping => f.write_str("stopping"),
        }
    }
}

/// The outcome of one evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// Every problem found; none = healthy.
    pub problems: Vec<Problem>,
    /// Each worker's heartbeat age (`None`: never polled), in worker order.
    pub heartbeat_ages: Vec<Option<Duration>>,
}

impl Health {
    /// No problem.
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems as text, one per line.
    pub fn reasons(&self) -> Vec<String> {
        self.problems.iter().map(ToString::to_string).collect()
    }
}

/// The health check: what it reads and its limit.
pub struct HealthCheck {
    links: Option<Arc<dyn PortLinks>>,
    heartbeats: Vec<Arc<Heartbeat>>,
    timeout: Duration,
    /// The published generation last seen, and when it was first seen.
    published: Mutex<(u64, Option<Instant>)>,
}

impl HealthCheck {
    /// Checks `links` (none: no ports to check) and the workers' `heartbeats`, which are
    /// stale after `timeout`.
    pub fn new(
        links: Option<Arc<dyn PortLinks>>,
        heartbeats: Vec<Arc<Heartbeat>>,
        timeout: Duration,
    ) -> HealthCheck {
        HealthCheck {
            links,
            heartbeats,
            timeout,
            published: Mutex::new((0, None)),
        }
    }

    /// The workers' heartbeats, in worker order.
    pub fn heartbeats(&self) -> &[Arc<Heartbeat>] {
        &self.heartbeats
    }

    /// Evaluates at `now`, the control plane having published tables generation
    /// `published`.
    pub fn evaluate(&self, now: Instant, published: u64) -> Health {
        let mut health = Health::default();
        if let Some(links) = &self.links {
            for link in links.links() {
                if !link.up {
                    health.problems.push(Problem::PortDown { port: link.name });
                }
            }
        }
        let adopting = self.within_adoption_time(now, published);
        for (worker, hb) in self.heartbeats.iter().enumerate() {
            let age = hb.age(now);
            health.heartbeat_ages.push(age);
            match age {
                None => health.problems.push(Problem::NeverPolled { worker }),
                Some(age) if age > self.timeout => health.problems.push(Problem::HeartbeatStale {
                    worker,
                    age,
                    limit: self.timeout,
                }),
                Some(_) => {}
            }
            let running = hb.generation();
            if running != published && !adopting {
                health.problems.push(Problem::ConfigNotApplied {
                    worker,
                    running,
                    published,
                });
            }
        }
        health
    }

    /// Whether `published` was first seen less than `timeout` ago (workers may not have
    /// polled since).
    fn within_adoption_time(&self, now: Instant, published: u64) -> bool {
        let mut seen = self.published.lock().unwrap_or_else(|e| e.into_inner());
        match *seen {
            (generation, Some(at)) if generation == published => {
                now.saturating_duration_since(at) < self.timeout
            }
            _ => {
                *seen = (published, Some(now));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Links(Mutex<Vec<PortLink>>);

    impl PortLinks for Links {
        fn links(&self) -> Vec<PortLink> {
            self.0.lock().expect("lock").clone()
        }
    }

    fn link(name: &str, up: bool) -> PortLink {
        PortLink {
            name: name.into(),
            up,
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn healthy_only_with_links_up_recent_heartbeats_and_the_published_tables() {
        let t0 = Instant::now();
        let links = Arc::new(Links(Mutex::new(vec![
            link("edge", true),
            link("backends", true),
        ])));
        let hbs = vec![Heartbeat::new(t0), Heartbeat::new(t0)];
        let check = HealthCheck::new(
            Some(Arc::clone(&links) as Arc<dyn PortLinks>),
            hbs.clone(),
            500 * MS,
        );
        // Before any round: both workers reported.
        let h = check.evaluate(t0, 5);
        assert_eq!(
            h.problems,
            [
                Problem::NeverPolled { worker: 0 },
                Problem::NeverPolled { worker: 1 }
            ]
        );
        for hb in &hbs {
            hb.adopted(5);
            hb.beat(t0 + 100 * MS);
        }
        let h = check.evaluate(t0 + 200 * MS, 5);
        assert!(h.is_healthy(), "{:?}", h.problems);
        assert_eq!(h.heartbeat_ages, [Some(100 * MS), Some(100 * MS)]);

        // Worker 1 stops polling: stale once older than the limit, not before.
        hbs[0].beat(t0 + 600 * MS);
        assert!(check.evaluate(t0 + 600 * MS, 5).is_healthy());
        let h = check.evaluate(t0 + 2400 * MS, 5);
        assert!(h.problems.contains(&Problem::HeartbeatStale {
            worker: 1,
            age: 2300 * MS,
            limit: 500 * MS
        }));
        assert!(h
            .reasons()
            .contains(&"worker 1: heartbeat 2.3 s old (limit 0.5 s)".to_owned()));

        // A port goes down.
        hbs[0].beat(t0 + 2400 * MS);
        hbs[1].beat(t0 + 2400 * MS);
        links.0.lock().expect("lock")[0].up = false;
        let h = check.evaluate(t0 + 2400 * MS, 5);
        assert_eq!(
            h.problems,
            [Problem::PortDown {
                port: "edge".into()
            }]
        );
        assert_eq!(h.reasons(), ["port edge: link down"]);
    }

    #[test]
    fn a_new_configuration_must_be_adopted_within_the_timeout() {
        let t0 = Instant::now();
        let hb = Heartbeat::new(t0);
        hb.adopted(1);
        let check = HealthCheck::new(None, vec![Arc::clone(&hb)], 500 * MS);
        hb.beat(t0);
        assert!(check.evaluate(t0, 1).is_healthy());
        // Generation 2 is published; the worker has not polled since: tolerated for the
        // timeout, then reported.
        hb.beat(t0 + 100 * MS);
        assert!(check.evaluate(t0 + 100 * MS, 2).is_healthy());
        hb.beat(t0 + 700 * MS);
        let h = check.evaluate(t0 + 700 * MS, 2);
        assert_eq!(
            h.problems,
            [Problem::ConfigNotApplied {
                worker: 0,
                running: 1,
                published: 2
            }]
        );
        hb.adopted(2);
        assert!(check.evaluate(t0 + 800 * MS, 2).is_healthy());
    }
}
