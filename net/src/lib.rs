//! rcc-net: the tokio runtime pieces that the gateway shell and both simulators share, so that
//! each exists once: TLS material from PEM files ([`tls`]), the task handles that stop a
//! component when it is dropped ([`Tasks`], [`AbortOnDrop`]), taking connections ([`accept`]),
//! the wait of a task that drives a
//! sans-IO engine ([`wake`]) and how a handle runs a closure on that engine ([`run_on`]), the
//! connection writer that keeps writing apart from reading
//! ([`spawn_writer`]), the pcapng trace writer ([`pcap`]) and how every binary logs ([`logs`]).

mod driver;
mod listen;
pub mod logs;
pub mod pcap;
pub mod tls;
mod writer;

pub use driver::{Control, Stopped, Wake, run_on, wake};
pub use listen::accept;
pub use writer::{spawn_writer, write_queue};

use tokio::task::JoinHandle;

/// A component's background tasks, all aborted when the set is dropped (with the last handle
/// on the component).
#[derive(Debug, Default)]
pub struct Tasks(Vec<JoinHandle<()>>);

impl Tasks {
    /// Adds a task to the set.
    pub fn push(&mut self, task: JoinHandle<()>) {
        self.0.push(task);
    }
}

impl From<Vec<JoinHandle<()>>> for Tasks {
    fn from(tasks: Vec<JoinHandle<()>>) -> Self {
        Tasks(tasks)
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// One task, aborted when this handle is dropped, unless it finished first.
#[derive(Debug)]
pub struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Takes charge of a spawned task.
    pub fn new(task: JoinHandle<T>) -> Self {
        AbortOnDrop(task)
    }

    /// The task's handle, to await its end (in a `select!` too: it can be polled again).
    pub fn handle(&mut self) -> &mut JoinHandle<T> {
        &mut self.0
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_set_aborts_its_tasks() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        });
        drop(Tasks::from(vec![task]));
        // The sender goes with the aborted task.
        assert!(rx.await.is_err());
    }

    #[tokio::test]
    async fn dropping_the_guard_aborts_its_task() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let guard = AbortOnDrop::new(tokio::spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        }));
        drop(guard);
        assert!(rx.await.is_err());
    }
}
