//! The wait at the top of a driver task's loop: the task that owns a sans-IO engine takes the
//! next command from its queue, or wakes at the engine's next deadline.

use std::time::Instant;

use tokio::sync::mpsc;

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
}
