//! The tokio runtime the programs run on.

use tokio::runtime::{Builder, Runtime};

/// A runtime of `worker_threads` threads; `None` means one per CPU. One
/// thread (or 0) gives a current-thread runtime: a task woken by another
/// then runs after every task already queued instead of right away, so
/// replies that become ready together leave in one socket write.
pub fn build(worker_threads: Option<usize>) -> std::io::Result<Runtime> {
    let mut builder = match worker_threads {
        Some(0 | 1) => Builder::new_current_thread(),
        Some(n) => {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn one_thread_is_a_current_thread_runtime() {
        let flavor = |n| super::build(n).unwrap().handle().runtime_flavor();
        assert_eq!(flavor(Some(1)), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(Some(0)), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(Some(2)), RuntimeFlavor::MultiThread);
        assert_eq!(flavor(None), RuntimeFlavor::MultiThread);
    }
}
