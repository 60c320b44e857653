//! High availability with the real components: Kamailio (the configuration
//! `rcc-gateway kamailio-config` prints) in front of two `rcc-gateway` processes, the Lync
//! pool routing to Kamailio, one PBX simulator.
//!
//! Six lines with two endpoints each (MPOP) sign in: each line lands on one gateway, so the
//! PBX monitors every device exactly once. The gateway holding more sessions is killed with
//! SIGKILL; its clients' next in-dialog request (their refresh) gets 481 from Kamailio, they
//! sign in again, and land on the survivor, which then monitors every device, once each. The
//! killed gateway, restarted, gets none of the moved lines back (the owner table). Then the
//! survivor drains: its sessions stay (their refreshes are answered), and a new line signs in
//! on the other gateway. And a gateway whose PBX link is down takes no sign-in: every line goes
//! to the other one, whichever the hash prefers. Also: silent clients of a killed gateway get
//! the BYE of Kamailio's dialog keep-alive and move; with every gateway down a sign-in gets 503
//! with Retry-After; events reach clients through the tier, and a Kamailio restart loses no
//! session.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use rcc_lab::kamailio::{ProcessGroup, kamailio_modules, program};
use rcc_lab::lab::{User, WAIT};
use rcc_lab::load::{self, Killed};
use rcc_simulators::lync::{
    ClientProfile, EndpointConfig, LAB_NUMBERING, LabAddress, LyncSim, LyncSimConfig, PoolConfig,
    PoolTls, RouteTransport, StaticRoute, TrustedApplication,
};
use rcc_simulators::pbx::{DeviceConfig, Listen, PbxConfig, PbxSim, Profile};

const LINE_SERVER: &str = "sip:rccgateway@rcc.lab.example";
/// The trusted application pool FQDN of the Kamailio tier, on its certificate.
const KAMAILIO_POOL: &str = "rcc-tier.lab.example";

/// A gateway process with its ports.
struct Gateway {
    config: std::path::PathBuf,
    metrics: u16,
    sip: u16,
    process: Option<Killed>,
}

fn write_gateway(dir: &Path, n: usize, pbx: SocketAddr) -> anyhow::Result<Gateway> {
    let (sip, metrics) = (load::free_port()?, load::free_port()?);
    let config = dir.join(format!("gw{n}.toml"));
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_tcp = \"127.0.0.1:{sip}\"\nhost = \"127.0.0.1\"\ntrusted_peer = [{{ ip = \"127.0.0.1\" }}]\n\
             [pbx]\naddress = \"{pbx}\"\nreconnect_min_ms = 100\nreconnect_max_ms = 500\n\
             [observe]\nhttp = \"127.0.0.1:{metrics}\"\n{LAB_NUMBERING}"
        ),
    )?;
    Ok(Gateway {
        config,
        metrics,
        sip,
        process: None,
    })
}

impl Gateway {
    async fn start(&mut self, dir: &Path, n: usize) -> anyhow::Result<()> {
        self.process = Some(load::spawn(
            &load::binary("rcc-gateway")?,
            &["--config", &self.config.to_string_lossy()],
            &dir.join(format!("gw{n}.log")),
        )?);
        load::listening(self.sip, "the gateway").await
    }

    /// A gauge of the gateway's /metrics.
    fn gauge(&self, name: &str) -> anyhow::Result<f64> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.metrics))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: gw\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("{name} not in /metrics"))
    }
}

/// Devices monitored at the PBX, one entry per monitor.
async fn monitored(pbx: &PbxSim) -> anyhow::Result<Vec<String>> {
    let mut devices: Vec<String> = pbx
        .links()
        .await?
        .into_iter()
        .flat_map(|l| l.monitors.into_iter().map(|(_, d)| d))
        .collect();
    devices.sort();
    Ok(devices)
}

/// Waits until `check` holds (it says what it saw when it does not), for [`WAIT`].
async fn until<F, Fut>(what: &str, check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<String>>>,
{
    until_within(what, WAIT, check).await
}

/// Waits until `check` holds, for `within`.
async fn until_within<F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<String>>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let seen = check().await?;
        let Some(seen) = seen else { return Ok(()) };
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what}: still {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many times each endpoint signed in.
async fn sign_ins(lync: &LyncSim, endpoints: &[usize]) -> anyhow::Result<Vec<u32>> {
    let ids = endpoints.to_vec();
    lync.with(move |fe, _| {
        ids.iter()
            .filter_map(|&id| fe.endpoint(id).map(|e| e.sign_ins()))
            .collect()
    })
    .await
}

/// Six lines, and a seventh that signs in later.
fn lab_users() -> (Vec<User>, User) {
    let users = (1..=6)
        .map(|i| User::new(&format!("user{i}"), &format!("200{i}")))
        .collect();
    (users, User::new("user7", "2007"))
}

/// A PBX simulator with these users' desk phones.
async fn pbx_for(users: &[&User]) -> anyhow::Result<(PbxSim, SocketAddr)> {
    let pbx = PbxSim::start(
        PbxConfig::for_profile(Profile::Generic),
        users
            .iter()
            .map(|u| DeviceConfig::new(&u.extension, Some(&u.e164())))
            .collect(),
        Listen::loopback(),
    )
    .await?;
    let addr = pbx
        .tcp_addr()
        .ok_or_else(|| anyhow::anyhow!("PBX simulator without TCP"))?;
    Ok((pbx, addr))
}

/// Two gateways (each on its PBX address), Kamailio with the configuration printed for them,
/// and the pool routing the LineServerURI's domain to the Kamailio node (a TCP trusted
/// application).
struct Tier {
    gateways: [Gateway; 2],
    kamailio: Option<ProcessGroup>,
    kamailio_port: u16,
    lync: LyncSim,
    dir: std::path::PathBuf,
}

impl Tier {
    /// Starts Kamailio on the printed configuration and waits until it listens.
    async fn start_kamailio(&mut self) -> anyhow::Result<()> {
        self.kamailio = Some(spawn_kamailio(&self.dir)?);
        load::listening(self.kamailio_port, "Kamailio").await
    }
}

fn spawn_kamailio(dir: &Path) -> anyhow::Result<ProcessGroup> {
    let modules = kamailio_modules()?;
    ProcessGroup::spawn(
        &program("kamailio", "kamailio")?,
        &[
            "-DD",
            "-E",
            "-L",
            &modules.to_string_lossy(),
            "-f",
            &dir.join("kamailio.cfg").to_string_lossy(),
        ],
        &dir.join("kamailio.log"),
    )
}

impl Drop for Tier {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn tier(name: &str, pbx: [SocketAddr; 2]) -> anyhow::Result<Tier> {
    tier_with(name, pbx, false).await
}

/// The tier, with the Front End pool reaching Kamailio (and Kamailio the pool) over mutual TLS
/// when `tls`, certificates from a lab CA: Kamailio's names the trusted application pool.
async fn tier_with(name: &str, pbx: [SocketAddr; 2], tls: bool) -> anyhow::Result<Tier> {
    let dir = std::env::temp_dir().join(format!("rcc-ha-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut gateways = [
        write_gateway(&dir, 1, pbx[0])?,
        write_gateway(&dir, 2, pbx[1])?,
    ];
    for (i, g) in gateways.iter_mut().enumerate() {
        g.start(&dir, i + 1).await?;
    }
    let kamailio_port = load::free_port()?;
    let tls_port = load::free_port()?;
    let ca = rcc_simulators::tls::LabCa::new("rcc-lab HA CA")?;
    let mut tls_args: Vec<String> = Vec::new();
    if tls {
        let kamailio_id = ca.issue(&[KAMAILIO_POOL])?;
        for (file, text) in [
            ("ca.pem", &ca.cert_pem),
            ("kamailio.crt", &kamailio_id.cert_pem),
            ("kamailio.key", &kamailio_id.key_pem),
        ] {
            std::fs::write(dir.join(file), text)?;
        }
        tls_args.extend([
            "--tls-listen".to_owned(),
            format!("127.0.0.1:{tls_port}"),
            "--tls-config".to_owned(),
            dir.join("rcc-tls.cfg").display().to_string(),
        ]);
        for (flag, file) in [
            ("--tls-cert", "kamailio.crt"),
            ("--tls-key", "kamailio.key"),
            ("--tls-ca", "ca.pem"),
        ] {
            tls_args.extend([flag.to_owned(), dir.join(file).display().to_string()]);
        }
    }
    let out = std::process::Command::new(load::binary("rcc-gateway")?)
        .arg("--config")
        .arg(&gateways[0].config)
        .arg("kamailio-config")
        .arg("--gateway")
        .arg(&gateways[1].config)
        .args(["--listen", &format!("127.0.0.1:{kamailio_port}")])
        .arg("--dispatcher-list")
        .arg(dir.join("rcc-dispatcher.list"))
        .args(["--probe-interval-s", "1", "--probe-misses", "1"])
        .args(["--dialog-keepalive-s", "30"])
        .args(&tls_args)
        .arg("--out")
        .arg(&dir)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "kamailio-config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kamailio = spawn_kamailio(&dir)?;
    load::listening(kamailio_port, "Kamailio").await?;
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    // The pool's Record-Route names its own listener, so Kamailio reaches it for requests in a
    // dialog that come from Kamailio itself (the keep-alive's BYE), as from a real Front End.
    let pool_port = load::free_port()?;
    let (transport, destination, port) = if tls {
        (RouteTransport::Tls, KAMAILIO_POOL, tls_port)
    } else {
        (RouteTransport::Tcp, "127.0.0.1", kamailio_port)
    };
    let lync = LyncSim::start(LyncSimConfig {
        pool: PoolConfig {
            fqdn: "127.0.0.1".into(),
            port: pool_port,
            static_routes: vec![StaticRoute {
                match_uri: "rcc.lab.example".into(),
                transport,
                destination: destination.into(),
                port,
                use_default_certificate: true,
            }],
            trusted_applications: vec![TrustedApplication {
                pool_fqdn: destination.into(),
                ip: Some(localhost),
                port,
                tcp_enabled: !tls,
                treat_as_authenticated: true,
            }],
        },
        listen: Some(SocketAddr::from((localhost, pool_port))),
        tls: tls
            .then(|| -> anyhow::Result<PoolTls> {
                Ok(PoolTls {
                    identity: ca.issue(&["fe.lab.example"])?,
                    roots: ca.roots(),
                })
            })
            .transpose()?,
        hosts: [(KAMAILIO_POOL.to_owned(), LabAddress::Ip(localhost))].into(),
        clients: None,
    })
    .await?;
    Ok(Tier {
        gateways,
        kamailio: Some(kamailio),
        kamailio_port,
        lync,
        dir,
    })
}

/// A Lync 2013 endpoint of `u`, signing in again 200 ms after its dialog ends.
fn endpoint(u: &User, epid: &str, port: usize) -> EndpointConfig {
    EndpointConfig {
        user: u.uri(),
        epid: format!("{}{epid}", u.name),
        line: u.line(),
        line_server: LINE_SERVER.into(),
        profile: ClientProfile::Lync2013,
        refresh: None,
        reestablish: true,
        reestablish_delay: Duration::from_millis(200),
        address: format!("192.0.2.10:{}", 51000 + port),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_stay_on_one_gateway_and_move_once_when_it_dies() -> anyhow::Result<()> {
    let (users, late) = lab_users();
    let devices: Vec<String> = users.iter().map(|u| u.extension.clone()).collect();
    let everyone: Vec<&User> = users.iter().chain([&late]).collect();
    let (pbx, pbx_addr) = pbx_for(&everyone).await?;
    let mut t = tier("move", [pbx_addr, pbx_addr]).await?;
    let (dir, lync) = (t.dir.clone(), t.lync.clone());
    let gateways = &mut t.gateways;
    let mut endpoints = Vec::new();
    for u in &users {
        for epid in ["desk", "laptop"] {
            let id = lync
                .add_endpoint(endpoint(u, epid, endpoints.len()))
                .await?;
            lync.sign_in(id).await?;
            endpoints.push(id);
        }
    }
    for &id in &endpoints {
        lync.wait_ready(id, WAIT).await?;
    }
    // Every line on one gateway: each device monitored once, not once per gateway.
    let mut expected = devices.clone();
    expected.sort();
    assert_eq!(monitored(&pbx).await?, expected);
    let sessions: Vec<f64> = gateways
        .iter()
        .map(|g| g.gauge("rcc_gateway_sessions"))
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(sessions.iter().sum::<f64>(), 12.0, "{sessions:?}");
    let monitors: Vec<f64> = gateways
        .iter()
        .map(|g| g.gauge("rcc_gateway_monitors"))
        .collect::<anyhow::Result<_>>()?;
    for (s, m) in sessions.iter().zip(&monitors) {
        assert_eq!(
            *s,
            m * 2.0,
            "two endpoints per monitored line: {sessions:?} {monitors:?}"
        );
    }

    // The gateway with more sessions dies.
    let dead = usize::from(sessions[1] > sessions[0]);
    let alive = 1 - dead;
    let moved = monitors[dead];
    gateways[dead].process = None;
    until("the dead gateway's PBX link closed", || async {
        let n = pbx.links().await?.len();
        Ok((n != 1).then(|| format!("{n} links")))
    })
    .await?;
    // Every client refreshes; those of the dead gateway get 481 and sign in again.
    for &id in &endpoints {
        lync.refresh(id).await?;
    }
    let survivor = &gateways[alive];
    until("every session on the survivor", || async {
        let s = survivor.gauge("rcc_gateway_sessions")?;
        Ok((s != 12.0).then(|| format!("{s} sessions")))
    })
    .await?;
    for &id in &endpoints {
        lync.wait_ready(id, WAIT).await?;
    }
    assert_eq!(
        monitored(&pbx).await?,
        expected,
        "each device once, on the survivor"
    );
    assert_eq!(survivor.gauge("rcc_gateway_monitors")?, 6.0);
    assert!(moved >= 1.0);

    // Restarted, the dead gateway takes none of the lines back: their owner is the survivor.
    gateways[dead].start(&dir, dead + 1).await?;
    until("the restarted gateway's PBX link", || async {
        let n = pbx.links().await?.len();
        Ok((n != 2).then(|| format!("{n} links")))
    })
    .await?;
    // Probed back into rotation (1 s probes), then every client signs in again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for &id in &endpoints {
        lync.sign_out(id).await?;
    }
    for &id in &endpoints {
        lync.sign_in(id).await?;
    }
    for &id in &endpoints {
        lync.wait_ready(id, WAIT).await?;
    }
    assert_eq!(gateways[dead].gauge("rcc_gateway_sessions")?, 0.0);
    assert_eq!(monitored(&pbx).await?, expected);

    // The survivor drains (SIGUSR1): its sessions stay and refresh, a new line goes elsewhere.
    let survivor = &gateways[alive];
    let pid = survivor
        .process
        .as_ref()
        .map(|p| p.0.id())
        .ok_or_else(|| anyhow::anyhow!("the survivor is not running"))?;
    let usr1 = std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()?;
    anyhow::ensure!(usr1.success(), "kill -USR1");
    until("the survivor draining", || async {
        let d = survivor.gauge("rcc_gateway_draining")?;
        Ok((d != 1.0).then(|| format!("draining = {d}")))
    })
    .await?;
    for &id in &endpoints {
        lync.refresh(id).await?;
    }
    let newcomer = lync.add_endpoint(endpoint(&late, "desk", 99)).await?;
    lync.sign_in(newcomer).await?;
    lync.wait_ready(newcomer, WAIT).await?;
    for &id in &endpoints {
        lync.wait_ready(id, WAIT).await?;
    }
    assert_eq!(
        survivor.gauge("rcc_gateway_sessions")?,
        12.0,
        "nobody moved"
    );
    assert_eq!(
        gateways[dead].gauge("rcc_gateway_sessions")?,
        1.0,
        "the new line went to the gateway that is not draining"
    );
    Ok(())
}

/// A gateway that lost its PBX link answers the tier's probes 503 (and INVITEs too): every
/// new sign-in goes to the other gateway, whichever the line hashes to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_its_pbx_link_takes_no_sign_in() -> anyhow::Result<()> {
    let (users, _) = lab_users();
    let everyone: Vec<&User> = users.iter().collect();
    let (pbx_a, addr_a) = pbx_for(&everyone).await?;
    let (_pbx_b, addr_b) = pbx_for(&everyone).await?;
    let t = tier("pbx-down", [addr_a, addr_b]).await?;
    until("both gateways serving", || async {
        let up: Vec<f64> = t
            .gateways
            .iter()
            .map(|g| g.gauge("rcc_gateway_pbx_link_up"))
            .collect::<anyhow::Result<_>>()?;
        Ok((up != [1.0, 1.0]).then(|| format!("{up:?}")))
    })
    .await?;
    // The first gateway's PBX goes away.
    drop(pbx_a);
    until("the first gateway's PBX link down", || async {
        let up = t.gateways[0].gauge("rcc_gateway_pbx_link_up")?;
        Ok((up != 0.0).then(|| format!("pbx_link_up = {up}")))
    })
    .await?;
    let mut endpoints = Vec::new();
    for (n, u) in users.iter().enumerate() {
        let id = t.lync.add_endpoint(endpoint(u, "desk", n)).await?;
        t.lync.sign_in(id).await?;
        endpoints.push(id);
    }
    for &id in &endpoints {
        t.lync.wait_ready(id, WAIT).await?;
    }
    assert_eq!(t.gateways[0].gauge("rcc_gateway_sessions")?, 0.0);
    assert_eq!(t.gateways[1].gauge("rcc_gateway_sessions")?, 6.0);
    Ok(())
}

/// A gateway killed with SIGKILL while its clients stay silent (no refresh, no request):
/// Kamailio's in-dialog keep-alive finds it gone and ends each of its dialogs with a BYE to the
/// client, which signs in again and lands on the survivor. Before, those clients kept a dead
/// session until their own next request (a Lync refresh: up to 25 minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_of_a_dead_gateway_get_a_bye_and_move() -> anyhow::Result<()> {
    let (users, _) = lab_users();
    let everyone: Vec<&User> = users.iter().collect();
    let (pbx, pbx_addr) = pbx_for(&everyone).await?;
    let mut t = tier("bye", [pbx_addr, pbx_addr]).await?;
    let lync = t.lync.clone();
    let mut endpoints = Vec::new();
    for (n, u) in users.iter().enumerate() {
        let id = lync.add_endpoint(endpoint(u, "desk", n)).await?;
        lync.sign_in(id).await?;
        endpoints.push(id);
    }
    for &id in &endpoints {
        lync.wait_ready(id, WAIT).await?;
    }
    let sessions: Vec<f64> = t
        .gateways
        .iter()
        .map(|g| g.gauge("rcc_gateway_sessions"))
        .collect::<anyhow::Result<_>>()?;
    let dead = usize::from(sessions[1] > sessions[0]);
    anyhow::ensure!(sessions[dead] >= 1.0, "nobody to move: {sessions:?}");
    let killed_at = std::time::Instant::now();
    t.gateways[dead].process = None;
    // Keep-alive every 30 s (checked every 10 s), 6 s for the OPTIONS to time out, 10 s of
    // grace: the BYE comes within about 56 s.
    let survivor = &t.gateways[1 - dead];
    until_within(
        "every session on the survivor, without a refresh",
        Duration::from_secs(90),
        || async {
            let s = survivor.gauge("rcc_gateway_sessions")?;
            Ok((s != 6.0).then(|| format!("{s} sessions")))
        },
    )
    .await?;
    let moved_in = killed_at.elapsed();
    for &id in &endpoints {
        lync.wait_ready(id, WAIT).await?;
    }
    let mut expected: Vec<String> = users.iter().map(|u| u.extension.clone()).collect();
    expected.sort();
    assert_eq!(monitored(&pbx).await?, expected, "each device once");
    eprintln!("the dead gateway's clients were back after {moved_in:?}");
    // Exactly the dead gateway's clients signed in again; the others were not disturbed.
    let sign_ins: u32 = sign_ins(&lync, &endpoints).await?.iter().sum();
    assert_eq!(f64::from(sign_ins), 6.0 + sessions[dead], "{sessions:?}");
    Ok(())
}

/// Every gateway down: a sign-in through the tier is answered at once with 503 and a
/// Retry-After from Kamailio, not left to time out: while the probes have not noticed yet
/// (the connection fails: `Retry-After: 0`), and once both are out of rotation
/// (`Retry-After: 10`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_gateway_down_a_sign_in_gets_503_with_retry_after() -> anyhow::Result<()> {
    let (users, _) = lab_users();
    let everyone: Vec<&User> = users.iter().collect();
    let (_pbx, pbx_addr) = pbx_for(&everyone).await?;
    let mut t = tier("all-down", [pbx_addr, pbx_addr]).await?;
    for g in &mut t.gateways {
        g.process = None;
    }
    let mut config = endpoint(&users[0], "desk", 0);
    config.reestablish = false;
    let id = t.lync.add_endpoint(config).await?;
    // Probes every second, one miss: both gateways leave rotation within a few seconds.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        t.lync.sign_in(id).await?;
        t.lync
            .wait_for(id, WAIT, "the sign-in refused", |e| {
                matches!(e.phase(), rcc_simulators::lync::Phase::Failed(why) if why.contains("503"))
                    .then_some(())
            })
            .await?;
        let trace = t.lync.trace().await?;
        let refusal = trace
            .iter()
            .rev()
            .find(|e| e.text.starts_with("SIP/2.0 503"))
            .ok_or_else(|| anyhow::anyhow!("no 503 in the pool's trace"))?;
        let head = refusal.text.lines().next().unwrap_or_default().to_owned();
        let retry = refusal
            .text
            .lines()
            .find_map(|l| l.strip_prefix("Retry-After: "))
            .map(str::to_owned);
        seen.push(format!("{head} / Retry-After {retry:?}"));
        assert!(retry.is_some(), "a 503 without Retry-After: {seen:?}");
        if head.contains("No rcc-gateway available") {
            assert_eq!(retry.as_deref(), Some("10"), "{seen:?}");
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the gateways never left rotation: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Events reach the clients through the tier (gateway → Kamailio → the pool's listener, by the
/// pool's Record-Route; over TCP, and over mutual TLS as with a real Front End, whose
/// Record-Route names its TLS port), and a Kamailio restart loses no session: the clients' refreshes go
/// through the new process to the gateway that holds them (nobody signs in again), and the
/// gateway's next event INFO reaches its client again.
#[rstest::rstest]
#[case::tcp(false)]
#[case::mutual_tls(true)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_events_survive_a_kamailio_restart(#[case] tls: bool) -> anyhow::Result<()> {
    use rcc_protocol::csta::CallEventKind as K;
    let (users, _) = lab_users();
    let everyone: Vec<&User> = users.iter().collect();
    let (pbx, pbx_addr) = pbx_for(&everyone).await?;
    let name = if tls { "restart-tls" } else { "restart" };
    let mut t = tier_with(name, [pbx_addr, pbx_addr], tls).await?;
    let lync = t.lync.clone();
    let mut endpoints = Vec::new();
    for (n, u) in users.iter().take(2).enumerate() {
        let id = lync.add_endpoint(endpoint(u, "desk", n)).await?;
        lync.sign_in(id).await?;
        endpoints.push(id);
    }
    for &id in &endpoints {
        lync.wait_ready(id, WAIT).await?;
    }
    let (first, line) = (endpoints[0], users[0].extension.clone());
    pbx.incoming("+14255550200", &line).await?;
    let (seen, _) = lync.wait_call_event(first, 0, WAIT, K::Delivered).await?;
    pbx.hang_up("+14255550200").await.ok();

    t.kamailio = None;
    t.start_kamailio().await?;
    for &id in &endpoints {
        lync.refresh(id).await?;
    }
    for &id in &endpoints {
        lync.wait_for(id, WAIT, "a refresh through the new Kamailio", |e| {
            (e.refreshes() >= 1).then_some(())
        })
        .await?;
    }
    assert_eq!(
        sign_ins(&lync, &endpoints).await?,
        [1, 1],
        "nobody signed in again"
    );
    pbx.incoming("+14255550201", &line).await?;
    lync.wait_call_event(first, seen + 1, WAIT, K::Delivered)
        .await?;
    Ok(())
}
