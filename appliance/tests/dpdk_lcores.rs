//! EAL lifecycle tests: lcores, launching closures on a worker lcore, registering a plain
//! thread, and cleanup. One test on purpose: cleanup ends DPDK for the whole process, so
//! the steps must run in this order. Needs root (DPDK EAL): `#[ignore]`d, run it with
//! `--include-ignored`.

mod support;

#[cfg(test)]
mod tests {
    use appliance::dpdk::{DpdkError, Eal, LcoreId, Mbuf, Mempool, SocketId};

    fn init() -> Eal {
        // Two lcores on CPU 0, so the test runs on any machine with one CPU or more.
        let args = crate::support::dpdk::eal_args("lcores", "0@0,1@0", 128, &[]);
        crate::support::dpdk::init_eal(&args).expect("rte_eal_init (needs root)")
    }

    #[test]
    #[ignore = "needs root: DPDK EAL (init, lcore launch, cleanup)"]
    fn eal_lifecycle_launch_register_and_cleanup() {
        assert!(Eal::get().is_none());
        assert!(matches!(
            Mempool::new("too_early", 63, 0, 2176, SocketId::ANY),
            Err(DpdkError::EalNotInitialised)
        ));
        let eal = init();
        assert_eq!(eal.main_lcore(), LcoreId(0));
        assert_eq!(eal.worker_lcores(), [LcoreId(1)]);
        assert_eq!(eal.lcores(), [LcoreId(0), LcoreId(1)]);
        assert_eq!(
            eal.current_lcore(),
            Some(LcoreId(0)),
            "init made us the main lcore"
        );

        let pool = Mempool::new("lcores", 255, 16, Mempool::DEFAULT_DATA_ROOM, SocketId::ANY)
            .expect("mempool");

        // A closure runs on lcore 1, sees its lcore id, and hands back a result.
        let worker_pool = pool.clone();
        let job = eal
            .launch(LcoreId(1), move || {
                let lcore = Eal::get().and_then(|e| e.current_lcore());
                let m = Mbuf::from_bytes(&worker_pool, b"from lcore 1").map(|m| m.len());
                (lcore, m.ok())
            })
            .expect("launch");
        assert_eq!(job.lcore(), LcoreId(1));
        assert_eq!(job.wait().expect("result"), (Some(LcoreId(1)), Some(12)));

        // A panic stays on the Rust side of the C boundary and is reported; the lcore is
        // free again afterwards.
        let job = eal
            .launch(LcoreId(1), || -> u32 { panic!("worker fails on purpose") })
            .expect("launch");
        assert!(matches!(
            job.wait(),
            Err(DpdkError::LcorePanicked(LcoreId(1)))
        ));
        let job = eal.launch(LcoreId(1), || 7u8).expect("lcore is free again");
        assert_eq!(job.wait().expect("result"), 7);

        assert!(matches!(
            eal.launch(LcoreId(0), || ()),
            Err(DpdkError::InvalidArgument { what: "lcore", .. })
        ));
        match eal.launch(LcoreId(5), || ()) {
            Err(DpdkError::InvalidArgument { what, reason }) => assert_eq!(
                (what, reason.as_str()),
                ("lcore", "lcore 5 is not an enabled worker lcore")
            ),
            other => panic!("lcore 5 is not enabled, got {:?}", other.map(|_| ())),
        }

        // A plain thread has no lcore id until it registers, and loses it on unregistering.
        let ids = std::thread::spawn(move || {
            let before = eal.current_lcore();
            let registered = eal.register_thread().expect("register");
            let during = eal.current_lcore();
            let given = registered.lcore();
            drop(registered);
            (before, during, given, eal.current_lcore())
        })
        .join()
        .expect("thread");
        assert_eq!(ids.0, None);
        assert_eq!(ids.1, Some(ids.2));
        assert!(
            ids.2 .0 >= 2,
            "registered threads get ids after the EAL's lcores"
        );
        assert_eq!(ids.3, None);

        // Cleanup waits for DPDK objects; afterwards DPDK is gone for good.
        assert!(matches!(eal.cleanup(), Err(DpdkError::Busy(_))));
        assert_eq!(pool.in_use(), 0, "the worker's mbuf went back to the pool");
        drop(pool);
        eal.cleanup().expect("cleanup");
        assert!(Eal::get().is_none());
        assert!(matches!(init_again(), Err(DpdkError::EalCleanedUp)));
        assert!(matches!(
            Mempool::new("too_late", 63, 0, 2176, SocketId::ANY),
            Err(DpdkError::EalCleanedUp)
        ));
    }

    fn init_again() -> Result<Eal, DpdkError> {
        Eal::init(&["--no-huge".to_owned()])
    }
}
