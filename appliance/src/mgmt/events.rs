//! Management events (reload, shutdown) and the signals that raise them.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use signal_hook::SigId;

/// What the management loop is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MgmtEvent {
    /// Reload the manifests from their files.
    Reload(ReloadReason),
    /// Stop gracefully: workers, ports, exit 0.
    Shutdown(ShutdownSignal),
}

/// Why a reload was asked for (for the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadReason {
    /// SIGHUP was received.
    Sighup,
    /// These manifest files changed, appeared or disappeared.
    FilesChanged(Vec<PathBuf>),
}

/// The signal that asked for shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

/// Forwards SIGHUP, SIGINT and SIGTERM to a channel as [`MgmtEvent`]s.
///
/// A second SIGINT or SIGTERM, once shutdown has been asked for, exits at once (status
/// 130), so a stuck shutdown can still be interrupted.
pub struct SignalListener {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
    forced_exit: Vec<SigId>,
}

impl SignalListener {
    /// Installs the handlers and starts the forwarding thread. The signals no longer have
    /// their default effect until [`SignalListener::close`] (or drop).
    ///
    /// # Errors
    /// If a handler cannot be registered or the thread cannot be created.
    pub fn start(events: Sender<MgmtEvent>) -> std::io::Result<SignalListener> {
        let armed = Arc::new(AtomicBool::new(false));
        let mut forced_exit = Vec::new();
        for signal in [SIGINT, SIGTERM] {
            // The exit must be registered before the flag that arms it.
            forced_exit.push(signal_hook::flag::register_conditional_shutdown(
                signal,
                130,
                Arc::clone(&armed),
            )?);
            forced_exit.push(signal_hook::flag::register(signal, Arc::clone(&armed))?);
        }
        let mut signals = Signals::new([SIGHUP, SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("udplb-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    let event = match signal {
                        SIGHUP => MgmtEvent::Reload(ReloadReason::Sighup),
                        SIGINT => MgmtEvent::Shutdown(ShutdownSignal::Interrupt),
                        _ => MgmtEvent::Shutdown(ShutdownSignal::Terminate),
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
            })?;
        Ok(SignalListener {
            handle,
            thread: Some(thread),
            forced_exit,
        })
    }

    /// Stops forwarding, removes the forced-exit handlers and joins the thread.
    pub fn close(mut self) {
        self.close_and_join();
    }

    fn close_and_join(&mut self) {
        for id in self.forced_exit.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SignalListener {
    fn drop(&mut self) {
        self.close_and_join();
    }
}
