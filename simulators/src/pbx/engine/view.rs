//! What the engine shows: its outputs for the shell, the frame log, the faults it injects, and
//! each link as the control API sees it.

use serde::Serialize;

use super::LinkId;

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes on the link.
    Send {
        /// The link.
        link: LinkId,
        /// Bytes to write, as one write.
        bytes: Vec<u8>,
    },
    /// Close the link (with a TCP reset when `abort`).
    Close {
        /// The link.
        link: LinkId,
        /// Reset instead of an orderly close.
        abort: bool,
        /// Why, for the log.
        reason: String,
    },
}

/// Direction of a logged frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received from the client.
    In,
    /// Sent to the client.
    Out,
}

/// One frame in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// Sequence number, increasing.
    pub seq: u64,
    /// Wall-clock time, microseconds since the Unix epoch (for merging traces).
    pub at_us: u64,
    /// The link.
    pub link: LinkId,
    /// Direction.
    pub direction: Direction,
    /// Invoke ID, when the framing has one.
    pub invoke_id: Option<u16>,
    /// Root element name (or `?` when the XML did not decode).
    pub root: String,
    /// The XML text.
    pub xml: String,
}

/// Faults a test can switch on at runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay every response by this many milliseconds.
    pub response_delay_ms: Option<u64>,
    /// Never answer requests (responses are lost).
    pub drop_responses: bool,
    /// Answer StartApplicationSession negatively.
    pub refuse_sessions: bool,
    /// Send the events a request causes before its response.
    pub events_before_response: bool,
    /// Write every frame in pieces of this many bytes.
    pub split_writes: Option<usize>,
    /// Ignore the client's SystemStatusResponse (to exercise heartbeat loss).
    pub ignore_status_responses: bool,
    /// Send every call event twice, as a PBX ringing several appearances of a line may.
    pub repeat_events: bool,
}

/// What the server knows about one link, for the control API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkView {
    /// The link.
    pub link: LinkId,
    /// The peer address as the shell reported it.
    pub peer: String,
    /// ECMA-354 session ID, if one is active.
    pub session_id: Option<String>,
    /// Granted session duration in seconds.
    pub session_duration_s: Option<u64>,
    /// ResetApplicationSessionTimer requests that came later than half the duration.
    pub late_resets: u32,
    /// Resets received.
    pub resets: u32,
    /// SystemStatus heartbeats left unanswered in a row.
    pub heartbeat_misses: u32,
    /// Monitors held (cross-reference ID, object).
    pub monitors: Vec<(String, String)>,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
}
