//! What an endpoint is told at creation: who it is, which line it controls, and how it behaves.

use std::time::Duration;

use crate::lync::profile::ClientProfile;

/// An endpoint's configuration.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// SIP URI of the user (`sip:alice@contoso.com`).
    pub user: String,
    /// Endpoint ID (`epid`), distinct per endpoint of a user.
    pub epid: String,
    /// The LineURI, sent verbatim.
    pub line: String,
    /// The LineServerURI (the gateway's SIP URI).
    pub line_server: String,
    /// Client profile.
    pub profile: ClientProfile,
    /// Refresh interval instead of the profile's.
    pub refresh: Option<Duration>,
    /// Sign in again after 481, 408 or a gateway BYE.
    pub reestablish: bool,
    /// Delay before re-establishing.
    pub reestablish_delay: Duration,
    /// The client's own transport address as it appears in Via.
    pub address: String,
}
