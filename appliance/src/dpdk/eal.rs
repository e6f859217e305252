//! The Environment Abstraction Layer: initialised once per process, lcore enumeration,
//! running closures on lcores, registering plain threads, and cleanup.
//!
//! DPDK keeps its state in process globals, so this module does too: a state machine
//! (not initialised → running → cleaned up) and a count of live DPDK objects (mempools and
//! ports), so that `cleanup` cannot free memory that a live object still points into.

use std::ffi::{c_int, c_void, CStr, CString, OsStr};
use std::io;
use std::marker::PhantomData;
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;

use super::error::{check, DpdkError, Result};
use super::ffi;
use super::ids::{LcoreId, SocketId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EalState {
    Uninitialised,
    Running,
    CleanedUp,
}

static STATE: Mutex<EalState> = Mutex::new(EalState::Uninitialised);

/// Mempools and ports alive (leaked mempools stay counted), which `cleanup` waits for.
static LIVE_OBJECTS: AtomicUsize = AtomicUsize::new(0);

/// Whether the EAL runs with a shared configuration (neither `--no-shconf` nor
/// `--in-memory`): a primary process then holds its file prefix exclusively.
static SHARED_CONFIG: AtomicBool = AtomicBool::new(true);

fn state() -> EalState {
    // A poisoned lock only means a panic elsewhere; the state value itself is always valid.
    *STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates a DPDK object that must be freed before `rte_eal_cleanup` (mempool, port, ring)
/// and counts it; pair with [`object_released`]. The state lock is held during `create`, so
/// a concurrent [`Eal::cleanup`] cannot free the EAL under it.
pub(crate) fn create_object<R>(create: impl FnOnce() -> Result<R>) -> Result<R> {
    let state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    match *state {
        EalState::Running => {}
        EalState::Uninitialised => return Err(DpdkError::EalNotInitialised),
        EalState::CleanedUp => return Err(DpdkError::EalCleanedUp),
    }
    let object = create()?;
    LIVE_OBJECTS.fetch_add(1, Ordering::SeqCst);
    Ok(object)
}

/// The running EAL, or the reason it is not running.
pub(crate) fn running() -> Result<Eal> {
    match state() {
        EalState::Running => Ok(Eal { _private: () }),
        EalState::Uninitialised => Err(DpdkError::EalNotInitialised),
        EalState::CleanedUp => Err(DpdkError::EalCleanedUp),
    }
}

/// Uncounts a mempool or port whose DPDK resources were freed.
pub(crate) fn object_released() {
    LIVE_OBJECTS.fetch_sub(1, Ordering::SeqCst);
}

/// Proof that the EAL is running in this process. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Initialises the EAL with `args` (without a program name: `["-l", "0", "--no-huge", ...]`).
    ///
    /// The calling thread becomes the main lcore and is pinned to its CPU.
    ///
    /// # Errors
    /// [`DpdkError::EalAlreadyInitialised`] on a second call (use [`Eal::get`] to reach the
    /// running EAL), [`DpdkError::EalCleanedUp`] after [`Eal::cleanup`] (DPDK cannot be
    /// restarted in a process), [`DpdkError::InvalidArgument`] for an argument with a NUL byte,
    /// or the `rte_eal_init` failure (bad argument, no memory, device probe failure).
    pub fn init(args: &[String]) -> Result<Eal> {
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        match *state {
            EalState::Running => return Err(DpdkError::EalAlreadyInitialised),
            EalState::CleanedUp => return Err(DpdkError::EalCleanedUp),
            EalState::Uninitialised => {}
        }
        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(CString::from(c"udplb"));
        for arg in args {
            owned.push(
                CString::new(arg.as_str()).map_err(|_| DpdkError::InvalidArgument {
                    what: "EAL argument",
                    reason: format!("{arg:?} contains a NUL byte"),
                })?,
            );
        }
        // rte_eal_init permutes argv (getopt), so it gets its own pointer array; the strings
        // stay owned by `owned` for the whole call.
        let mut argv: Vec<*mut std::ffi::c_char> =
            owned.iter().map(|s| s.as_ptr().cast_mut()).collect();
        let argc = c_int::try_from(argv.len()).map_err(|_| DpdkError::InvalidArgument {
            what: "EAL arguments",
            reason: format!("{} arguments are too many", argv.len()),
        })?;
        // SAFETY: argv holds argc valid NUL-terminated strings that outlive the call; DPDK
        // only reorders the pointers. The state lock serialises initialisation.
        let ret = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let err = DpdkError::from_rte_errno("rte_eal_init");
            if err.errno() == Some(libc::EALREADY) {
                // DPDK refuses a second init (even after a failed one): record that truthfully.
                *state = EalState::CleanedUp;
            }
            return Err(err);
        }
        // Some EAL versions keep pointers into argv; a few bytes once per process are cheap.
        std::mem::forget(owned);
        let unshared = args
            .iter()
            .any(|a| a == "--no-shconf" || a == "--in-memory");
        SHARED_CONFIG.store(!unshared, Ordering::Relaxed);
        *state = EalState::Running;
        Ok(Eal { _private: () })
    }

    /// The running EAL, if [`Eal::init`] succeeded and [`Eal::cleanup`] has not run.
    pub fn get() -> Option<Eal> {
        (state() == EalState::Running).then_some(Eal { _private: () })
    }

    /// The EAL's runtime directory (`/var/run/dpdk/<file-prefix>` for root) when this is
    /// the primary process, which made it; `None` in a secondary process (the directory is
    /// its primary's). DPDK leaves the directory behind: see [`RuntimeDir::remove`].
    pub fn runtime_dir(&self) -> Option<RuntimeDir> {
        // SAFETY: reads EAL configuration, valid while the EAL runs (guaranteed by `self`).
        if unsafe { ffi::rte_eal_process_type() } != ffi::RTE_PROC_PRIMARY {
            return None;
        }
        // SAFETY: as above; the result points to a NUL-terminated static buffer of the EAL
        // (or is null), copied at once.
        let ptr = unsafe { ffi::rte_eal_get_runtime_dir() };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: non-null, NUL-terminated, alive for the process (a static EAL buffer).
        let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
        (!bytes.is_empty()).then(|| RuntimeDir {
            path: PathBuf::from(OsStr::from_bytes(bytes)),
            exclusive: SHARED_CONFIG.load(Ordering::Relaxed),
        })
    }

    /// The main lcore (the thread that called [`Eal::init`]).
    pub fn main_lcore(&self) -> LcoreId {
        // SAFETY: reads EAL configuration, valid while the EAL runs (guaranteed by `self`).
        LcoreId(unsafe { ffi::rte_get_main_lcore() })
    }

    /// Every enabled lcore, main first.
    pub fn lcores(&self) -> Vec<LcoreId> {
        let mut all = vec![self.main_lcore()];
        all.extend(self.worker_lcores());
        all
    }

    /// The enabled lcores other than the main one: where workers are launched.
    pub fn worker_lcores(&self) -> Vec<LcoreId> {
        let mut out = Vec::new();
        let mut next = u32::MAX; // rte_get_next_lcore starts after `i`, so -1 means "from 0"
        loop {
            // SAFETY: pure lookup in the EAL lcore table; skip_main=1, wrap=0 make it end
            // with RTE_MAX_LCORE.
            next = unsafe { ffi::rte_get_next_lcore(next, 1, 0) };
            if next >= ffi::RTE_MAX_LCORE {
                return out;
            }
            out.push(LcoreId(next));
        }
    }

    /// The lcore of the calling thread, or `None` on a thread unknown to the EAL (where the
    /// mempool per-lcore cache is bypassed; see [`Eal::register_thread`]).
    pub fn current_lcore(&self) -> Option<LcoreId> {
        // SAFETY: reads a thread-local; no preconditions.
        let id = unsafe { ffi::rte_lcore_id() };
        (id < ffi::RTE_MAX_LCORE).then_some(LcoreId(id))
    }

    /// The NUMA socket of `lcore` (0 on single-socket machines).
    pub fn socket_of(&self, lcore: LcoreId) -> SocketId {
        // SAFETY: bounds-checked lookup in the EAL lcore table.
        let socket = unsafe { ffi::rte_lcore_to_socket_id(lcore.0) };
        SocketId(i32::try_from(socket).unwrap_or(ffi::SOCKET_ID_ANY))
    }

    /// Runs `f` on the worker lcore `lcore` (`rte_eal_remote_launch`) and returns a handle
    /// to wait for its result. A panic in `f` is caught at the C boundary and reported by
    /// [`LcoreJob::wait`].
    ///
    /// # Errors
    /// [`DpdkError::InvalidArgument`] if `lcore` is the main lcore or not enabled;
    /// `EBUSY` if a previous job on that lcore has not finished.
    pub fn launch<F, T>(&self, lcore: LcoreId, f: F) -> Result<LcoreJob<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if !self.worker_lcores().contains(&lcore) {
            return Err(DpdkError::InvalidArgument {
                what: "lcore",
                reason: format!("lcore {lcore} is not an enabled worker lcore"),
            });
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let job: LaunchedFn = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            // The receiver may be gone if the handle was dropped: nothing to report then.
            let _ = tx.send(result);
        });
        let arg = Box::into_raw(Box::new(job));
        // SAFETY: `trampoline` matches lcore_function_t and takes ownership of `arg`, a
        // leaked Box<LaunchedFn>, exactly once; on failure DPDK does not run it and we take
        // the box back below.
        let ret = unsafe { ffi::rte_eal_remote_launch(Some(trampoline), arg.cast(), lcore.0) };
        if ret < 0 {
            // SAFETY: the launch failed, so the lcore never saw `arg`; we still own it.
            drop(unsafe { Box::from_raw(arg) });
            check("rte_eal_remote_launch", ret)?;
        }
        Ok(LcoreJob { lcore, result: rx })
    }

    /// Registers the calling (non-EAL) thread as an lcore (`rte_thread_register`), giving it
    /// an lcore id and a mempool cache. Unregistered when the guard drops (on this thread).
    ///
    /// # Errors
    /// The `rte_thread_register` failure, e.g. no free lcore id left.
    pub fn register_thread(&self) -> Result<RegisteredThread> {
        // SAFETY: registers the calling thread; the EAL is running (guaranteed by `self`).
        let ret = unsafe { ffi::rte_thread_register() };
        if ret < 0 {
            return Err(DpdkError::from_rte_errno("rte_thread_register"));
        }
        // SAFETY: reads the thread-local lcore id that registration just set.
        let lcore = LcoreId(unsafe { ffi::rte_lcore_id() });
        Ok(RegisteredThread {
            lcore,
            _not_send: PhantomData,
        })
    }

    /// Waits until every worker lcore is idle (`rte_eal_mp_wait_lcore`). Spins while a job
    /// still runs: prefer [`LcoreJob::wait`].
    pub fn wait_all(&self) {
        // SAFETY: only reads lcore states; the EAL is running.
        unsafe { ffi::rte_eal_mp_wait_lcore() }
    }

    /// Releases the EAL's resources (`rte_eal_cleanup`). DPDK cannot be used again in this
    /// process afterwards.
    ///
    /// # Errors
    /// [`DpdkError::Busy`] while a mempool or port is alive (a mempool dropped with mbufs in
    /// use is leaked on purpose and keeps the EAL busy forever), or the `rte_eal_cleanup`
    /// failure.
    pub fn cleanup(self) -> Result<()> {
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        if *state != EalState::Running {
            return Err(DpdkError::EalCleanedUp);
        }
        let live = LIVE_OBJECTS.load(Ordering::SeqCst);
        if live != 0 {
            return Err(DpdkError::Busy(format!(
                "cannot clean up the EAL: {live} mempools or ports are still alive"
            )));
        }
        self.wait_all();
        // SAFETY: no mempool or port is alive (checked above, under the state lock that every
        // constructor checks), and workers are idle, so nothing uses the memory freed here.
        let ret = unsafe { ffi::rte_eal_cleanup() };
        *state = EalState::CleanedUp;
        check("rte_eal_cleanup", ret).map(drop)
    }
}

/// The runtime directory of this (primary) process, from [`Eal::runtime_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeDir {
    path: PathBuf,
    exclusive: bool,
}

impl RuntimeDir {
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory; call when done with DPDK (after [`Eal::cleanup`], or just
    /// before exiting when cleanup was refused). With a shared configuration (the default)
    /// the primary process holds its file prefix exclusively, so everything in the
    /// directory is its own and all of it goes. Without one (`--no-shconf`, `--in-memory`)
    /// other processes may use the same prefix and directory: only this process's own
    /// sockets in it (DPDK's telemetry socket) are removed, then the directory if that
    /// left it empty. Returns whether it is gone (also when it already was).
    ///
    /// # Errors
    /// The directory could not be read or removed.
    pub fn remove(&self) -> io::Result<bool> {
        let removed = if self.exclusive {
            std::fs::remove_dir_all(&self.path)
        } else {
            for socket in own_sockets_in(&self.path) {
                std::fs::remove_file(socket)?;
            }
            std::fs::remove_dir(&self.path)
        };
        match removed {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty && !self.exclusive => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Unix sockets bound under `dir` by this process: the paths in `/proc/net/unix` whose
/// socket inode is one of this process's open descriptors (`/proc/self/fd`).
fn own_sockets_in(dir: &Path) -> Vec<PathBuf> {
    let own: std::collections::HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|link| {
            let text = link.to_str()?;
            text.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    // Columns: Num RefCount Protocol Flags Type St Inode Path.
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = fields.get(6)?.parse().ok()?;
            let path = Path::new(fields.get(7)?);
            (own.contains(&inode) && path.parent() == Some(dir)).then(|| path.to_owned())
        })
        .collect()
}

type LaunchedFn = Box<dyn FnOnce() + Send>;

/// Entry point of a launched lcore job (`lcore_function_t`).
extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<LaunchedFn> leaked by `Eal::launch`, passed to us once.
    let job = unsafe { Box::from_raw(arg.cast::<LaunchedFn>()) };
    // The job already catches the user's panic; this guard keeps any unwind from crossing
    // into C.
    match catch_unwind(AssertUnwindSafe(job)) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

/// A closure running on a worker lcore. Dropping the handle without waiting leaves the job
/// running; the lcore accepts a new job only after it returns.
#[derive(Debug)]
pub struct LcoreJob<T> {
    lcore: LcoreId,
    result: mpsc::Receiver<thread::Result<T>>,
}

impl<T> LcoreJob<T> {
    /// The lcore running the job.
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    /// Blocks (without spinning) until the job returns, then until the lcore is idle again.
    ///
    /// # Errors
    /// [`DpdkError::LcorePanicked`] if the closure panicked.
    pub fn wait(self) -> Result<T> {
        let outcome = self.result.recv();
        // SAFETY: the job has returned (or its sender is gone), so this only spins for the
        // short moment before the lcore marks itself idle.
        unsafe { ffi::rte_eal_wait_lcore(self.lcore.0) };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) | Err(_) => Err(DpdkError::LcorePanicked(self.lcore)),
        }
    }
}

/// A plain thread registered with the EAL; unregisters on drop. Not `Send`: it must be
/// dropped on the thread it registered.
#[derive(Debug)]
pub struct RegisteredThread {
    lcore: LcoreId,
    _not_send: PhantomData<*const ()>,
}

impl RegisteredThread {
    /// The lcore id the EAL gave this thread.
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }
}

impl Drop for RegisteredThread {
    fn drop(&mut self) {
        // SAFETY: called on the thread that registered (the guard is !Send).
        unsafe { ffi::rte_thread_unregister() }
    }
}
