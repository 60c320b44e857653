//! Size limits applied to every SIP input, with checked arithmetic.

/// Configurable bounds on a SIP message. Defaults suit RCC traffic with generous headroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest header line after unfolding, in bytes.
    pub max_line: usize,
    /// Largest head (start line and headers, up to the blank line), in bytes.
    pub max_head: usize,
    /// Most header fields in one message.
    pub max_headers: usize,
    /// Largest body, in bytes.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 8 * 1024,
            max_head: 64 * 1024,
            max_headers: 256,
            max_body: 256 * 1024,
        }
    }
}
