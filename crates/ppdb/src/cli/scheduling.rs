//! The Linux scheduling policy of a node's threads.
//!
//! A node runs under `SCHED_BATCH` unless told otherwise (`--batch-scheduling false`). The
//! policy keeps the nice level and needs no privilege; what it changes is that a thread of the
//! node that wakes up (the WAL writer when its fsync completes, a runtime worker when a socket
//! becomes readable) does not preempt the thread running on its CPU, but waits for it to block
//! or use up its time slice. A node's work comes in rounds of many small steps separated by
//! fsyncs, so preempting halfway through a round only adds a context switch and delays the
//! round: with three nodes on two CPUs, 64 writing clients went from 31.6-35.3k to
//! 36.4-38.4k writes/s (4739335, docs/benchmarks.md). Threads wait at most a time slice (a few
//! milliseconds), far below the election timeout.

/// Puts the calling thread, and every thread it starts from now on, under `SCHED_BATCH`.
/// Call it before the runtime starts its threads. Fails if the kernel refuses.
#[cfg(target_os = "linux")]
pub fn use_batch_policy() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is an initialized `sched_param` that outlives the call, and pid 0 names
    // the calling thread; the call reads `param` and changes nothing else in this process.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere than Linux there is no `SCHED_BATCH`: nothing changes.
#[cfg(not(target_os = "linux"))]
pub fn use_batch_policy() -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy() -> i32 {
        // SAFETY: reads the calling thread's policy; no memory is passed.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn the_thread_and_the_threads_it_starts_run_under_sched_batch() {
        let seen = std::thread::spawn(|| {
            use_batch_policy().unwrap_or_else(|e| panic!("SCHED_BATCH refused: {e}"));
            let child = std::thread::spawn(policy).join().unwrap_or_else(|_| panic!("child panicked"));
            (policy(), child)
        })
        .join()
        .unwrap_or_else(|_| panic!("thread panicked"));
        assert_eq!(seen, (libc::SCHED_BATCH, libc::SCHED_BATCH));
    }
}
