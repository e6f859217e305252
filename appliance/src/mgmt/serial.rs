//! Commands that change the configuration run here, one at a time, on a thread of their
//! own: the HTTP server and the management loop (file changes, SIGHUP) hand them over and
//! never wait on a compile themselves, so a stop is never held up by one.
//!
//! At stop, [`Serial::close`] closes the handler (nothing commits any more); a compile
//! still running is abandoned: its thread is not joined and dies with the process, and
//! whoever waits for its answer is told the appliance is shutting down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use super::command::{MgmtCommand, MgmtError, MgmtHandler, MgmtReply};
use super::events::ReloadReason;

/// A command's result.
pub type Outcome<H> = Result<MgmtReply, MgmtError<<H as MgmtHandler>::Refusal>>;

struct Job<H: MgmtHandler> {
    command: MgmtCommand,
    /// `None`: nobody waits (reloads); the result is logged.
    reply: Option<oneshot::Sender<Outcome<H>>>,
}

/// The handle on the serial command thread (cheap to clone).
pub struct Serial<H: MgmtHandler> {
    jobs: Sender<Job<H>>,
    handler: Arc<H>,
    /// A reload is queued already: file events arriving meanwhile join it.
    reload_queued: Arc<AtomicBool>,
}

impl<H: MgmtHandler> Clone for Serial<H> {
    fn clone(&self) -> Self {
        Serial {
            jobs: self.jobs.clone(),
            handler: Arc::clone(&self.handler),
            reload_queued: Arc::clone(&self.reload_queued),
        }
    }
}

impl<H: MgmtHandler> Serial<H> {
    /// Starts the thread.
    ///
    /// # Errors
    /// The thread cannot be created.
    pub fn start(handler: Arc<H>) -> std::io::Result<Serial<H>> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job<H>>();
        let reload_queued = Arc::new(AtomicBool::new(false));
        std::thread::Builder::new()
            .name("udplb-apply".into())
            .spawn({
                let handler = Arc::clone(&handler);
                let reload_queued = Arc::clone(&reload_queued);
                move || run(&*handler, &queue, &reload_queued)
            })?;
        Ok(Serial {
            jobs,
            handler,
            reload_queued,
        })
    }

    /// Queues `command`; the receiver gets its result (or is dropped if the thread is
    /// gone).
    pub fn submit(&self, command: MgmtCommand) -> oneshot::Receiver<Outcome<H>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.jobs.send(Job {
            command,
            reply: Some(tx),
        });
        rx
    }

    /// Queues a reload of the files, unless one is queued already; its result is logged.
    pub fn reload(&self, reason: ReloadReason) {
        if self.reload_queued.swap(true, Ordering::SeqCst) {
            log::debug!("reload ({reason:?}) joins the one already queued");
            return;
        }
        let _ = self.jobs.send(Job {
            command: MgmtCommand::Reload(reason),
            reply: None,
        });
    }

    /// No command may change the configuration from now on; a compile still running is
    /// abandoned (its thread is never joined).
    pub fn close(&self) {
        self.handler.close();
    }

    /// The handler, for commands that answer at once.
    pub fn handler(&self) -> &Arc<H> {
        &self.handler
    }
}

fn run<H: MgmtHandler>(handler: &H, queue: &Receiver<Job<H>>, reload_queued: &AtomicBool) {
    for job in queue {
        if let MgmtCommand::Reload(reason) = &job.command {
            reload_queued.store(false, Ordering::SeqCst);
            log::debug!("reloading manifest files ({reason:?})");
        }
        let name = job.command.name();
        let reason = match &job.command {
            MgmtCommand::Reload(reason) => Some(reason.clone()),
            _ => None,
        };
        let result = handler.handle(job.command);
        match job.reply {
            Some(reply) => {
                let _ = reply.send(result);
            }
            None => match result {
                Ok(_) => log::debug!("{name} ({reason:?}) done"),
                Err(MgmtError::WrongSource(why)) => log::info!("{name} ({reason:?}): {why}"),
                Err(e) => log::error!(
                    "manifests refused ({reason:?}), still serving the previous set:\n{e}"
                ),
            },
        }
    }
}
