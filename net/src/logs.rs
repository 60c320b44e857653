//! How every binary of the workspace logs: text (colour only on a terminal, never into a file,
//! a pipe or the journal; `NO_COLOR` turns it off there too) or JSON lines, chosen the same way
//! everywhere (`--log-format text|json`).

use std::io::IsTerminal as _;

use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether text logs may carry ANSI colour: only when stdout is a terminal and `NO_COLOR` is
/// unset (<https://no-color.org>).
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The formatting layer for `format`, writing to stdout.
pub fn layer<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().with_ansi(colour()).boxed(),
    }
}
