//! Graceful shutdown: first every announced route is withdrawn (liveness interface down,
//! every protocol disabled); then the commit gate closes, so a compile still running is
//! abandoned and nothing changes the configuration any more; if something was
//! announced, udplb keeps forwarding for `announce.stop_grace` while the routers
//! converge; then start-up in reverse (API: calls in flight answered, `503` for those
//! waiting on a change, within a second; watcher, signals, workers, slow path, ports),
//! then every mbuf must be back in its pool; then the EAL and its runtime directory go.
//! The liveness interface is deleted last, at exit. The stop never waits for a compile
//! (appliance/README.md, "Stop", gives the whole bound).

use super::start::Running;
use super::RunError;
use crate::dpdk::{Eal, RuntimeDir};
use crate::slowpath::SlowPathMsg;

impl Running {
    /// Stops everything and checks that no mbuf leaked.
    ///
    /// # Errors
    /// [`RunError::LeakedMbufs`] when mbufs did not come back to the pool.
    pub fn shutdown(self) -> Result<(), RunError> {
        let Running {
            eal,
            runtime_dir,
            pool,
            ports,
            plane,
            workers,
            slow_path,
            inject_rx,
            management,
            supervisor,
            supervise,
            stop_grace,
        } = self;
        let announced = supervisor.announces();
        let announcer = supervise.stop();
        if announcer.is_some() {
            log::info!("announced routes withdrawn");
        }
        management.server.close_commits();
        if announcer.is_some() && announced && !stop_grace.is_zero() {
            log::info!("forwarding for {stop_grace:?} more while the routers converge");
            std::thread::sleep(stop_grace);
        }
        drop(supervisor);
        management.server.shutdown();
        drop(management.watcher);
        drop(management.signals);
        workers.stop();
        let _ = slow_path.tx.send(SlowPathMsg::Shutdown);
        drop(slow_path.tx);
        if slow_path.thread.join().is_err() {
            log::error!("the slow path thread panicked");
        }
        // The control plane holds the slow path's and the ports' other ends.
        drop(plane);
        let parked_by_af_xdp = ports.parked_by_af_xdp;
        ports.with(|ports| {
            for mut port in std::mem::take(ports) {
                if let Err(e) = port.stop() {
                    log::warn!("stopping port {}: {e}", port.name());
                }
            }
        });
        drop(ports);
        // Slow-path frames nobody sent any more go back to the pool.
        drop(inject_rx);
        let in_use = pool.in_use();
        let leaked = in_use.saturating_sub(parked_by_af_xdp);
        if in_use > leaked {
            log::info!(
                "{} mbufs stay with the closed net_af_xdp ports (fill rings and TX completions \
                 the PMD does not return; not a leak)",
                in_use - leaked
            );
        }
        log::info!("shutdown complete: {leaked} mbufs outstanding");
        drop(pool);
        finish_eal(eal, runtime_dir);
        drop(announcer);
        if leaked != 0 {
            return Err(RunError::LeakedMbufs(leaked));
        }
        Ok(())
    }
}

/// Releases the EAL and removes its runtime directory, which DPDK leaves behind. Cleanup is
/// refused while a mempool lives on (mbufs still out); the process exits right after, so
/// the directory goes either way.
fn finish_eal(eal: Eal, runtime_dir: Option<RuntimeDir>) {
    if let Err(e) = eal.cleanup() {
        log::info!("EAL not cleaned up, exiting without: {e}");
    }
    let Some(dir) = runtime_dir else {
        return;
    };
    match dir.remove() {
        Ok(true) => log::info!("removed DPDK runtime directory {}", dir.path().display()),
        Ok(false) => log::info!(
            "left DPDK runtime directory {}: it holds files of other processes (without a \
             shared configuration they may use the same file prefix)",
            dir.path().display()
        ),
        Err(e) => log::warn!(
            "cannot remove DPDK runtime directory {}: {e}",
            dir.path().display()
        ),
    }
}
