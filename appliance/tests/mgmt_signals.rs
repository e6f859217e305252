//! SIGHUP becomes a reload and SIGTERM a shutdown event. Signals are process-wide, so this
//! file holds a single test and runs as its own process.

#![allow(clippy::tests_outside_test_module)]

use std::time::Duration;

use appliance::mgmt::{MgmtEvent, ReloadReason, ShutdownSignal, SignalListener};
use signal_hook::consts::{SIGHUP, SIGTERM};
use signal_hook::low_level::raise;

#[test]
fn signals_become_management_events() {
    let (tx, events) = crossbeam_channel::unbounded();
    let listener = SignalListener::start(tx).expect("install signal handlers");
    // Bounded waits guard against hangs; they are not timing checks.
    let wait = Duration::from_secs(10);

    raise(SIGHUP).expect("raise SIGHUP");
    assert_eq!(
        events.recv_timeout(wait),
        Ok(MgmtEvent::Reload(ReloadReason::Sighup))
    );
    raise(SIGHUP).expect("raise SIGHUP again");
    assert_eq!(
        events.recv_timeout(wait),
        Ok(MgmtEvent::Reload(ReloadReason::Sighup))
    );
    // One SIGTERM only: a second one would (by design) exit the process at once.
    raise(SIGTERM).expect("raise SIGTERM");
    assert_eq!(
        events.recv_timeout(wait),
        Ok(MgmtEvent::Shutdown(ShutdownSignal::Terminate))
    );
    listener.close();
    assert!(
        events.recv_timeout(Duration::from_millis(100)).is_err(),
        "the forwarding thread has ended"
    );
}
