//! The lab's users: each a SIP URI and a line on a PBX extension with an E.164 number, named the
//! same way by the async lab, the in-memory lab and the scenarios.

/// A lab user: a SIP URI and the line (a PBX extension with an E.164 number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabUser {
    /// Short name (`alice`).
    pub name: String,
    /// The PBX extension (`1001`).
    pub extension: String,
}

impl LabUser {
    /// A user named `name` on extension `ext`.
    pub fn new(name: &str, extension: &str) -> Self {
        LabUser {
            name: name.to_owned(),
            extension: extension.to_owned(),
        }
    }

    /// `sip:alice@contoso.lab`
    pub fn uri(&self) -> String {
        format!("sip:{}@contoso.lab", self.name)
    }

    /// The E.164 number (`+14255551001`).
    pub fn e164(&self) -> String {
        format!("+1425555{}", self.extension)
    }

    /// The LineURI as Microsoft documents it (`tel:+14255551001;ext=1001`).
    pub fn line(&self) -> String {
        format!("tel:{};ext={}", self.e164(), self.extension)
    }
}

/// The `[numbering]` a gateway needs for the lab's users: their LineURIs and E.164 numbers
/// (`+1425555` and the extension) to the PBX's four-digit extensions, and back.
pub const LAB_NUMBERING: &str = r#"[numbering]
line = "ext"
[[numbering.to_pbx]]
pattern = '\+1425555(\d{4})'
replace = "$1"
[[numbering.to_lync]]
pattern = '(\d{4})'
replace = "+1425555$1"
"#;
