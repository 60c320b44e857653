//! The simulated pool built from a real Lync topology: `lync-sim`'s configuration loaded with
//! the Management Shell exports `rcc-gateway lync-check` reads
//! (`gateway/tests/fixtures/lync-exports/`), against our gateway over mutual TLS and the PBX
//! simulator. The correct exports route the exported users to the gateway, which monitors
//! their lines and places their calls; a MatchUri narrower than the LineServerURI's domain,
//! or a pool routing collection of its own without the route, makes sign-in fail with the
//! pool's 404, as on a real pool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcc_gateway::config as gwconfig;
use rcc_gateway::shell::server::GatewayHandle;
use rcc_protocol::csta::{AutoOriginate, Request, Response};
use rcc_simulators::lync::{LyncSim, Phase, config, expect_response};
use rcc_simulators::pbx::{DeviceConfig, Listen, PbxConfig, PbxSim, Profile};
use rcc_simulators::tls::LabCa;

const WAIT: Duration = Duration::from_secs(10);
const GATEWAY: &str = "rccgw.contoso.com";
const POOL: &str = "pool01.contoso.com";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway/tests/fixtures/lync-exports")
}

/// A temporary folder removed when dropped.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fixtures copied into `dir/exports`, `routes.json` edited.
fn exports(dir: &Path, edit_routes: impl Fn(String) -> String) -> anyhow::Result<PathBuf> {
    let out = dir.join("exports");
    std::fs::create_dir_all(&out)?;
    for entry in std::fs::read_dir(fixtures())? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        let name = path.file_name().unwrap_or_default();
        let text = if name == "routes.json" {
            edit_routes(text)
        } else {
            text
        };
        std::fs::write(out.join(name), text)?;
    }
    Ok(out)
}

/// The PBX simulator with the exported users' desk phones, our gateway on mutual TLS as the
/// exported trusted application, and the simulated pool from `lync.toml` plus the exports.
struct Rollout {
    pbx: PbxSim,
    gateway: GatewayHandle,
    lync: LyncSim,
    endpoints: Vec<usize>,
    _dir: Dir,
}

async fn rollout(name: &str, edit_routes: impl Fn(String) -> String) -> anyhow::Result<Rollout> {
    let dir =
        Dir(std::env::temp_dir().join(format!("rcc-lync-exports-{name}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let write = |file: &str, text: &str| -> anyhow::Result<String> {
        let p = dir.0.join(file);
        std::fs::write(&p, text)?;
        Ok(rcc_lab::labconfig::quoted(&p))
    };
    let ca = LabCa::new("lync-exports test CA")?;
    let (gw, pool) = (ca.issue(&[GATEWAY])?, ca.issue(&[POOL])?);
    let ca_file = write("ca.pem", &ca.cert_pem)?;

    let pbx = PbxSim::start(
        PbxConfig::for_profile(Profile::Generic),
        vec![
            DeviceConfig::new("100", Some("+14255550100")),
            DeviceConfig::new("101", Some("+14255550101")),
        ],
        Listen::loopback(),
    )
    .await?;
    let pbx_addr = pbx
        .tcp_addr()
        .ok_or_else(|| anyhow::anyhow!("PBX simulator without TCP"))?;
    let gateway_toml = format!(
        r#"[sip]
listen_tls = "127.0.0.1:0"
host = "{GATEWAY}"
trusted_peer = [{{ name = "{POOL}" }}]
[sip.tls]
cert = {cert}
key = {key}
client_ca = {ca_file}
client_cert = "required"
[pbx]
address = "{pbx_addr}"
[numbering]
line = "ext"
[[numbering.to_pbx]]
pattern = '\+14255550(\d{{3}})'
replace = "$1"
[[numbering.to_lync]]
pattern = '(\d{{3}})'
replace = "+14255550$1"
"#,
        cert = write("gw.crt", &gw.cert_pem)?,
        key = write("gw.key", &gw.key_pem)?,
    );
    let mut gw_config = gwconfig::parse_unchecked(&gateway_toml)?;
    let problems = gwconfig::check(&mut gw_config);
    anyhow::ensure!(problems.is_empty(), "gateway.toml: {problems:?}");
    let gateway = GatewayHandle::start(gw_config).await?;
    let gw_addr = gateway
        .sip_tls
        .ok_or_else(|| anyhow::anyhow!("gateway without TLS listener"))?;

    // The exported route says rccgw.contoso.com:5065; the lab's gateway listens elsewhere.
    let lync_toml = dir.0.join("lync.toml");
    std::fs::write(
        &lync_toml,
        format!(
            "[pool]\nfqdn = \"{POOL}\"\n[tls]\nca = {ca_file}\ncert = {}\nkey = {}\n[hosts]\n\"{GATEWAY}\" = \"{gw_addr}\"\n",
            write("pool.crt", &pool.cert_pem)?,
            write("pool.key", &pool.key_pem)?,
        ),
    )?;
    let exports = exports(&dir.0, edit_routes)?;
    let file = config::load(&lync_toml, Some(&exports))?;
    let lync = LyncSim::start(file.sim_config()?).await?;
    let mut endpoints = Vec::new();
    for e in file.endpoints() {
        let id = lync.add_endpoint(e).await?;
        lync.sign_in(id).await?;
        endpoints.push(id);
    }
    Ok(Rollout {
        pbx,
        gateway,
        lync,
        endpoints,
        _dir: dir,
    })
}

#[tokio::test]
async fn the_exported_topology_routes_its_users_to_the_gateway() -> anyhow::Result<()> {
    let r = rollout("good", |t| t).await?;
    assert_eq!(r.endpoints.len(), 2, "katie and bob from users.csv");
    for &id in &r.endpoints {
        r.lync.wait_ready(id, WAIT).await?;
    }
    assert_eq!(r.gateway.sessions().await?, 2);
    assert_eq!(r.lync.stats().await?.no_route, 0);

    // katie (tel:+14255550100;ext=100) clicks to dial bob: the PBX connects desk phone 100.
    let katie = r.endpoints[0];
    let answer = expect_response(
        r.lync
            .request(
                katie,
                Request::MakeCall {
                    calling: "tel:+14255550100;ext=100".into(),
                    called: "tel:+14255550101".into(),
                    auto_originate: Some(AutoOriginate::DoNotPrompt),
                },
                WAIT,
            )
            .await?,
    )?;
    assert!(
        matches!(answer, Response::MakeCall { .. }),
        "MakeCall answered {answer:?}"
    );
    let calls = r.pbx.calls().await?;
    let devices: Vec<Vec<String>> = calls
        .iter()
        .map(|c| c.parties.iter().map(|p| p.device.clone()).collect())
        .collect();
    assert_eq!(devices, [["100", "101"]], "{calls:?}");
    Ok(())
}

/// Every exported user's sign-in ends in the pool's 404 and nothing reaches the gateway.
async fn refused_with_404(r: &Rollout) -> anyhow::Result<()> {
    for &id in &r.endpoints {
        let why = r
            .lync
            .wait_for(id, WAIT, "404", |e| match e.phase() {
                Phase::Failed(w) => Some(w.clone()),
                _ => None,
            })
            .await?;
        assert_eq!(why, "INVITE answered 404");
    }
    assert_eq!(r.lync.stats().await?.no_route, 2);
    assert_eq!(r.gateway.sessions().await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_match_uri_narrower_than_the_line_server_domain_gets_404() -> anyhow::Result<()> {
    let r = rollout("narrow", |t| {
        t.replace("\"rcc.contoso.com\"", "\"gw.rcc.contoso.com\"")
    })
    .await?;
    refused_with_404(&r).await
}

#[tokio::test]
async fn a_pool_collection_of_its_own_hides_the_global_route() -> anyhow::Result<()> {
    let r = rollout("pool-collection", |t| {
        let t = t.trim_end().trim_end_matches(']');
        format!(
            "{t},\n{{ \"Identity\": \"Service:Registrar:{POOL}\", \"Route\": [ {{ \"Transport\": {{ \"Fqdn\": \"{GATEWAY}\", \"Port\": 5065 }}, \"MatchUri\": \"voicemail.contoso.com\" }} ] }}\n]\n"
        )
    })
    .await?;
    refused_with_404(&r).await
}
