//! Tokio runtimes for synchronous `#[test]`s (the storage and audit tests
//! that drive async code from a plain test, a forked process or a
//! `proptest!`).
#![allow(
    clippy::expect_used,
    reason = "test-only: a test without its runtime cannot run, and the panic is its failure"
)]

use tokio::runtime::{Builder, Runtime};

/// A single-threaded runtime with I/O and timers.
///
/// # Panics
/// When the runtime cannot be built.
#[must_use]
pub fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime")
}

/// A runtime with two worker threads (the machines the tests run on have
/// two cores), I/O and timers.
///
/// # Panics
/// When the runtime cannot be built.
#[must_use]
pub fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread tokio runtime")
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_runtimes_run_futures() {
        assert_eq!(super::current_thread().block_on(async { 1 + 1 }), 2);
        let runtime = super::multi_thread();
        let handle = runtime.spawn(async { 3 });
        assert_eq!(runtime.block_on(handle).unwrap(), 3);
    }
}
