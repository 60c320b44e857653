//! `rcc-lab failover`: N gateway processes behind Kamailio (the tier of `rcc_lab::tier`), the
//! PBX simulator and the Lync load generator as processes of their own. Every user signs in;
//! then the gateway holding the most sessions is killed with SIGKILL, and the harness measures
//! how long until every one of its users has RCC again on the survivors (each session back and
//! each line monitored), and the CPU Kamailio spent per request meanwhile.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::load::{self, Killed};
use crate::tier::{PbxAccess, Tier, TierOptions};

/// What to run: the options of `rcc-lab failover`.
#[derive(Debug, Clone, clap::Args)]
pub struct FailoverOptions {
    /// Users (one line and one endpoint each).
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Gateway processes behind Kamailio.
    #[arg(long, default_value_t = 2)]
    pub gateways: usize,
    /// Sign-ins per second at the start.
    #[arg(long, default_value_t = 2000.0)]
    pub signin_rate: f64,
    /// A PBX that takes this many requests a second in all (the simulator refuses beyond
    /// 1.1 × it), shared by the gateways: each is paced to its share. Without: an unlimited
    /// PBX and unpaced gateways.
    #[arg(long)]
    pub pbx_rate: Option<f64>,
    /// How long a client waits after losing its session before signing in again, ms.
    #[arg(long, default_value_t = 200)]
    pub reestablish_ms: u64,
    /// Kamailio's shared memory, MB (its -m): every session's dialog and transactions live
    /// there (Debian's default of 64 holds about 4,000 sessions).
    #[arg(long, default_value_t = 1024)]
    pub kamailio_shm_mb: u32,
    /// Output folder (configurations and logs).
    #[arg(long, default_value = "target/rcc-lab-failover")]
    pub out: PathBuf,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct FailoverReport {
    /// The figures, one per line.
    pub text: String,
    /// Sessions the killed gateway held.
    pub moved: usize,
    /// Seconds from the kill until the first of them was back.
    pub first_back_s: f64,
    /// Seconds from the kill until all of them were back, each line monitored.
    pub all_back_s: f64,
    /// The killed gateway's dialogs Kamailio ended at once (its log says how many), rather
    /// than leaving them to the clients' own requests or the keep-alive.
    pub dialogs_ended_by_kamailio: usize,
}

/// The longest wait for the sign-ins, and for the moved users to be back.
const PHASE_LIMIT: Duration = Duration::from_secs(300);

/// What the running gateways say, summed, from one scrape of each.
#[derive(Debug, Default)]
struct Totals {
    sessions: f64,
    monitors: f64,
    /// Sessions they started.
    started: f64,
    /// Clients' MonitorStarts answered with an error (the PBX refused it, or it waited too
    /// long for its turn): such a client stays signed in without a monitor, so the phase it
    /// happens in can never complete.
    monitors_failed: f64,
}

impl Totals {
    async fn of(tier: &Tier) -> anyhow::Result<Totals> {
        let mut t = Totals::default();
        for g in tier.gateways().iter().filter(|g| g.running()) {
            let text = g.scrape().await?;
            t.sessions += load::metric(&text, "rcc_gateway_sessions");
            t.monitors += load::metric(&text, "rcc_gateway_monitors");
            t.started += load::metric(&text, "rcc_gateway_sessions_started_total");
            t.monitors_failed += load::metric_labelled(
                &text,
                "rcc_gateway_csta_requests_total",
                "service=\"MonitorStart\"",
            ) - load::metric(
                &text,
                "rcc_gateway_csta_requests_total{service=\"MonitorStart\",outcome=\"ok\"}",
            );
        }
        Ok(t)
    }

    /// Itself, or an error when clients' MonitorStarts failed, naming `phase`.
    fn checked(self, phase: &str, out: &std::path::Path) -> anyhow::Result<Totals> {
        anyhow::ensure!(
            self.monitors_failed == 0.0,
            "{} MonitorStarts failed {phase} (refused by the PBX, or over the pacer's wait), so those users stay without RCC; see the gateways' logs in {}",
            self.monitors_failed,
            out.display()
        );
        Ok(self)
    }
}

/// The dialogs Kamailio's log says it ended at once because their gateway was gone (its
/// `route[GONE]` prints "N of M sessions were its").
fn ended_at_once(log: &str) -> usize {
    log.lines()
        .filter_map(|l| {
            let (before, _) = l.split_once(" sessions were its")?;
            let (count, _) = before.rsplit_once(" of ")?;
            count.rsplit(' ').next()?.parse::<usize>().ok()
        })
        .sum()
}

/// SIP requests the running gateways received, OPTIONS probes and keep-alives excepted.
async fn relayed(tier: &Tier) -> anyhow::Result<f64> {
    let mut n = 0.0;
    for g in tier.gateways().iter().filter(|g| g.running()) {
        n += g.metric("rcc_gateway_sip_requests_total").await?
            - g.metric("rcc_gateway_sip_requests_total{method=\"OPTIONS\"}")
                .await?;
    }
    Ok(n)
}

/// Runs it and reports.
pub async fn run(o: &FailoverOptions) -> anyhow::Result<FailoverReport> {
    anyhow::ensure!(o.gateways >= 2, "a failover needs at least two gateways");
    anyhow::ensure!(o.users > 0, "a failover needs users");
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let pbx_port = load::free_port()?;
    let pbx_cfg = o.out.join("pbx.toml");
    std::fs::write(&pbx_cfg, load::pbx_toml(o.users, o.pbx_rate, pbx_port))?;
    let _pbx = load::spawn(
        &load::binary("pbx-sim")?,
        &["--config", &pbx_cfg.to_string_lossy()],
        &o.out.join("pbx-sim.log"),
    )?;
    load::listening(pbx_port, "the PBX simulator").await?;
    let ca = rcc_simulators::tls::LabCa::new("rcc-lab failover CA")?;
    let mut tier = Tier::start(
        &o.out,
        &TierOptions {
            gateways: o.gateways,
            tls: false,
            dialog_keepalive_s: 30,
            pace_per_s: Some(o.pbx_rate.map_or(0.0, |n| n / o.gateways as f64)),
            kamailio_shm_mb: o.kamailio_shm_mb,
        },
        &PbxAccess {
            address: ([127, 0, 0, 1], pbx_port).into(),
            profile: "generic",
            login: None,
        },
        &ca,
        &["127.0.0.1"],
    )
    .await?;

    // The pool listens where its Record-Route says: Kamailio's BYEs and the events reach it.
    let pool_port = load::free_port()?;
    let front = tier.front.port();
    let lync_cfg = o.out.join("lync.toml");
    std::fs::write(
        &lync_cfg,
        format!(
            "listen = \"127.0.0.1:{pool_port}\"\n[pool]\nfqdn = \"127.0.0.1\"\nport = {pool_port}\n\
             [[pool.static_route]]\nmatch_uri = \"rcc.contoso.com\"\ntransport = \"tcp\"\n\
             destination = \"127.0.0.1\"\nport = {front}\n\
             [[pool.trusted_application]]\npool_fqdn = \"127.0.0.1\"\nip = \"127.0.0.1\"\n\
             port = {front}\ntcp_enabled = true\n"
        ),
    )?;
    let hold_s = (o.users as f64 / o.signin_rate) as u64 + 2 * PHASE_LIMIT.as_secs();
    let mut generator = Killed(
        std::process::Command::new(load::binary("lync-sim")?)
            .args(["load", "--config", &lync_cfg.to_string_lossy()])
            .args(["--users", &o.users.to_string()])
            .args(["--first-extension", "100000"])
            .args(["--line", "tel:+1425{ext};ext={ext}"])
            .args(["--line-server", "sip:rccgateway@rcc.contoso.com"])
            .args(["--signin-rate", &o.signin_rate.to_string()])
            .args(["--call-rate", "0", "--duration", &hold_s.to_string()])
            .args(["--reestablish-ms", &o.reestablish_ms.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(std::fs::File::create(o.out.join("lync-sim.out"))?)
            .stderr(std::fs::File::create(o.out.join("lync-sim.log"))?)
            .spawn()
            .context("starting lync-sim load")?,
    );

    let users = o.users as f64;
    let started = Instant::now();
    let mut generator_alive = || -> anyhow::Result<()> {
        match generator.0.try_wait()? {
            None => Ok(()),
            Some(status) => anyhow::bail!(
                "lync-sim load ended ({status}); see {}",
                o.out.join("lync-sim.log").display()
            ),
        }
    };
    loop {
        generator_alive()?;
        tier.kamailio_running()?;
        let Totals {
            sessions, monitors, ..
        } = Totals::of(&tier).await?.checked("at sign-in", &o.out)?;
        if sessions >= users && monitors >= users {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < PHASE_LIMIT,
            "only {sessions} of {users} users signed in (and {monitors} lines monitored) within {PHASE_LIMIT:?}; see {}",
            o.out.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let signed_in_s = started.elapsed().as_secs_f64();
    let mut split = Vec::new();
    for g in tier.gateways() {
        split.push(g.metric("rcc_gateway_sessions").await?);
    }
    let victim = split
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(1, |(i, _)| i + 1);
    let moved = split[victim - 1] as usize;

    // The kill.
    let kamailio_before = tier.kamailio_cpu_s()?;
    tier.gateway_mut(victim)?.kill();
    let killed = Instant::now();
    let started_before = Totals::of(&tier).await?.started;
    let relayed_before = relayed(&tier).await?;
    let mut first_back = None;
    let all_back = loop {
        generator_alive()?;
        tier.kamailio_running()?;
        let Totals {
            sessions,
            monitors,
            started: started_now,
            ..
        } = Totals::of(&tier).await?.checked("after the kill", &o.out)?;
        if first_back.is_none() && started_now > started_before {
            first_back = Some(killed.elapsed());
        }
        // Each line exactly once: a line monitored by two survivors would keep this waiting.
        if sessions == users && monitors == users {
            break killed.elapsed();
        }
        anyhow::ensure!(
            killed.elapsed() < PHASE_LIMIT,
            "{sessions} of {users} sessions and {monitors} monitors on the survivors {PHASE_LIMIT:?} after the kill; see {}",
            o.out.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let kamailio_cpu = tier.kamailio_cpu_s()? - kamailio_before;
    let requests = relayed(&tier).await? - relayed_before;
    let first_back = first_back.unwrap_or(all_back);
    let log = std::fs::read_to_string(o.out.join("kamailio.log")).unwrap_or_default();
    let dialogs_ended_by_kamailio = ended_at_once(&log);

    let mut text = String::new();
    let pace = o.pbx_rate.map_or("unpaced, unlimited PBX".to_owned(), |n| {
        format!(
            "a PBX taking {n} requests/s, each gateway paced to {:.0}/s",
            n / o.gateways as f64
        )
    });
    let _ = writeln!(
        text,
        "{} users on {} gateways behind Kamailio ({pace}); all signed in after {signed_in_s:.1} s, split {split:?}",
        o.users, o.gateways
    );
    let _ = writeln!(
        text,
        "kill -9 of gateway {victim} ({moved} sessions): first back after {:.2} s, all {moved} back and monitored after {:.2} s",
        first_back.as_secs_f64(),
        all_back.as_secs_f64()
    );
    let _ = writeln!(
        text,
        "the killed gateway's dialogs were ended {}",
        if dialogs_ended_by_kamailio >= moved {
            format!("by Kamailio at once (a BYE to each client, {dialogs_ended_by_kamailio})")
        } else {
            format!(
                "{dialogs_ended_by_kamailio} of {moved} by Kamailio at once, the rest by the clients' own requests or the keep-alive"
            )
        }
    );
    let _ = writeln!(
        text,
        "Kamailio meanwhile: {kamailio_cpu:.2} CPU s for {requests} requests to the survivors (sign-ins and their CSTA), {:.1} µs per request (the CPU also covers the BYEs to the clients, the probes and keep-alives, and what it refused for the dead gateway)",
        if requests > 0.0 {
            kamailio_cpu * 1e6 / requests
        } else {
            0.0
        }
    );
    Ok(FailoverReport {
        text,
        moved,
        first_back_s: first_back.as_secs_f64(),
        all_back_s: all_back.as_secs_f64(),
        dialogs_ended_by_kamailio,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_dialogs_ended_at_once_are_read_from_kamailios_log() {
        let log = " 1(703) WARNING: <script>: rcc-gateway sip:127.0.0.3:42153;transport=tcp is gone: ending its dialogs\n 1(703) WARNING: <script>: rcc-gateway sip:127.0.0.3:42153;transport=tcp: 1000 of 2000 sessions were its, ending now\n";
        assert_eq!(super::ended_at_once(log), 1000);
        assert_eq!(super::ended_at_once("nothing here\n"), 0);
    }
}
