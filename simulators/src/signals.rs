//! How the simulators stop: SIGTERM (what `systemctl stop` and `docker stop` send) and SIGINT
//! end them the same graceful way; SIGHUP does not end them (they read their configuration
//! once, at start, and say so).

use tokio::signal::unix::{SignalKind, signal};

/// Waits for SIGTERM or SIGINT; returns which came. A SIGHUP in between is logged for `name`.
pub async fn until_stopped(name: &str) -> anyhow::Result<&'static str> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok("SIGTERM"),
            _ = interrupt.recv() => return Ok("SIGINT"),
            _ = hangup.recv() => tracing::info!(
                simulator = name,
                "SIGHUP: nothing to reload (the configuration is read at start); still running"
            ),
        }
    }
}
