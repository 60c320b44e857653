//! Vendor profiles: what changes between a generic ECMA-323 switch, OpenScape Voice and Avaya
//! AES (pbx-csta.md §15 and §17.1), as one [`PbxConfig`].

use std::time::Duration;

use rcc_protocol::csta::{ED3, ED4};
use serde::{Deserialize, Serialize};

use super::switch::{CallIdFormat, SwitchConfig};

/// A vendor profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Standard ECMA-323 ed3: session optional, no heartbeat, plain identifiers.
    #[default]
    Generic,
    /// OpenScape Voice: ed4, SystemStatus first and as heartbeat, `N<…>` devices in events,
    /// 32-hex call IDs; the ECMA-354 session is optional.
    Osv,
    /// Avaya AES: session with login required, `ed3/privN` namespace, `deviceID` before
    /// `callID`, session timer enforced (reset expected at half the duration).
    Aes,
}

impl Profile {
    /// The profile's name as configured.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Generic => "generic",
            Profile::Osv => "osv",
            Profile::Aes => "aes",
        }
    }
}

/// The Avaya private namespace the `aes` profile speaks when the client asks for none.
pub const AES_NAMESPACE: &str =
    "http://www.ecma-international.org/standards/ecma-323/csta/ed3/priv2";

/// How frames are delimited on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// ECMA-323 Annex J: 8-byte header with length and invoke ID.
    #[default]
    AnnexJ,
    /// One XML document per NUL byte, no invoke IDs.
    Nul,
}

impl From<Framing> for rcc_protocol::framing::Framing {
    fn from(f: Framing) -> Self {
        match f {
            Framing::AnnexJ => rcc_protocol::framing::Framing::AnnexJ,
            Framing::Nul => rcc_protocol::framing::Framing::Nul,
        }
    }
}

/// The ECMA-354 application session policy.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    /// CSTA requests before StartApplicationSession are refused.
    pub required: bool,
    /// StartApplicationSession must carry a user name and password.
    pub login_required: bool,
    /// When set, the user name and password that are accepted.
    pub credentials: Option<(String, String)>,
    /// Duration granted when the client asks for none.
    pub default_duration: Duration,
    /// Longest duration granted.
    pub max_duration: Duration,
    /// Namespace fragment a requested protocol version must contain (`None`: any).
    pub version_must_contain: Option<&'static str>,
}

/// The PBX's own SystemStatus heartbeat.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    /// Interval between SystemStatus requests.
    pub interval: Duration,
    /// Unanswered requests after which the link is dropped.
    pub max_misses: u32,
}

/// Everything the server side of the simulator needs to know.
#[derive(Debug, Clone)]
pub struct PbxConfig {
    /// The profile this configuration came from.
    pub profile: Profile,
    /// Frame delimiting.
    pub framing: Framing,
    /// Namespace of CSTA messages sent.
    pub namespace: String,
    /// Write `deviceID` before `callID`.
    pub device_id_first: bool,
    /// Session policy.
    pub session: SessionPolicy,
    /// Send SystemStatus as soon as a client connects.
    pub status_on_connect: bool,
    /// Periodic SystemStatus.
    pub heartbeat: Option<Heartbeat>,
    /// The call model's settings.
    pub switch: SwitchConfig,
    /// Largest frame accepted.
    pub max_frame: usize,
    /// Keep a log of every frame (the control API's `/log`); off for load runs.
    pub log_frames: bool,
    /// Requests accepted per second, counted in one-second windows as PBX vendors publish
    /// their limits (SystemStatus and session requests aside); beyond it `resourceBusy`.
    pub requests_per_s: Option<u32>,
}

impl PbxConfig {
    /// The configuration of a profile with its vendor's defaults.
    pub fn for_profile(profile: Profile) -> Self {
        let session = SessionPolicy {
            required: false,
            login_required: false,
            credentials: None,
            default_duration: Duration::from_secs(180),
            max_duration: Duration::from_secs(3600),
            version_must_contain: None,
        };
        let base = PbxConfig {
            profile,
            framing: Framing::AnnexJ,
            namespace: ED3.to_owned(),
            device_id_first: false,
            session,
            status_on_connect: false,
            heartbeat: None,
            switch: SwitchConfig::default(),
            max_frame: rcc_protocol::framing::MAX_FRAME,
            log_frames: true,
            requests_per_s: None,
        };
        match profile {
            Profile::Generic => base,
            Profile::Osv => PbxConfig {
                namespace: ED4.to_owned(),
                status_on_connect: true,
                heartbeat: Some(Heartbeat {
                    interval: Duration::from_secs(30),
                    max_misses: 2,
                }),
                switch: SwitchConfig {
                    call_ids: CallIdFormat::Hex32,
                    decorate_devices: true,
                    ..SwitchConfig::default()
                },
                ..base
            },
            Profile::Aes => PbxConfig {
                namespace: AES_NAMESPACE.to_owned(),
                device_id_first: true,
                session: SessionPolicy {
                    required: true,
                    login_required: true,
                    version_must_contain: Some("/ed3"),
                    ..base.session.clone()
                },
                ..base
            },
        }
    }
}
