//! The task that owns a sans-IO engine (a driver): the wait at the top of its loop (the next
//! command from its queue, or the engine's next deadline), and how a component's handle runs a
//! closure on the engine there.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

/// A closure run on the engine `E` in the driver task, with the time of the step.
pub type Control<E> = Box<dyn FnOnce(&mut E, Instant) + Send>;

/// The driver task is gone: its component has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the driver has stopped")]
pub struct Stopped;

/// Why a driver woke.
#[derive(Debug)]
pub enum Wake<C> {
    /// A command arrived.
    Command(C),
    /// The engine's deadline passed.
    Deadline,
}

/// Waits for the next command, or until `deadline` (the engine's next timeout; `None`: no timer
/// is set). `None` once every sender is gone: the driver's component has been dropped.
pub async fn wake<C>(
    commands: &mut mpsc::Receiver<C>,
    deadline: Option<Instant>,
) -> Option<Wake<C>> {
    let sleep_to = match deadline {
        Some(d) => tokio::time::Instant::from_std(d),
        None => tokio::time::Instant::now() + std::time::Duration::from_secs(86_400),
    };
    tokio::select! {
        cmd = commands.recv() => cmd.map(Wake::Command),
        () = tokio::time::sleep_until(sleep_to), if deadline.is_some() => Some(Wake::Deadline),
    }
}

/// Runs `f` on the engine in the driver task behind `commands` and returns its result;
/// `command` wraps the closure in the driver's command type.
pub async fn run_on<E, T, C>(
    commands: &mpsc::Sender<C>,
    command: impl FnOnce(Control<E>) -> C,
    f: impl FnOnce(&mut E, Instant) -> T + Send + 'static,
) -> Result<T, Stopped>
where
    T: Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let control: Control<E> = Box::new(move |engine, now| {
        let _ = reply.send(f(engine, now));
    });
    commands.send(command(control)).await.map_err(|_| Stopped)?;
    answer.await.map_err(|_| Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn wakes_for_a_command_a_deadline_or_not_at_all() {
        let (tx, mut rx) = mpsc::channel::<u8>(4);
        let soon = tokio::time::Instant::now().into_std() + Duration::from_secs(1);
        assert!(matches!(
            wake(&mut rx, Some(soon)).await,
            Some(Wake::Deadline)
        ));
        // A command before the deadline (past deadlines and queued commands are both ready, and
        // the select picks either).
        let _ = tx.try_send(7);
        assert!(matches!(
            wake(&mut rx, Some(soon + Duration::from_secs(10))).await,
            Some(Wake::Command(7))
        ));
        // Without a deadline only a command wakes it, however long that takes.
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(90_000)).await;
            let _ = tx.try_send(8);
        });
        assert!(matches!(wake(&mut rx, None).await, Some(Wake::Command(8))));
        let _ = later.await;
        assert!(wake(&mut rx, None).await.is_none(), "every sender is gone");
    }

    #[tokio::test]
    async fn a_closure_runs_on_the_drivers_engine_until_the_driver_stops() {
        let (tx, mut rx) = mpsc::channel::<Control<Vec<u8>>>(4);
        let driver = tokio::spawn(async move {
            let mut engine = vec![1u8];
            // Two commands, then the driver stops.
            for _ in 0..2 {
                if let Some(f) = rx.recv().await {
                    f(&mut engine, Instant::now());
                }
            }
        });
        let push = |x| {
            move |e: &mut Vec<u8>, _: Instant| {
                e.push(x);
                e.len()
            }
        };
        assert_eq!(run_on(&tx, |c| c, push(2)).await, Ok(2));
        assert_eq!(run_on(&tx, |c| c, push(3)).await, Ok(3));
        let _ = driver.await;
        assert_eq!(run_on(&tx, |c| c, push(4)).await, Err(Stopped));
    }
}
