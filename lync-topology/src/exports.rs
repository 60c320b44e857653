//! A real Lync topology, read from what an admin exports in the Lync Server Management Shell
//! into one folder:
//!
//! ```powershell
//! Get-CsStaticRoutingConfiguration | ConvertTo-Json -Depth 5 | Out-File routes.json
//! Get-CsTrustedApplication | ConvertTo-Json -Depth 3 | Out-File trusted-applications.json
//! Get-CsTrustedApplicationPool | ConvertTo-Json | Out-File trusted-application-pools.json
//! Get-CsTrustedApplicationComputer | ConvertTo-Json | Out-File trusted-application-computers.json
//! Get-CsUser -Filter {RemoteCallControlTelephonyEnabled -eq $true} |
//!     Select-Object SipAddress,LineURI,LineServerURI,RemoteCallControlTelephonyEnabled,EnterpriseVoiceEnabled |
//!     Export-Csv -NoTypeInformation users.csv
//! ```
//!
//! The pools and computers files are optional. Fields are read by name wherever
//! ConvertTo-Json puts them (a route's `Transport` holds `Fqdn` or `Address` and `Port`), so
//! extra fields, a byte-order mark and a single object instead of an array do not matter.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The routing collection every pool without its own uses.
pub const GLOBAL: &str = "Global";

/// An export that cannot be used, with the file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what the export command writes.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A static route as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedRoute {
    /// The collection (`Global`, `Service:Registrar:pool01.contoso.com`).
    pub collection: String,
    /// MatchUri.
    pub match_uri: String,
    /// Destination FQDN (TLS) or address (TCP).
    pub destination: String,
    /// Port.
    pub port: u16,
    /// A TLS route (it has an FQDN and certificate fields) rather than TCP.
    pub tls: bool,
}

/// A trusted application as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedApp {
    /// Its identity.
    pub identity: String,
    /// Its pool.
    pub pool_fqdn: String,
    /// Port.
    pub port: u16,
    /// `Protocol` is TCP.
    pub tcp: bool,
}

/// A trusted application pool as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedPool {
    /// Its FQDN (`PoolFqdn`, else the `Identity` after `TrustedApplicationPool:`).
    pub fqdn: String,
    /// Its registrar (`Registrar:pool01.contoso.com`).
    pub registrar: String,
    /// `TreatAsAuthenticated` (false: the Front End challenges the gateway's requests).
    pub treat_as_authenticated: bool,
    /// `ThrottleAsServer` (false: the gateway's dialogs are throttled as one client's).
    pub throttle_as_server: bool,
}

/// A computer of a trusted application pool as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedComputer {
    /// Its FQDN (`Identity`).
    pub fqdn: String,
    /// The trusted application pool it belongs to.
    pub pool_fqdn: String,
}

/// An RCC user as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedUser {
    /// SipAddress.
    pub sip_address: String,
    /// LineURI.
    pub line_uri: String,
    /// LineServerURI.
    pub line_server_uri: String,
    /// EnterpriseVoiceEnabled.
    pub enterprise_voice: bool,
}

/// Everything read from the exports.
#[derive(Debug, Clone, Default)]
pub struct Exports {
    /// The routing collections (`Global`, `Service:Registrar:<pool>`), with or without routes.
    pub collections: Vec<String>,
    /// Static routes of every collection.
    pub routes: Vec<ExportedRoute>,
    /// Trusted applications.
    pub apps: Vec<ExportedApp>,
    /// Trusted application pools (`None`: not exported).
    pub pools: Option<Vec<ExportedPool>>,
    /// Trusted application computers (`None`: not exported).
    pub computers: Option<Vec<ExportedComputer>>,
    /// RCC users.
    pub users: Vec<ExportedUser>,
}

impl Exports {
    /// Reads the exports in `dir`.
    pub fn read(dir: &Path) -> Result<Exports, ExportError> {
        let mut e = Exports::default();
        for collection in objects(json(&dir.join("routes.json"))?) {
            let name = text(&collection, "Identity");
            e.collections.push(name.clone());
            let routes = collection
                .get("Route")
                .cloned()
                .map(objects)
                .unwrap_or_default();
            for r in routes {
                let transport = r.get("Transport").cloned().unwrap_or(Value::Null);
                let fqdn = text(&transport, "Fqdn");
                e.routes.push(ExportedRoute {
                    collection: name.clone(),
                    match_uri: text(&r, "MatchUri"),
                    tls: !fqdn.is_empty() || transport.get("TLSCertIssuer").is_some(),
                    destination: if fqdn.is_empty() {
                        text(&transport, "Address")
                    } else {
                        fqdn
                    },
                    port: port(&transport),
                });
            }
        }
        for a in objects(json(&dir.join("trusted-applications.json"))?) {
            e.apps.push(ExportedApp {
                identity: text(&a, "Identity"),
                pool_fqdn: text(&a, "TrustedApplicationPoolFqdn"),
                port: port(&a),
                tcp: text(&a, "Protocol").eq_ignore_ascii_case("tcp"),
            });
        }
        let pools = dir.join("trusted-application-pools.json");
        if pools.exists() {
            e.pools = Some(
                objects(json(&pools)?)
                    .iter()
                    .map(|p| {
                        let identity = text(p, "Identity");
                        let fqdn = match text(p, "PoolFqdn") {
                            f if f.is_empty() => {
                                identity.rsplit(':').next().unwrap_or_default().to_owned()
                            }
                            f => f,
                        };
                        ExportedPool {
                            fqdn,
                            registrar: text(p, "Registrar"),
                            treat_as_authenticated: !text(p, "TreatAsAuthenticated")
                                .eq_ignore_ascii_case("false"),
                            throttle_as_server: !text(p, "ThrottleAsServer")
                                .eq_ignore_ascii_case("false"),
                        }
                    })
                    .collect(),
            );
        }
        let computers = dir.join("trusted-application-computers.json");
        if computers.exists() {
            e.computers = Some(
                objects(json(&computers)?)
                    .iter()
                    .map(|c| ExportedComputer {
                        fqdn: text(c, "Identity"),
                        pool_fqdn: text(c, "Pool"),
                    })
                    .collect(),
            );
        }
        e.users = users(&dir.join("users.csv"))?;
        Ok(e)
    }

    /// The routes Lync applies to requests from a pool's users: those of the pool's own
    /// collection (`Service:Registrar:<pool>`) when it has one (it then ignores the global
    /// collection entirely), else the global ones.
    pub fn routes_for_pool(&self, pool_fqdn: &str) -> Vec<&ExportedRoute> {
        let own = format!("service:registrar:{}", pool_fqdn.to_ascii_lowercase());
        let has_own = self
            .collections
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&own));
        let collection = if has_own { own.as_str() } else { GLOBAL };
        self.routes
            .iter()
            .filter(|r| r.collection.eq_ignore_ascii_case(collection))
            .collect()
    }

    /// The exported settings of a trusted application pool (`None`: pools not exported, or
    /// this one not among them).
    pub fn pool(&self, fqdn: &str) -> Option<&ExportedPool> {
        self.pools
            .as_ref()?
            .iter()
            .find(|p| p.fqdn.eq_ignore_ascii_case(fqdn))
    }

    /// The FQDNs of a trusted application pool's computers; without the computers export, the
    /// pool is taken to be its own single computer.
    pub fn computers_of<'a>(&'a self, pool_fqdn: &'a str) -> Vec<&'a str> {
        match &self.computers {
            Some(c) => c
                .iter()
                .filter(|c| c.pool_fqdn.eq_ignore_ascii_case(pool_fqdn))
                .map(|c| c.fqdn.as_str())
                .collect(),
            None => vec![pool_fqdn],
        }
    }

    /// The collections that are a pool's own, with the pool's FQDN.
    pub fn pool_collections(&self) -> Vec<(&str, &str)> {
        const PREFIX: &str = "service:registrar:";
        self.collections
            .iter()
            .filter_map(|c| {
                let (head, pool) = c.split_at_checked(PREFIX.len())?;
                head.eq_ignore_ascii_case(PREFIX)
                    .then_some((c.as_str(), pool))
            })
            .collect()
    }
}

fn json(path: &Path) -> Result<Value, ExportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ExportError::Read {
        path: path.to_owned(),
        source,
    })?;
    // Out-File writes UTF-8 with a byte-order mark on Windows PowerShell.
    serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| ExportError::Format {
        path: path.to_owned(),
        reason: format!("not the JSON ConvertTo-Json writes ({e})"),
    })
}

fn users(path: &Path) -> Result<Vec<ExportedUser>, ExportError> {
    let format = |reason: String| ExportError::Format {
        path: path.to_owned(),
        reason,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(source) => ExportError::Read {
            path: path.to_owned(),
            source,
        },
        other => format(format!("{other:?}")),
    })?;
    let headers = reader
        .headers()
        .map_err(|e| format(format!("no header row ({e})")))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let (sip, line, server, ev) = (
        col("SipAddress"),
        col("LineURI"),
        col("LineServerURI"),
        col("EnterpriseVoiceEnabled"),
    );
    if sip.is_none() || line.is_none() || server.is_none() {
        return Err(format(
            "needs the columns SipAddress, LineURI and LineServerURI".into(),
        ));
    }
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format(format!("row {}: {e}", i + 2)))?;
        let get = |c: Option<usize>| c.and_then(|c| row.get(c)).unwrap_or("").to_owned();
        out.push(ExportedUser {
            sip_address: get(sip),
            line_uri: get(line),
            line_server_uri: get(server),
            enterprise_voice: get(ev).eq_ignore_ascii_case("true"),
        });
    }
    Ok(out)
}

/// A JSON export's objects (ConvertTo-Json writes one object for a single result).
fn objects(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => vec![other],
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn port(v: &Value) -> u16 {
    match v.get("Port") {
        Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(collection: &str, match_uri: &str) -> ExportedRoute {
        ExportedRoute {
            collection: collection.into(),
            match_uri: match_uri.into(),
            destination: "gw".into(),
            port: 5065,
            tls: true,
        }
    }

    #[test]
    fn a_pool_with_its_own_collection_ignores_the_global_one() {
        let e = Exports {
            collections: vec![
                "Global".into(),
                "Service:Registrar:pool02.contoso.com".into(),
                "Service:Registrar:pool03.contoso.com".into(),
            ],
            routes: vec![
                route("Global", "rcc.contoso.com"),
                route("Service:Registrar:pool02.contoso.com", "other.contoso.com"),
            ],
            ..Exports::default()
        };
        let uris = |pool| {
            e.routes_for_pool(pool)
                .iter()
                .map(|r| r.match_uri.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(uris("pool01.contoso.com"), ["rcc.contoso.com"]);
        assert_eq!(uris("POOL02.contoso.com"), ["other.contoso.com"]);
        // An empty collection of its own leaves a pool with no route at all.
        assert!(uris("pool03.contoso.com").is_empty());
        assert_eq!(
            e.pool_collections(),
            [
                ("Service:Registrar:pool02.contoso.com", "pool02.contoso.com"),
                ("Service:Registrar:pool03.contoso.com", "pool03.contoso.com")
            ]
        );
    }
}
