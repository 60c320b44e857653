//! `gateway.toml` as data: every section's fields and defaults, and [`parse_unchecked`] from
//! text. A leaf: it names no other part of the gateway. [`crate::setup`] checks a parsed file
//! and builds the domain objects (numbering plan, authorization table) from it, once.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Lync side.
    pub sip: SipConfig,
    /// The PBX side.
    pub pbx: PbxConfig,
    /// LineURI and number translation.
    #[serde(default)]
    pub numbering: NumberingConfig,
    /// Who may control which line.
    #[serde(default)]
    pub authorization: AuthorizationConfig,
    /// Metrics, health and logs.
    #[serde(default)]
    pub observe: ObserveConfig,
}

/// `[sip]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// TLS listener (Lync's recommended transport).
    #[serde(default)]
    pub listen_tls: Option<SocketAddr>,
    /// TCP listener (the gateway's IP must be pinned in the Lync topology).
    #[serde(default)]
    pub listen_tcp: Option<SocketAddr>,
    /// Host for Contact and Via: the trusted application pool FQDN (TLS) or IP (TCP).
    pub host: String,
    /// Port advertised in Contact and Via (default: the TLS, else the TCP listener's port).
    #[serde(default)]
    pub port: Option<u16>,
    /// User part of the Contact (`rccgateway`).
    #[serde(default = "default_user")]
    pub user: String,
    /// Server certificate and client verification.
    #[serde(default)]
    pub tls: Option<SipTlsConfig>,
    /// Peers allowed to talk to the gateway (Front End servers).
    #[serde(default, rename = "trusted_peer")]
    pub trusted_peers: Vec<TrustedPeer>,
    /// Session-Expires granted (RFC 4028), seconds.
    #[serde(default = "default_session_expires")]
    pub session_expires_s: u32,
    /// Smallest Session-Expires accepted (Min-SE), seconds.
    #[serde(default = "default_min_se")]
    pub min_se_s: u32,
    /// Answer UPDATE (and list it in Allow).
    #[serde(default = "yes")]
    pub allow_update: bool,
    /// INVITE answer while the PBX link is down: `503` (with Retry-After) or `status`
    /// (200 OK with a non-normal systemStatus).
    #[serde(default)]
    pub pbx_down: PbxDownAnswer,
    /// Out-of-dialog OPTIONS while the PBX link is down or the gateway drains: `503` (with
    /// Retry-After, so a dispatcher such as Kamailio's takes the gateway out of rotation) or
    /// `200` (always answer that the SIP side is up).
    #[serde(default)]
    pub options_when_unavailable: OptionsAnswer,
    /// Retry-After on 503, seconds.
    #[serde(default = "default_retry_after")]
    pub retry_after_s: u32,
    /// Time an event INFO may stay unanswered (then it is given up, not fatal), ms.
    #[serde(default = "default_event_timeout")]
    pub event_timeout_ms: u64,
    /// Event INFOs in flight per dialog before the next ones wait.
    #[serde(default = "default_event_window")]
    pub event_window: usize,
    /// Events queued per dialog; beyond it the session is ended (the client re-syncs).
    #[serde(default = "default_event_queue")]
    pub event_queue: usize,
    /// Messages queued for one SIP connection. Owed beyond half of it (answers queued plus
    /// requests not yet taken up), the peer is reading slower than it asks: reading it pauses (2 s at most), then its new sessions and CSTA requests
    /// get 503 with Retry-After; when it is full the connection is closed (counted in
    /// `rcc_gateway_queue_overflows_total`).
    #[serde(default = "default_send_queue")]
    pub send_queue: usize,
    /// RCC sessions the gateway accepts (503 beyond).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Server transactions remembered at most (to absorb retransmitted requests); a flood
    /// beyond it shortens how long each is remembered instead of growing the table.
    #[serde(default = "default_max_transactions")]
    pub max_transactions: usize,
    /// Connections accepted per peer address.
    #[serde(default = "default_max_connections")]
    pub max_connections_per_peer: usize,
    /// SIP connections held at most, trusted ones included (0: what the open-file limit
    /// leaves after the gateway's own files, which the gateway raises to the hard limit at
    /// start). Beyond `max_connections - reserved_for_trusted`, only peers whose address is a
    /// trusted peer's are accepted.
    #[serde(default)]
    pub max_connections: usize,
    /// Connection slots only peers with a trusted address (`ip` or `net`) may take.
    #[serde(default = "default_reserved_for_trusted")]
    pub reserved_for_trusted: usize,
    /// TLS handshakes in progress at most, from peers whose address is not trusted (a
    /// quarter of them from one address at most).
    #[serde(default = "default_max_tls_handshakes")]
    pub max_tls_handshakes: usize,
    /// Time a TLS handshake may take, ms.
    #[serde(default = "default_tls_handshake_timeout")]
    pub tls_handshake_timeout_ms: u64,
    /// Time a SIP message may take to arrive whole once its first byte has, ms.
    #[serde(default = "default_message_timeout")]
    pub message_timeout_ms: u64,
    /// A connection on which nothing arrives for this long is closed, seconds (0: never; the
    /// Front End keeps its connection to a trusted application open without traffic).
    #[serde(default)]
    pub idle_timeout_s: u64,
}

/// What an out-of-dialog OPTIONS gets while the gateway cannot take new sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum OptionsAnswer {
    /// 503 Service Unavailable with Retry-After.
    #[default]
    #[serde(rename = "503")]
    ServiceUnavailable,
    /// 200 OK.
    #[serde(rename = "200")]
    Ok,
}

/// What a new session gets while the PBX link is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PbxDownAnswer {
    /// 503 Service Unavailable with Retry-After.
    #[default]
    #[serde(rename = "503")]
    ServiceUnavailable,
    /// 200 OK with `systemStatus` disabled.
    Status,
}

/// `[sip.tls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipTlsConfig {
    /// PEM certificate chain (subject/SAN = `sip.host`).
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// CAs that issue the Front End's certificates.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// `required` (mutual TLS, as Lync does), `optional` or `none`.
    #[serde(default)]
    pub client_cert: ClientCertMode,
}

/// Client certificate policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientCertMode {
    /// Mutual TLS.
    #[default]
    Required,
    /// Verified when offered.
    Optional,
    /// Not asked for.
    None,
}

/// A trusted peer: by certificate name (TLS), by IP address or by network (TCP, or TLS
/// without names).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedPeer {
    /// Certificate DNS name (Front End pool or server FQDN).
    #[serde(default)]
    pub name: Option<String>,
    /// Pinned IP address.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// A network (`10.0.0.0/28`): every Front End of a subnet.
    #[serde(default)]
    pub net: Option<ipnet::IpNet>,
}

impl TrustedPeer {
    /// Whether a connection from `ip` is this peer by address. An IPv4 peer reaching a
    /// dual-stack listener (`[::]`) shows as `::ffff:a.b.c.d`; it is compared as IPv4.
    pub fn admits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.ip.is_some_and(|a| a.to_canonical() == ip) || self.net.is_some_and(|n| n.contains(&ip))
    }
}

/// `[pbx]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PbxConfig {
    /// `generic`, `osv` or `aes`.
    #[serde(default)]
    pub profile: PbxProfile,
    /// Primary CSTA server address.
    pub address: String,
    /// Secondary address, tried when the primary fails.
    #[serde(default)]
    pub secondary: Option<String>,
    /// `tcp` or `tls`.
    #[serde(default)]
    pub transport: PbxTransport,
    /// CA certificate for a TLS link.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Server name expected in the PBX's certificate (default: the address host).
    #[serde(default)]
    pub tls_name: Option<String>,
    /// `annex-j` (default) or `nul`.
    #[serde(default)]
    pub framing: PbxFraming,
    /// ECMA-354 login.
    #[serde(default)]
    pub username: Option<String>,
    /// ECMA-354 password.
    #[serde(default)]
    pub password: Option<String>,
    /// `applicationID` in StartApplicationSession.
    #[serde(default = "default_application_id")]
    pub application_id: String,
    /// Session duration asked for, seconds.
    #[serde(default = "default_pbx_session")]
    pub session_duration_s: u32,
    /// Time a PBX request may take before the client gets a CSTAErrorCode, ms.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// First reconnect delay, ms (doubles up to `reconnect_max_ms`).
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, ms.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// Namespace to speak (default: the profile's).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Requests in flight on the link before new ones get a resource-busy error.
    #[serde(default = "default_pbx_inflight")]
    pub max_in_flight: usize,
    /// Requests left unanswered in a row (each after `request_timeout_ms`) that drop the link
    /// and reconnect (0: never).
    #[serde(default = "default_timeouts_before_drop")]
    pub timeouts_before_drop: u32,
    /// Time a CSTA frame may stay incomplete before the link is dropped, ms.
    #[serde(default = "default_frame_timeout")]
    pub frame_timeout_ms: u64,
    /// Seconds without anything from the PBX after which a RequestSystemStatus checks it is
    /// still there (its answer also updates the system status; 0: never).
    #[serde(default = "default_keepalive")]
    pub keepalive_s: u64,
    /// MonitorStart and SnapshotDevice per second at most (sign-in storms, resyncs,
    /// failovers; 0: unpaced). Clients' requests go before the gateway's own resync work.
    #[serde(default = "default_pace")]
    pub pace_per_s: f64,
    /// Of those, how many may go at once after a quiet spell.
    #[serde(default = "default_pace_burst")]
    pub pace_burst: u32,
    /// Paced requests queued at most (beyond: resourceBusy at once).
    #[serde(default = "default_pace_queue")]
    pub pace_queue: usize,
    /// Time a client's paced request may wait for its turn before it gets resourceBusy, ms
    /// (below the client's own SIP transaction timeout of 32 s).
    #[serde(default = "default_pace_wait")]
    pub pace_wait_ms: u64,
    /// A device monitor that sessions need and that the PBX refused for want of resources
    /// (`overallMonitorLimitExceeded`, `resourceBusy`, a timeout) is asked for again after this
    /// long, ms, doubling after each refusal up to `monitor_retry_max_ms`.
    #[serde(default = "default_monitor_retry_min")]
    pub monitor_retry_min_ms: u64,
    /// The longest wait between two attempts at such a monitor, ms, before a spread of up to a
    /// quarter per device.
    #[serde(default = "default_monitor_retry_max")]
    pub monitor_retry_max_ms: u64,
}

/// The PBX vendor profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PbxProfile {
    /// ECMA-323 ed3, session when credentials are configured.
    #[default]
    Generic,
    /// OpenScape Voice: ed4, answers SystemStatus, SystemRegister, `N<…>` device IDs.
    Osv,
    /// Avaya AES: session with login, `ed3/priv2`.
    Aes,
}

/// PBX link transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PbxTransport {
    /// Plain TCP.
    #[default]
    Tcp,
    /// TLS.
    Tls,
}

/// PBX link framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PbxFraming {
    /// ECMA-323 Annex J.
    #[default]
    AnnexJ,
    /// NUL-terminated.
    Nul,
}

impl From<PbxFraming> for rcc_protocol::framing::Framing {
    fn from(f: PbxFraming) -> Self {
        match f {
            PbxFraming::AnnexJ => rcc_protocol::framing::Framing::AnnexJ,
            PbxFraming::Nul => rcc_protocol::framing::Framing::Nul,
        }
    }
}

/// `[numbering]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberingConfig {
    /// Which part of a LineURI names the PBX device: `ext` (the `;ext=` parameter, else the
    /// number), `number` (the number as written, `+` kept) or `digits` (the number without `+`).
    #[serde(default)]
    pub line: LinePart,
    /// Rules from a dialled number or line (after `tel:` and parameters are removed) to the
    /// PBX's number; the first matching rule applies.
    #[serde(default)]
    pub to_pbx: Vec<Rule>,
    /// Rules from a PBX number to what the client sees (E.164 where possible).
    #[serde(default)]
    pub to_lync: Vec<Rule>,
    /// `phone-context` for numbers shown to clients that are not E.164 (none: plain `tel:`).
    #[serde(default)]
    pub phone_context: Option<String>,
}

impl Default for NumberingConfig {
    fn default() -> Self {
        NumberingConfig {
            line: LinePart::Ext,
            to_pbx: Vec::new(),
            to_lync: Vec::new(),
            phone_context: None,
        }
    }
}

/// Which part of a LineURI names the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinePart {
    /// `;ext=`, else the number.
    #[default]
    Ext,
    /// The number as written.
    Number,
    /// The number without `+`.
    Digits,
}

/// A rewrite rule: a regular expression and its replacement (`$1` for groups).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Regular expression matched against the whole number.
    pub pattern: String,
    /// Replacement.
    pub replace: String,
}

/// `[authorization]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationConfig {
    /// CSV file `sip_uri,line` (one line per row; `#` comments).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Users and their lines.
    #[serde(default, rename = "user")]
    pub users: Vec<UserLines>,
    /// The rows of `file` (`sip_uri`, line), once the shell has read it; the core does no I/O.
    #[serde(skip)]
    pub file_rows: Option<Vec<(String, String)>>,
}

/// One user's lines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserLines {
    /// SIP URI (`sip:alice@contoso.com`).
    pub uri: String,
    /// LineURIs the user may control.
    pub lines: Vec<String>,
}

/// `[observe]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveConfig {
    /// HTTP address for `/metrics` and `/health`.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// `text` (default) or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// What to log, as `tracing` filter directives (`info`, `rcc_gateway=debug,info`);
    /// `RUST_LOG`, when set, wins. Reloaded on SIGHUP.
    #[serde(default)]
    pub log_level: Option<String>,
    /// A pcapng trace of both legs (TLS written as its decrypted SIP), for Wireshark.
    #[serde(default)]
    pub trace: Option<PathBuf>,
    /// One pcapng trace per RCC session: its SIP dialog and the PBX frames that belong to it.
    #[serde(default)]
    pub session_traces: Option<SessionTraceConfig>,
}

/// `[observe.session_traces]`: one pcapng file per RCC session.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionTraceConfig {
    /// Directory of the files (`USER-SECONDS-SESSION.pcapng`); created if missing.
    pub dir: PathBuf,
    /// Only these users' sessions (SIP URIs, case-insensitive); empty: every session.
    #[serde(default)]
    pub users: Vec<String>,
    /// Files open at once at most; sessions beyond are not traced (counted and logged).
    #[serde(default = "default_max_open")]
    pub max_open: usize,
}

fn default_max_open() -> usize {
    256
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// JSON lines.
    Json,
}

fn yes() -> bool {
    true
}
fn default_user() -> String {
    "rccgateway".to_owned()
}
fn default_session_expires() -> u32 {
    1800
}
fn default_min_se() -> u32 {
    90
}
fn default_retry_after() -> u32 {
    30
}
fn default_event_timeout() -> u64 {
    8000
}
fn default_event_window() -> usize {
    8
}
fn default_event_queue() -> usize {
    1024
}
fn default_send_queue() -> usize {
    16_384
}
fn default_max_transactions() -> usize {
    65_536
}
fn default_max_sessions() -> usize {
    250_000
}
fn default_pace() -> f64 {
    100.0
}

fn default_pace_burst() -> u32 {
    50
}

fn default_pace_queue() -> usize {
    250_000
}

fn default_pace_wait() -> u64 {
    20_000
}

fn default_monitor_retry_min() -> u64 {
    1_000
}

fn default_monitor_retry_max() -> u64 {
    60_000
}

fn default_timeouts_before_drop() -> u32 {
    3
}

fn default_frame_timeout() -> u64 {
    10_000
}

fn default_keepalive() -> u64 {
    30
}

fn default_reserved_for_trusted() -> usize {
    64
}

fn default_max_tls_handshakes() -> usize {
    256
}

fn default_tls_handshake_timeout() -> u64 {
    5_000
}

fn default_message_timeout() -> u64 {
    30_000
}

fn default_max_connections() -> usize {
    64
}
fn default_application_id() -> String {
    "rcc-gateway".to_owned()
}
fn default_pbx_session() -> u32 {
    180
}
fn default_request_timeout() -> u64 {
    5000
}
fn default_reconnect_min() -> u64 {
    500
}
fn default_reconnect_max() -> u64 {
    30_000
}
fn default_pbx_inflight() -> usize {
    4096
}

impl SipConfig {
    /// The port to advertise.
    pub fn advertised_port(&self) -> u16 {
        self.port
            .or(self.listen_tls.map(|a| a.port()))
            .or(self.listen_tcp.map(|a| a.port()))
            .unwrap_or(5065)
    }

    /// The transport to advertise in Contact and Via.
    pub fn advertised_transport(&self) -> &'static str {
        if self.listen_tls.is_some() {
            "tls"
        } else {
            "tcp"
        }
    }
}

impl PbxConfig {
    /// Per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Parses configuration text without checking it ([`crate::setup::check`] does).
pub fn parse_unchecked(text: &str) -> anyhow::Result<Config> {
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Splits `host:port` (IPv6 in brackets).
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_by_address_admit_v4_mapped_and_networks() {
        let by_ip: TrustedPeer = toml::from_str("ip = \"10.0.0.11\"").expect("peer");
        assert!(by_ip.admits("10.0.0.11".parse().expect("ip")));
        assert!(
            by_ip.admits("::ffff:10.0.0.11".parse().expect("ip")),
            "dual-stack listener"
        );
        assert!(!by_ip.admits("10.0.0.12".parse().expect("ip")));
        let by_net: TrustedPeer = toml::from_str("net = \"10.0.0.0/28\"").expect("peer");
        assert!(by_net.admits("10.0.0.14".parse().expect("ip")));
        assert!(by_net.admits("::ffff:10.0.0.1".parse().expect("ip")));
        assert!(!by_net.admits("10.0.0.16".parse().expect("ip")));
        let v6: TrustedPeer = toml::from_str("net = \"2001:db8::/64\"").expect("peer");
        assert!(v6.admits("2001:db8::5".parse().expect("ip")));
        assert!(toml::from_str::<TrustedPeer>("net = \"10.0.0.0/33\"").is_err());
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("pbx:1040"), Some(("pbx".into(), 1040)));
        assert_eq!(split_host_port("[::1]:1040"), Some(("::1".into(), 1040)));
        assert_eq!(split_host_port(":1040"), None);
        assert_eq!(split_host_port("pbx"), None);
    }
}
