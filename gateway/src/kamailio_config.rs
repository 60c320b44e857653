//! `rcc-gateway kamailio-config`: a Kamailio proxy tier in front of several rcc-gateways, from
//! their `gateway.toml`s. Lync's static route and trusted application name the Kamailio nodes;
//! Kamailio sends each line's RCC dialog to one gateway and keeps it there:
//!
//! - the INVITE's `lcs:line` is reduced the way the gateways map a line to a PBX device
//!   (`numbering.line`), and hashed (dispatcher algorithm 7), so every endpoint of a line (MPOP,
//!   an assistant on the boss's line) reaches the gateway that monitors that device;
//! - an owner table (htable) remembers which gateway took each line, so a gateway that comes
//!   back does not get lines back while their sessions still sit elsewhere;
//! - gateways are probed with OPTIONS: one that answers 503 (PBX link down, draining) or not at
//!   all is taken out of rotation for new sign-ins, and an INVITE it fails (503, 408, no answer)
//!   goes to the next one;
//! - in-dialog requests follow the Record-Route to the gateway that holds the session; when it
//!   cannot be reached they get 481, so the client signs in again at once, to a gateway in
//!   rotation, instead of at its next refresh;
//! - every session is a dialog, indexed by the gateway that took it: when a gateway stops
//!   answering its probes or a sign-in (not when it answers 503), Kamailio ends its dialogs with
//!   a BYE to the clients, which sign in again without waiting for a request of their own;
//!   in-dialog OPTIONS also keep each dialog alive, for a gateway that restarted faster than
//!   its probes noticed;
//! - only the Front End servers (`--front-end`: an address, or over TLS a certificate name)
//!   and, within a session, the gateways may send requests: the gateways trust the tier;
//! - with `--tls-listen`, the Front End pool reaches Kamailio, and Kamailio the pool, over
//!   mutual TLS (a Front End record-routes its TLS port, so in-dialog requests towards Lync,
//!   the gateways' event INFOs, need it).

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::config::{Config, LinePart};

/// What the tier needs beyond the gateways' configurations.
#[derive(Debug, Clone, clap::Args)]
pub struct Tier {
    /// Where Kamailio listens for the Front End pool (TCP).
    #[arg(long, default_value = "0.0.0.0:5060")]
    pub listen: SocketAddr,
    /// Other gateways' configuration files (the first is `--config`).
    #[arg(long = "gateway")]
    pub gateways: Vec<std::path::PathBuf>,
    /// The dispatcher list file, as Kamailio will find it.
    #[arg(long, default_value = "/etc/kamailio/rcc-dispatcher.list")]
    pub dispatcher_list: String,
    /// Seconds between OPTIONS probes of each gateway.
    #[arg(long, default_value_t = 5)]
    pub probe_interval_s: u32,
    /// Probes failed in a row before a gateway is out of rotation.
    #[arg(long, default_value_t = 2)]
    pub probe_misses: u32,
    /// How long a line stays with the gateway that took it, seconds (longer than a Lync
    /// session's refresh interval).
    #[arg(long, default_value_t = 3600)]
    pub owner_expiry_s: u32,
    /// Seconds between in-dialog OPTIONS to each session's gateway (at least 30, Kamailio's
    /// lowest; 0: none). A session whose gateway leaves one unanswered is ended with a BYE to
    /// the client about 12 s later (the 2 s transaction timeout and the dialog module's 10 s).
    /// Each session costs one OPTIONS per interval: 120,000 sessions at 60 s are 2,000 a second
    /// through the tier.
    #[arg(long, default_value_t = 60, value_parser = keepalive_interval)]
    pub dialog_keepalive_s: u32,
    /// Who may send requests through the tier, repeatable: a Front End server's IP address,
    /// or the name its TLS certificate carries (subject CN or first DNS name; over TLS only).
    /// The gateways trust whatever the tier relays, so it relays nobody else (the gateways'
    /// own in-dialog requests aside).
    #[arg(long = "front-end", required = true, value_parser = front_end)]
    pub front_ends: Vec<String>,
    /// Where Kamailio takes the Front End pool's mutual TLS (Lync's static route over TLS to
    /// the Kamailio pool FQDN). With it Kamailio also reaches the pool over TLS for requests
    /// in a dialog (a Front End record-routes its TLS port): the gateways' event INFOs.
    #[arg(long, requires_all = ["tls_cert", "tls_key", "tls_ca"])]
    pub tls_listen: Option<SocketAddr>,
    /// The Kamailio node's certificate (PEM), naming the trusted application pool FQDN.
    #[arg(long)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    pub tls_key: Option<std::path::PathBuf>,
    /// The CAs of the Front End's certificates (PEM).
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The TLS module's configuration file, as Kamailio will find it.
    #[arg(long, default_value = "/etc/kamailio/rcc-tls.cfg")]
    pub tls_config: String,
}

/// The tls module's configuration (`--tls-config`), when the tier takes TLS: mutual TLS both
/// ways, TLS 1.2 or later, the Front End's certificate checked against `--tls-ca`.
pub fn tls_cfg(tier: &Tier) -> Option<String> {
    let (Some(cert), Some(key), Some(ca)) = (&tier.tls_cert, &tier.tls_key, &tier.tls_ca) else {
        return None;
    };
    tier.tls_listen?;
    let profile = |side: &str, extra: &str| {
        format!(
            "[{side}:default]\nmethod = TLSv1.2+\nverify_certificate = yes\nrequire_certificate = yes\n\
             certificate = {}\nprivate_key = {}\nca_list = {}\n{extra}",
            cert.display(),
            key.display(),
            ca.display()
        )
    };
    Some(format!(
        "# TLS of the Kamailio tier towards the Lync Front End pool, printed by rcc-gateway\n\
         # kamailio-config. Lync speaks mutual TLS: the pool presents its certificate when it\n\
         # connects, and checks this node's, which must name the trusted application pool FQDN.\n\
         {}\n{}",
        profile("server", ""),
        profile("client", "")
    ))
}

/// The lines that make Kamailio take and speak TLS, or nothing.
fn tls_lines(tier: &Tier) -> (String, String) {
    match tier.tls_listen {
        Some(addr) => (
            format!(
                "# The Front End pool connects here over mutual TLS, and Kamailio reaches it over TLS.\n\
                 enable_tls=yes\nlisten=tls:{addr}\n"
            ),
            format!(
                "loadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", \"{}\")\n",
                tier.tls_config
            ),
        ),
        None => (String::new(), String::new()),
    }
}

fn keepalive_interval(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number of seconds: {e}"))?;
    if n != 0 && n < 30 {
        return Err(format!(
            "{n} s is below Kamailio's lowest dialog keep-alive interval of 30 s (0 turns it off)"
        ));
    }
    Ok(n)
}

/// The dialog module's lines: in-dialog keep-alives towards the gateway, and a BYE to the
/// client (route[SESSION_ENDED]) when they fail.
fn dialog_params(keepalive_s: u32) -> String {
    let common = "# Every session is a dialog, indexed by the gateway that took it (htable sessions): when that gateway\n\
                  # stops answering its probes, its dialogs end at once with a BYE to each client\n\
                  # (event_route[dispatcher:dst-down]), so its clients sign in again, to a gateway in\n\
                  # rotation, within seconds instead of at their next refresh (up to 25 minutes for Lync).\n\
                  # The BYE goes to the client only, from route[SESSION_ENDED]: the gateway that lost\n\
                  # the session needs none, and the module's own BYE to both sides (send_bye) would\n\
                  # block the timer process on connecting to a host that is gone.\n\
                  modparam(\"dialog\", \"send_bye\", 0)\n\
                  # A session's own refreshes keep its dialog; only a silent one ends after a day.\n\
                  modparam(\"dialog\", \"default_timeout\", 86400)\n";
    if keepalive_s == 0 {
        return format!(
            "{common}# In-dialog keep-alives are off (--dialog-keepalive-s 0): the clients of a gateway that\n\
             # restarted faster than its probes noticed learn it from the 481 to their next request.\n"
        );
    }
    format!(
        "{common}# Each dialog is also kept alive towards its gateway, for a gateway that restarted faster\n\
         # than its probes noticed (it answers 481) or that answers probes but not sessions: an\n\
         # in-dialog OPTIONS every {keepalive_s} s (checked every 10 s; one OPTIONS per session per\n\
         # interval). One left unanswered for 2 s (408) or answered 481 ends the dialog 10 s later\n\
         # with a BYE to the client, within about {bound} s.\n\
         modparam(\"dialog\", \"ka_timer\", 10)\n\
         modparam(\"dialog\", \"ka_interval\", {keepalive_s})\n\
         modparam(\"dialog\", \"ka_failed_limit\", 1)\n",
        bound = keepalive_s + 10 + 2 + 10
    )
}

/// What the options cannot say alone: a Front End known by its certificate's name needs the
/// TLS listener (the name checks come from Kamailio's tls module).
pub fn check(tier: &Tier) -> anyhow::Result<()> {
    if tier.tls_listen.is_none()
        && let Some(name) = tier
            .front_ends
            .iter()
            .find(|f| f.parse::<std::net::IpAddr>().is_err())
    {
        anyhow::bail!(
            "--front-end {name}: a Front End known by its certificate's name reaches the tier over TLS; add --tls-listen (with --tls-cert, --tls-key, --tls-ca) or give its address"
        );
    }
    Ok(())
}

/// A `--front-end`: an IP address or a host name (letters, digits, `-`, `.`), nothing that
/// could break out of the configuration's quotes.
fn front_end(s: &str) -> Result<String, String> {
    let name_like = !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if s.parse::<std::net::IpAddr>().is_ok() || name_like {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is neither an IP address nor a host name (a Front End server, or its certificate's name)"
        ))
    }
}

/// The checks of route[TRUSTED] that let a Front End through: by source address, or over TLS
/// by the name on its verified certificate.
fn front_end_checks(front_ends: &[String]) -> String {
    let mut out = String::new();
    for f in front_ends {
        let check = match f.parse::<std::net::IpAddr>() {
            Ok(ip) => format!("$si == \"{ip}\""),
            // One test per name field: a field the certificate lacks fails its own test only.
            Err(_) => {
                for field in ["$tls_peer_subject_cn", "$tls_peer_san_hostname"] {
                    let _ = write!(
                        out,
                        "    if (proto == TLS && is_peer_verified() && {field} == \"{f}\") {{\n        return;\n    }}\n"
                    );
                }
                continue;
            }
        };
        let _ = write!(out, "    if ({check}) {{\n        return;\n    }}\n");
    }
    out
}

/// Retry-After of the 503 a client gets when no gateway is in rotation, seconds: long enough
/// for a probe to bring a recovered gateway back, short enough that nobody waits for long.
const ALL_DOWN_RETRY_AFTER_S: u32 = 10;

/// A gateway as the tier reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `sip:host:port;transport=tcp`
    pub uri: String,
    /// The longest a client's request may wait for its answer there, ms: the pacer's wait for
    /// MonitorStart and SnapshotDevice (when paced), then the PBX's request timeout.
    pub answers_within_ms: u64,
    /// How long it waits for a client's answer to an event INFO, ms.
    pub event_timeout_ms: u64,
}

/// The longest a gateway may take to answer a client, ms: a client's INFO transaction gives
/// up after 32 s (Timer F), and Kamailio waits a second more than the gateway.
const CLIENT_PATIENCE_MS: u64 = 31_000;

/// How long Kamailio waits for a client's answer to a gateway's request, ms: a second less
/// than the most impatient gateway, so that gateway hears Kamailio's 481 for a client that is
/// gone; 1 s at the least.
fn to_client_wait_ms(members: &[Member]) -> u64 {
    members
        .iter()
        .map(|m| m.event_timeout_ms)
        .min()
        .unwrap_or(0)
        .saturating_sub(1000)
        .max(1000)
}

/// How long Kamailio waits for a gateway's answer to an in-dialog request, ms: a second more
/// than the slowest gateway may take, so the client hears the gateway's own answer (a CSTA
/// error at worst) rather than Kamailio's 408.
fn in_dialog_wait_ms(members: &[Member]) -> u64 {
    members
        .iter()
        .map(|m| m.answers_within_ms)
        .max()
        .unwrap_or(0)
        + 1000
}

/// The gateways of the tier, from their configurations; an error names what does not fit.
pub fn members(configs: &[Config]) -> anyhow::Result<(Vec<Member>, LinePart)> {
    let mut members = Vec::new();
    let mut line = None;
    for (i, c) in configs.iter().enumerate() {
        let Some(tcp) = c.sip.listen_tcp else {
            anyhow::bail!(
                "gateway {} ({}) has no sip.listen_tcp: the Kamailio tier reaches the gateways over TCP",
                i + 1,
                c.sip.host
            );
        };
        let host = if tcp.ip().is_unspecified() {
            c.sip.host.clone()
        } else {
            tcp.ip().to_string()
        };
        let paced = if c.pbx.pace_per_s > 0.0 {
            c.pbx.pace_wait_ms
        } else {
            0
        };
        let answers_within_ms = paced.saturating_add(c.pbx.request_timeout_ms);
        anyhow::ensure!(
            answers_within_ms < CLIENT_PATIENCE_MS,
            "gateway {} ({}) may take {answers_within_ms} ms to answer a MonitorStart (pbx.pace_wait_ms + pbx.request_timeout_ms): a Lync client gives up after 32 s, so keep them below {CLIENT_PATIENCE_MS} ms",
            i + 1,
            c.sip.host
        );
        members.push(Member {
            uri: format!("sip:{host}:{};transport=tcp", tcp.port()),
            answers_within_ms,
            event_timeout_ms: c.sip.event_timeout_ms,
        });
        match line {
            None => line = Some(c.numbering.line),
            Some(l) if l == c.numbering.line => {}
            Some(_) => anyhow::bail!(
                "gateway {} maps lines with another numbering.line than gateway 1: the tier must reduce a line the same way for all",
                i + 1
            ),
        }
    }
    let line = line.ok_or_else(|| anyhow::anyhow!("no gateway given"))?;
    Ok((members, line))
}

/// The dispatcher list: set 1, every gateway.
pub fn dispatcher_list(members: &[Member]) -> String {
    let mut out = String::from("# rcc-gateway kamailio-config: set 1 holds every rcc-gateway\n");
    for m in members {
        let _ = writeln!(out, "1 {}", m.uri);
    }
    out
}

/// How the route reduces `$avp(rcc_line)` (the LineURI as the client wrote it) to the device
/// part the gateways map.
fn reduce(line: LinePart) -> &'static str {
    match line {
        LinePart::Ext => {
            r#"    # numbering.line = "ext": the ;ext= value when there is one, else the number.
    if ($avp(rcc_line) =~ ";ext=") {
        $avp(rcc_line) = $(avp(rcc_line){re.subst,/^.*;ext=([^;]*).*$/\1/});
    } else {
        $avp(rcc_line) = $(avp(rcc_line){re.subst,/^tel:([^;]*).*$/\1/});
    }"#
        }
        LinePart::Number => {
            r#"    # numbering.line = "number": the number as written.
    $avp(rcc_line) = $(avp(rcc_line){re.subst,/^tel:([^;]*).*$/\1/});"#
        }
        LinePart::Digits => {
            r#"    # numbering.line = "digits": the number without its +.
    $avp(rcc_line) = $(avp(rcc_line){re.subst,/^tel:\+?([^;]*).*$/\1/});"#
        }
    }
}

/// The commented kamailio.cfg.
pub fn kamailio_cfg(tier: &Tier, members: &[Member], line: LinePart) -> String {
    let gateways: Vec<&str> = members.iter().map(|m| m.uri.as_str()).collect();
    let (tls_listen, tls_module) = tls_lines(tier);
    format!(
        r#"#!KAMAILIO
# Kamailio in front of {n} rcc-gateways ({gateways}), printed by `rcc-gateway kamailio-config`.
# Register this node in Lync as a computer of the trusted application pool the static route
# names (rcc-gateway lync-config --computer), and list its address in each gateway's
# [[sip.trusted_peer]]. Check it with `kamailio -c -f kamailio.cfg`.

debug=2
log_facility=LOG_LOCAL0
children=4
tcp_children=4
disable_tcp=no
auto_aliases=no
listen=tcp:{listen}
{tls_listen}# Lync keeps one long-lived connection per route.
tcp_connection_lifetime=3605
# Connecting to a gateway fails at once when it is down (and within 2 s when its host is
# gone), so the request is answered then rather than after the transaction timer.
tcp_async=no
tcp_connect_timeout=2
# route[GONE] walks every session in one loop; Kamailio stops a loop after 100 turns unless
# told otherwise (measured: 47 of a dead gateway's 1,000 dialogs ended, the rest waited for the
# keep-alive).
max_while_loops=10000000

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "htable.so"
loadmodule "dispatcher.so"
loadmodule "dialog.so"
{tls_module}
# What Kamailio sends itself (probes, keep-alives, the BYEs to clients) waits 2 s for its
# answer, so a gateway that went silent leaves rotation at its next probe. A sign-in waits
# 5 s for its gateway (the gateways send no 100 Trying) before it is failed over; a client's
# request within a session waits as long as the slowest gateway may take to answer it, and
# a gateway's (an event INFO) a second less than the gateways wait for its answer (t_set_fr
# below).
modparam("tm", "fr_timer", 2000)
modparam("tm", "fr_inv_timer", 5000)

modparam("dispatcher", "list_file", "{list}")
# Failover support: the other gateways are kept with the selection (ds_next_dst, ds_mark_dst).
modparam("dispatcher", "flags", 2)
# Algorithm 7 hashes this: the line reduced to what the gateways map to a PBX device.
modparam("dispatcher", "hash_pvar", "$avp(rcc_line)")
modparam("dispatcher", "ds_ping_method", "OPTIONS")
modparam("dispatcher", "ds_ping_from", "sip:kamailio@rcc-tier")
modparam("dispatcher", "ds_ping_interval", {probe})
modparam("dispatcher", "ds_probing_threshold", {misses})
modparam("dispatcher", "ds_inactive_threshold", 1)
# Probe every gateway, active or not, so a recovered one (answering 200 again) comes back.
modparam("dispatcher", "ds_probing_mode", 1)
# Only 2xx keeps a gateway in rotation: it answers 503 while its PBX link is down or it drains.
modparam("dispatcher", "ds_ping_reply_codes", "class=2")

# Which gateway took each line; it keeps the line until the entry expires.
modparam("htable", "htable", "owner=>size=14;autoexpire={expiry};")
# Every session's dialog ("h_entry:h_id") and the gateway that took it, until the dialog ends.
modparam("htable", "htable", "sessions=>size=16;autoexpire=86400;")
# Gateways whose dialogs were ended, until they come back (or for a minute).
modparam("htable", "htable", "gone=>size=4;autoexpire=60;")

{dialog}
request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    route(TRUSTED);
    # In-dialog requests follow the Record-Route to the gateway that holds the session, in
    # rotation or not: one that drains, or whose PBX link is down, keeps its sessions. A
    # gateway that cannot be reached took its dialogs with it: 481, so that the client signs
    # in again (to a gateway in rotation) at once instead of waiting for its refresh.
    if (has_totag()) {{
        if (loose_route()) {{
            if (ds_is_from_list("1", "3")) {{
                # A gateway's event INFO: answered before the gateway gives it up.
                t_set_fr(0, {to_client_ms});
            }} else {{
                # A MonitorStart may wait for the gateway's pacer, then for the PBX.
                t_set_fr(0, {in_dialog_ms});
            }}
            t_on_failure("GONE");
            if (!t_relay()) {{
                sl_send_reply("481", "Gateway Gone");
            }}
            exit;
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{
                t_relay();
            }}
            exit;
        }}
        sl_send_reply("404", "Not Here");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    t_check_trans();
    # The Front End's keep-alive to this node.
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    $var(owner_used) = 0;
    if (is_method("INVITE")) {{
        record_route();
        route(LINE);
        route(OWNER);
    }} else if (!ds_select_dst("1", "4")) {{
        # Every gateway is out of rotation: the client hears it at once, and when to retry.
        append_to_reply("Retry-After: {all_down}\r\n");
        sl_send_reply("503", "No rcc-gateway available");
        exit;
    }}
    $avp(rcc_dst) = $du;
    if (is_method("INVITE")) {{
        # A dialog only for a sign-in that is relayed (not for one refused above); when it
        # times out (its gateway gone, or its keep-alive failed), route[SESSION_ENDED] runs.
        $dlg_ctx(timeout_route) = "SESSION_ENDED";
        dlg_manage();
        {keepalive}
    }}
    t_set_fr(5000, 5000);
    t_on_failure("NEXT");
    t_on_reply("TAKEN");
    if (!t_relay()) {{
        # Not even connected: the line's owner entry goes (it named that gateway), or the
        # hashed gateway is out of rotation now; the client tries again at once (a Lync client
        # retries a sign-in answered 503).
        if ($var(owner_used) == 1) {{
            $sht(owner=>$avp(rcc_line)) = $null;
        }} else {{
            ds_mark_dst("ip");
        }}
        # A gateway that cannot be connected to took its sessions with it.
        $var(gone) = $du;
        route(GONE);
        append_to_reply("Retry-After: 0\r\n");
        send_reply("503", "rcc-gateway Unreachable");
    }}
    exit;
}}

# Only the Front End pool (--front-end) and the gateways themselves send here: the gateways
# trust whatever this tier relays, so it must relay nobody else.
route[TRUSTED] {{
    # A gateway (by its address, any port) sends only requests within a session.
    if (has_totag() && ds_is_from_list("1", "3")) {{
        return;
    }}
{front_ends}    xlog("L_NOTICE", "refused $rm from $si:$sp: not a Front End of this tier\n");
    sl_send_reply("403", "Forbidden (not a Front End of this tier)");
    exit;
}}

# $avp(rcc_line): the line of the INVITE's RequestSystemStatus (its lcs:line), reduced as the
# gateways reduce it; an INVITE without one is hashed by its Call-ID.
route[LINE] {{
    $avp(rcc_line) = $null;
    if (search_body("<lcs:line")) {{
        $avp(rcc_line) = $(rb{{re.subst,/^.*<lcs:line[^>]*>([^<]*)<\/lcs:line>.*$/\1/}});
    }}
    if ($avp(rcc_line) == $null || $avp(rcc_line) == $rb) {{
        $avp(rcc_line) = $ci;
        return;
    }}
{reduce}
}}

# The gateway that already has the line, while it is in rotation; else the hash of the line.
route[OWNER] {{
    # The hash first: it also lists the other gateways, for failover.
    if (!ds_select_dst("1", "7")) {{
        # Every gateway is out of rotation: the client hears it at once, and when to retry.
        append_to_reply("Retry-After: {all_down}\r\n");
        sl_send_reply("503", "No rcc-gateway available");
        exit;
    }}
    $var(owner_used) = 0;
    $var(owner) = $sht(owner=>$avp(rcc_line));
    if ($var(owner) != $null && ds_is_active("1", "$var(owner)")) {{
        $du = $var(owner);
        $var(owner_used) = 1;
    }}
}}

# A gateway that refuses (503), does not answer (408) or cannot be reached: out of rotation,
# and the INVITE goes to the next one.
failure_route[NEXT] {{
    if (t_is_canceled()) {{
        exit;
    }}
    if (t_check_status("503|408") || t_branch_timeout() || !t_branch_replied()) {{
        # One that refused (503) drains or lost its PBX link and keeps its sessions; one that
        # did not answer at all took them with it (its probes would notice only later, and
        # the mark below keeps event_route[dispatcher:dst-down] from firing for it again).
        if (!t_check_status("503")) {{
            $var(gone) = $avp(rcc_dst);
            route(GONE);
        }}
        ds_mark_dst("ip");
        if (ds_next_dst()) {{
            $avp(rcc_dst) = $du;
            t_on_failure("NEXT");
            t_relay();
            exit;
        }}
        # None left: a 503 the client retries, not the timeout of the last gateway tried.
        append_to_reply("Retry-After: {all_down}\r\n");
        t_reply("503", "No rcc-gateway available");
    }}
}}

# An in-dialog request its gateway never answered.
failure_route[GONE] {{
    if (t_is_canceled()) {{
        exit;
    }}
    if (t_branch_timeout() || !t_branch_replied()) {{
        t_reply("481", "Gateway Gone");
    }}
}}

# A sign-in accepted: the line belongs to that gateway now, and so does the session's dialog
# (its entry in the index goes when the dialog ends).
onreply_route[TAKEN] {{
    if (is_method("INVITE") && t_check_status("2[0-9][0-9]")) {{
        if ($avp(rcc_line) != $null) {{
            $sht(owner=>$avp(rcc_line)) = $avp(rcc_dst);
        }}
        $sht(sessions=>$dlg(h_entry):$dlg(h_id)) = $avp(rcc_dst);
    }}
}}

event_route[dialog:end] {{
    $sht(sessions=>$dlg(h_entry):$dlg(h_id)) = $null;
}}

# A gateway left rotation by its probes ($ru is its address). One that answered 503 drains or
# lost its PBX link: it keeps its sessions. One that no longer answers at all (timeout,
# connection refused) took its sessions with it: each of its dialogs ends now, with a BYE to
# its client. (A sign-in that finds a gateway gone marks it itself, in INVITE context, and ends
# its dialogs there.) A gateway already out of rotation with 503 that then dies is left to the
# in-dialog keep-alive.
event_route[dispatcher:dst-down] {{
    if (is_method("INVITE") || $dsv(code) == 503) {{
        exit;
    }}
    $var(gone) = $ru;
    route(GONE);
}}

event_route[dispatcher:dst-up] {{
    $sht(gone=>$ru) = $null;
}}

# A session's dialog timed out: its gateway is gone, or its keep-alive failed. Its client
# gets a BYE and signs in again; the gateway, which no longer has the session, gets none.
route[SESSION_ENDED] {{
    dlg_bye("caller");
}}

# The dialogs of gateway $var(gone) end now, with a BYE to each client: once per death (every
# sign-in that meets the dead gateway comes here, and each would walk every session again).
route[GONE] {{
    sht_lock("gone=>$var(gone)");
    if ($sht(gone=>$var(gone)) == $null) {{
        $sht(gone=>$var(gone)) = 1;
        sht_unlock("gone=>$var(gone)");
        xlog("L_WARN", "rcc-gateway $var(gone) is gone: ending its dialogs\n");
        # One dialog at a time: dlg_set_timeout_by_profile releases each dialog it touches
        # twice (Kamailio 5.6 to 6.x), which crashed Kamailio with thousands of dialogs.
        $var(ended) = 0;
        $var(seen) = 0;
        sht_iterator_start("session", "sessions");
        while (sht_iterator_next("session")) {{
            $var(seen) = $var(seen) + 1;
            if ($shtitval(session) == $var(gone)) {{
                $var(h_entry) = $(shtitkey(session){{s.select,0,:}}{{s.int}});
                $var(h_id) = $(shtitkey(session){{s.select,1,:}}{{s.int}});
                if (dlg_set_timeout("1", "$var(h_entry)", "$var(h_id)")) {{
                    $var(ended) = $var(ended) + 1;
                }}
            }}
        }}
        sht_iterator_end("session");
        xlog("L_WARN", "rcc-gateway $var(gone): $var(ended) of $var(seen) sessions were its, ending now\n");
        return;
    }}
    sht_unlock("gone=>$var(gone)");
}}
"#,
        n = members.len(),
        in_dialog_ms = in_dialog_wait_ms(members),
        to_client_ms = to_client_wait_ms(members),
        gateways = gateways.join(", "),
        listen = tier.listen,
        list = tier.dispatcher_list,
        probe = tier.probe_interval_s,
        misses = tier.probe_misses,
        expiry = tier.owner_expiry_s,
        reduce = reduce(line),
        front_ends = front_end_checks(&tier.front_ends),
        dialog = dialog_params(tier.dialog_keepalive_s),
        all_down = ALL_DOWN_RETRY_AFTER_S,
        tls_listen = tls_listen,
        tls_module = tls_module,
        keepalive = if tier.dialog_keepalive_s > 0 {
            "dlg_set_property(\"ka-dst\");"
        } else {
            "# no dialog keep-alive"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::parse_unchecked(text).expect("config")
    }

    const GW: &str = "[sip]\nlisten_tcp = \"0.0.0.0:5066\"\nhost = \"10.0.0.31\"\ntrusted_peer = [{ ip = \"10.0.0.10\" }]\n[pbx]\naddress = \"10.0.0.20:1040\"\n";

    #[test]
    fn members_are_the_gateways_tcp_listeners_and_must_reduce_lines_alike() {
        let second = GW.replace("10.0.0.31", "10.0.0.32");
        let (found, line) = members(&[config(GW), config(&second)]).expect("members");
        assert_eq!(
            found.iter().map(|m| m.uri.as_str()).collect::<Vec<_>>(),
            [
                "sip:10.0.0.31:5066;transport=tcp",
                "sip:10.0.0.32:5066;transport=tcp"
            ]
        );
        assert_eq!(line, LinePart::Ext);
        let digits = format!("{second}[numbering]\nline = \"digits\"\n");
        let err = members(&[config(GW), config(&digits)]).expect_err("mixed");
        assert!(err.to_string().contains("numbering.line"), "{err}");
        let tls_only = GW.replace("listen_tcp", "listen_tls");
        let err = members(&[config(&tls_only)]).expect_err("no TCP");
        assert!(err.to_string().contains("sip.listen_tcp"), "{err}");
    }

    /// A MonitorStart may wait for the pacer and then the PBX: Kamailio waits a second longer
    /// than the slowest gateway, and an unpaced gateway waits only for its PBX.
    #[test]
    fn in_dialog_requests_wait_for_the_slowest_gateway() {
        let paced =
            format!("{GW}pace_per_s = 50\npace_wait_ms = 12000\nrequest_timeout_ms = 4000\n");
        let unpaced =
            format!("{GW}pace_per_s = 0\npace_wait_ms = 12000\nrequest_timeout_ms = 3000\n");
        let (both, _) = members(&[config(&unpaced), config(&paced)]).expect("members");
        assert_eq!(in_dialog_wait_ms(&both), 12000 + 4000 + 1000);
        let (alone, _) = members(&[config(&unpaced)]).expect("members");
        assert_eq!(in_dialog_wait_ms(&alone), 3000 + 1000);
    }

    #[test]
    fn front_ends_are_addresses_or_certificate_names_and_nothing_else() {
        assert_eq!(front_end("10.0.0.10").as_deref(), Ok("10.0.0.10"));
        assert_eq!(
            front_end("fe01.contoso.com").as_deref(),
            Ok("fe01.contoso.com")
        );
        for bad in ["", "fe\"; exit; \"", "fe contoso", "a/b"] {
            assert!(front_end(bad).is_err(), "{bad:?} accepted");
        }
        let checks = front_end_checks(&["10.0.0.10".into(), "fepool.contoso.com".into()]);
        assert!(checks.contains("if ($si == \"10.0.0.10\")"), "{checks}");
        for field in ["$tls_peer_subject_cn", "$tls_peer_san_hostname"] {
            assert!(
                checks.contains(&format!(
                    "proto == TLS && is_peer_verified() && {field} == \"fepool.contoso.com\""
                )),
                "{checks}"
            );
        }
    }

    /// The lines the failover depends on, in the order Kamailio needs them: a session's
    /// timeout route is set before its dialog exists, the module sends no BYE of its own, the
    /// index takes a dialog when its sign-in is accepted, and a dead gateway's dialogs are
    /// ended one by one (never by profile). Each timer is what the gateways need.
    #[test]
    fn the_printed_configuration_ends_sessions_one_by_one_with_a_bye_to_the_client() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            tier: Tier,
        }
        let tier = Cli::parse_from(["k", "--front-end", "10.0.0.21"]).tier;
        let paced =
            format!("{GW}pace_per_s = 50\npace_wait_ms = 12000\nrequest_timeout_ms = 4000\n");
        let gw = paced.replace("[pbx]", "event_timeout_ms = 7000\n[pbx]");
        let (found, line) = members(&[config(&gw)]).expect("members");
        let cfg = kamailio_cfg(&tier, &found, line);
        let at = |needle: &str| {
            cfg.find(needle)
                .unwrap_or_else(|| panic!("{needle:?} missing from:\n{cfg}"))
        };
        assert!(at("$dlg_ctx(timeout_route) = \"SESSION_ENDED\";") < at("dlg_manage();"));
        at("modparam(\"dialog\", \"send_bye\", 0)");
        at("route[SESSION_ENDED] {\n    dlg_bye(\"caller\");");
        at("$sht(sessions=>$dlg(h_entry):$dlg(h_id)) = $avp(rcc_dst);");
        at("event_route[dialog:end] {\n    $sht(sessions=>$dlg(h_entry):$dlg(h_id)) = $null;");
        at("if (dlg_set_timeout(\"1\", \"$var(h_entry)\", \"$var(h_id)\")) {");
        assert!(!cfg.contains("dlg_set_timeout_by_profile(\""), "{cfg}");
        assert!(!cfg.contains("set_dlg_profile(\""), "{cfg}");
        // Pacer wait + PBX timeout + 1 s for a client's request; the event timeout - 1 s for
        // a gateway's; 5 s for a sign-in, set before it is relayed.
        at("t_set_fr(0, 17000);");
        at("t_set_fr(0, 6000);");
        assert!(at("t_set_fr(5000, 5000);") < at("t_on_reply(\"TAKEN\");"));
        at("modparam(\"tm\", \"fr_timer\", 2000)");
        at("\nmax_while_loops=10000000\n");
    }

    /// A gateway that may keep a client waiting past Lync's own 32 s INFO timeout is refused.
    #[test]
    fn a_gateway_slower_than_the_client_is_refused() {
        let slow =
            format!("{GW}pace_per_s = 50\npace_wait_ms = 30000\nrequest_timeout_ms = 5000\n");
        let err = members(&[config(&slow)]).expect_err("too slow");
        assert!(err.to_string().contains("35000 ms"), "{err}");
    }

    #[test]
    fn a_front_end_by_name_needs_the_tls_listener() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            tier: Tier,
        }
        let tcp = Cli::parse_from(["k", "--front-end", "fe.contoso.com"]).tier;
        let err = check(&tcp).expect_err("a name over TCP");
        assert!(err.to_string().contains("--tls-listen"), "{err}");
        let by_ip = Cli::parse_from(["k", "--front-end", "10.0.0.21"]).tier;
        assert!(check(&by_ip).is_ok());
        let tls = Cli::parse_from([
            "k",
            "--front-end",
            "fe.contoso.com",
            "--tls-listen",
            "10.0.0.10:5061",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-ca",
            "ca.pem",
        ])
        .tier;
        assert!(check(&tls).is_ok());
        assert!(
            Cli::try_parse_from(["k"]).is_err(),
            "--front-end is required"
        );
    }
}
