//! Step definitions, in the words of a Lync user and a telephony engineer. Every `Then` checks
//! what the Lync client received or what the PBX did, with a deadline.

use std::time::Duration;

use cucumber::{given, then, when};
use rcc_protocol::csta::{
    AutoOriginate, CallEventKind as K, ConnectionId, Event, ForwardingType, Message, Request,
    Response,
};
use rcc_simulators::lync::{ClientProfile, Phase};
use rcc_simulators::pbx::{ExternalParty, Faults, Profile, Reach};

use super::{RccWorld, lab};

use rcc_lab::lab::WAIT;

type Step = anyhow::Result<()>;

fn profile(name: &str) -> anyhow::Result<ClientProfile> {
    ClientProfile::parse(name).ok_or_else(|| anyhow::anyhow!("unknown client profile {name:?}"))
}

/// A number as a user would dial it: a lab user's name means their E.164 number.
fn number(w: &RccWorld, who: &str) -> String {
    match w.options.users.iter().find(|u| u.name == who) {
        Some(u) => format!("tel:{}", u.e164()),
        None if who.starts_with("tel:") => who.to_owned(),
        None => format!("tel:{who}"),
    }
}

pub(super) fn extension(w: &RccWorld, who: &str) -> anyhow::Result<String> {
    w.options
        .users
        .iter()
        .find(|u| u.name == who)
        .map(|u| u.extension.clone())
        .ok_or_else(|| anyhow::anyhow!("no lab user {who:?}"))
}

pub(super) fn endpoint(w: &RccWorld, who: &str) -> anyhow::Result<usize> {
    w.endpoints
        .get(who)
        .copied()
        .ok_or_else(|| anyhow::anyhow!("{who} has not signed in"))
}

pub(super) fn line(w: &RccWorld, who: &str) -> anyhow::Result<String> {
    let user = who.split('/').next().unwrap_or(who);
    w.options
        .users
        .iter()
        .find(|u| u.name == user)
        .map(rcc_lab::lab::User::line)
        .ok_or_else(|| anyhow::anyhow!("no lab user {user:?}"))
}

async fn sign_in(w: &mut RccWorld, key: &str, user: &str, epid: &str, p: ClientProfile) -> Step {
    if w.virtual_time {
        anyhow::ensure!(
            p == ClientProfile::Lync2013,
            "in virtual time the lab signs in Lync 2013 endpoints only"
        );
        return super::virtual_lab::sign_in(w, key, user, epid);
    }
    let lab = lab(w).await?;
    let id = lab.signed_in(user, epid, p).await?;
    w.endpoints.insert(key.to_owned(), id);
    Ok(())
}

// ----- the lab -----

#[given(expr = "the PBX is {word}")]
async fn pbx_is(w: &mut RccWorld, which: String) -> Step {
    let wanted = match which.as_str() {
        "generic" | "standard" => Profile::Generic,
        "OpenScape" | "osv" => Profile::Osv,
        "Avaya" | "aes" => Profile::Aes,
        other => anyhow::bail!("unknown PBX {other:?} (generic, OpenScape, Avaya)"),
    };
    // Only our own gateway is configured by the scenario; an external one keeps its profile.
    if !w.options.owns_everything() && wanted != w.options.pbx_profile {
        anyhow::bail!(
            "not applicable: needs the {} PBX profile; this lab is configured for {} (lab.toml pbx.profile)",
            rcc_lab::labfile::profile_name(wanted),
            rcc_lab::labfile::profile_name(w.options.pbx_profile)
        );
    }
    w.options.pbx_profile = wanted;
    Ok(())
}

#[given(expr = "the Front End reaches the gateway over {word}")]
async fn transport(w: &mut RccWorld, t: String) -> Step {
    let tls = match t.as_str() {
        "TLS" | "tls" => true,
        "TCP" | "tcp" => false,
        other => anyhow::bail!("unknown transport {other:?}"),
    };
    if w.options.real_topology.as_ref().map(|r| r.tls()) != Some(tls) {
        real_topology_decides(w, "the transport")?;
    }
    w.options.tls = tls;
    Ok(())
}

#[given("the gateway is not a trusted application")]
async fn untrusted(w: &mut RccWorld) -> Step {
    real_topology_decides(w, "whether the gateway is a trusted application")?;
    w.options.gateway_trusted = false;
    Ok(())
}

#[given(expr = "the static route matches {word}")]
async fn route_matches(w: &mut RccWorld, m: String) -> Step {
    real_topology_decides(w, "the static route")?;
    w.options.match_uri = m;
    Ok(())
}

/// Not applicable when the lab plays a real topology (lab.toml `[lync] exports`): its exports
/// decide `what`, not the scenario.
fn real_topology_decides(w: &RccWorld, what: &str) -> Step {
    anyhow::ensure!(
        w.options.real_topology.is_none(),
        "not applicable: {what} comes from the exported Lync topology (lab.toml [lync] exports)"
    );
    Ok(())
}

#[given(expr = "only {word} may use {word}'s line")]
async fn authz_table(w: &mut RccWorld, who: String, owner: String) -> Step {
    let owner_line = line(w, &owner)?;
    let mut users = vec![rcc_gateway::config::UserLines {
        uri: format!("sip:{who}@contoso.lab"),
        lines: vec![owner_line.clone()],
    }];
    if who != owner {
        users.push(rcc_gateway::config::UserLines {
            uri: format!("sip:{owner}@contoso.lab"),
            lines: vec![owner_line],
        });
    }
    w.options.authorization = users;
    Ok(())
}

#[given(expr = "the gateway grants sessions of {int} seconds")]
async fn grants(w: &mut RccWorld, secs: u32) -> Step {
    w.options.session_expires = Some(secs);
    Ok(())
}

#[given("the lab runs in virtual time")]
async fn virtual_time(w: &mut RccWorld) -> Step {
    w.virtual_time = true;
    Ok(())
}

#[given(expr = "{word} is signed in and never refreshes")]
async fn signed_in_never_refreshing(w: &mut RccWorld, who: String) -> Step {
    let lab = lab(w).await?;
    let id = lab
        .signed_in_with(
            &who,
            "desk",
            ClientProfile::Lync2013,
            Some(Duration::from_secs(86_400)),
        )
        .await?;
    w.endpoints.insert(who, id);
    Ok(())
}

#[then(expr = "the gateway ends {word}'s session with a BYE within its Session-Expires")]
async fn ends_within_granted(w: &mut RccWorld, who: String) -> Step {
    let lab = lab(w).await?;
    let answer = lab.lync.trace().await?.into_iter().find(|t| {
        t.from == "gateway" && t.text.starts_with("SIP/2.0 2") && t.text.contains(" INVITE\r\n")
    });
    if answer
        .as_ref()
        .is_some_and(|t| t.text.to_ascii_lowercase().contains("refresher=uas"))
    {
        anyhow::bail!(
            "not applicable: the gateway is the refresher (refresher=uas), so a silent client cannot make the session expire"
        );
    }
    let granted = lab
        .lync
        .trace()
        .await?
        .iter()
        .filter(|t| t.from == "gateway" && t.text.starts_with("SIP/2.0 2") && t.text.contains(" INVITE\r\n"))
        .find_map(|t| session_expires(&t.text))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the gateway's 200 OK to the INVITE grants no Session-Expires: the session of a client that dies is never ended"
            )
        })?;
    // RFC 4028 §10: the refresher has until the interval ends; allow the BYE a little after.
    ends_with_bye(w, who, u64::from(granted) + 10).await
}

/// The delta-seconds of a message's Session-Expires (or `x:`) header.
fn session_expires(text: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("session-expires") || name.eq_ignore_ascii_case("x"))
            .then(|| value.split(';').next()?.trim().parse().ok())
            .flatten()
    })
}

#[then(expr = "the gateway ends {word}'s session with a BYE within {int} seconds")]
async fn ends_with_bye(w: &mut RccWorld, who: String, secs: u64) -> Step {
    let id = endpoint(w, &who)?;
    if w.virtual_time {
        return super::virtual_lab::session_expired(w, id, Duration::from_secs(secs));
    }
    let lab = lab(w).await?;
    let what = format!("a BYE from the gateway within {secs} s");
    lab.eventually(&what, Duration::from_secs(secs), async |lab| {
        let trace = lab.lync.trace().await?;
        Ok(trace
            .iter()
            .any(|t| t.from == "gateway" && t.label == "BYE")
            .then_some(()))
    })
    .await?;
    // The client signs in again on its own.
    lab.lync
        .wait_for(id, WAIT, "a new sign-in", |e| {
            (e.sign_ins() >= 2).then_some(())
        })
        .await
}

#[given(expr = "the outside number {word} is {word}")]
async fn outside_is(w: &mut RccWorld, n: String, how: String) -> Step {
    let party = match how.as_str() {
        "busy" => ExternalParty::unreachable(Reach::Busy),
        "unallocated" => ExternalParty::unreachable(Reach::Unallocated),
        "rejecting" => ExternalParty::unreachable(Reach::Reject),
        "ringing" => ExternalParty::default(),
        other => anyhow::bail!("unknown behaviour {other:?}"),
    };
    lab(w).await?.pbx()?.set_external(&n, party).await
}

#[given(expr = "{word}'s line has call waiting")]
async fn has_call_waiting(w: &mut RccWorld, who: String) -> Step {
    let ext = extension(w, &who)?;
    lab(w).await?.pbx()?.set_call_waiting(&ext, true).await
}

// ----- signing in -----

#[given(expr = "{word} is signed in")]
async fn signed_in(w: &mut RccWorld, who: String) -> Step {
    sign_in(w, &who, &who, "desk", ClientProfile::Lync2013).await
}

#[given(expr = "{word} is signed in with {word}")]
async fn signed_in_with(w: &mut RccWorld, who: String, p: String) -> Step {
    let p = profile(&p)?;
    sign_in(w, &who, &who, p.name(), p).await
}

#[given(expr = "{word} is signed in with line {word}")]
async fn signed_in_line(w: &mut RccWorld, who: String, l: String) -> Step {
    let lab = lab(w).await?;
    let id = lab
        .endpoint_on_line(
            &format!("sip:{who}@contoso.lab"),
            &l,
            "desk",
            ClientProfile::Lync2013,
        )
        .await?;
    lab.lync.sign_in(id).await?;
    lab.lync.wait_ready(id, WAIT).await?;
    w.endpoints.insert(who, id);
    Ok(())
}

#[given(expr = "{word} is also signed in on the {word}")]
async fn also_signed_in(w: &mut RccWorld, who: String, device: String) -> Step {
    sign_in(
        w,
        &format!("{who}/{device}"),
        &who,
        &device,
        ClientProfile::Lync2013,
    )
    .await
}

#[when(expr = "{word} signs in on {word}'s line")]
async fn signs_in_on_line(w: &mut RccWorld, who: String, owner: String) -> Step {
    let l = line(w, &owner)?;
    let lab = lab(w).await?;
    let id = lab
        .endpoint_on_line(
            &format!("sip:{who}@contoso.lab"),
            &l,
            "desk",
            ClientProfile::Lync2013,
        )
        .await?;
    lab.lync.sign_in(id).await?;
    w.endpoints.insert(who, id);
    Ok(())
}

#[when(expr = "{word} tries to sign in")]
async fn tries_sign_in(w: &mut RccWorld, who: String) -> Step {
    let lab = lab(w).await?;
    let id = lab.endpoint(&who, "desk", ClientProfile::Lync2013).await?;
    lab.lync.sign_in(id).await?;
    w.endpoints.insert(who, id);
    Ok(())
}

#[then(expr = "{word} is monitoring the line")]
async fn monitoring(w: &mut RccWorld, who: String) -> Step {
    let id = endpoint(w, &who)?;
    lab(w).await?.lync.wait_ready(id, WAIT).await.map(drop)
}

#[then(expr = "{word} is refused with {int}")]
async fn refused_with(w: &mut RccWorld, who: String, code: u16) -> Step {
    let id = endpoint(w, &who)?;
    let phase = lab(w)
        .await?
        .lync
        .wait_for(id, WAIT, "a final answer to the INVITE", |e| {
            match e.phase() {
                Phase::Failed(why) => Some(why.clone()),
                Phase::Ready => Some("signed in".to_owned()),
                _ => None,
            }
        })
        .await?;
    anyhow::ensure!(phase == format!("INVITE answered {code}"), "{who}: {phase}");
    Ok(())
}

#[then(expr = "the gateway advertises {word}")]
async fn advertises(w: &mut RccWorld, feature: String) -> Step {
    let id = *w
        .endpoints
        .values()
        .next()
        .ok_or_else(|| anyhow::anyhow!("nobody signed in"))?;
    let features = lab(w)
        .await?
        .lync
        .with(move |fe, _| {
            fe.endpoint(id)
                .map(|e| e.features().to_vec())
                .unwrap_or_default()
        })
        .await?;
    anyhow::ensure!(features.contains(&feature), "{feature} not in {features:?}");
    Ok(())
}

#[when(expr = "{word} signs out")]
async fn signs_out(w: &mut RccWorld, who: String) -> Step {
    let id = endpoint(w, &who)?;
    lab(w).await?.lync.sign_out(id).await
}

#[then(expr = "the gateway holds {int} session(s) and {int} PBX monitor(s)")]
async fn holds(w: &mut RccWorld, sessions: usize, monitors: usize) -> Step {
    // Checks what this lab can observe: our gateway's sessions, our PBX simulator's monitors.
    lab(w).await?.until_holding(sessions, monitors).await
}

#[when(expr = "{word} refreshes the session")]
async fn refreshes(w: &mut RccWorld, who: String) -> Step {
    let id = endpoint(w, &who)?;
    lab(w).await?.lync.refresh(id).await
}

#[then(expr = "the gateway answers {word}'s refresh")]
async fn refresh_answered(w: &mut RccWorld, who: String) -> Step {
    let id = endpoint(w, &who)?;
    lab(w)
        .await?
        .lync
        .wait_for(id, WAIT, "refresh answered", |e| {
            (e.refreshes() >= 1).then_some(())
        })
        .await
}

// ----- calls from Lync -----

async fn ask(w: &mut RccWorld, who: &str, r: Request) -> anyhow::Result<Message> {
    let id = endpoint(w, who)?;
    let answer = lab(w).await?.lync.request(id, r, WAIT).await?;
    w.answers.insert(who.to_owned(), answer.clone());
    answer.map_err(|e| anyhow::anyhow!("{who}'s request failed: {e}"))
}

pub(super) async fn ok(w: &mut RccWorld, who: &str, r: Request) -> anyhow::Result<Response> {
    match ask(w, who, r).await? {
        Message::Response(r) => Ok(r),
        Message::Error(e) => anyhow::bail!(
            "{who} got CSTAErrorCode {}/{}",
            e.category.as_str(),
            e.value
        ),
        other => anyhow::bail!("{who} got {other:?}"),
    }
}

fn me(w: &RccWorld, who: &str, call: &str) -> anyhow::Result<ConnectionId> {
    Ok(ConnectionId::new(call, line(w, who)?))
}

fn current(w: &RccWorld, who: &str) -> anyhow::Result<String> {
    w.calls
        .get(who.split('/').next().unwrap_or(who))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{who} has no call"))
}

/// `who`'s connection in the current call.
fn on_call(w: &RccWorld, who: &str) -> anyhow::Result<ConnectionId> {
    me(w, who, &current(w, who)?)
}

/// `who`'s held call and current call (for transfer, conference, alternate, reconnect).
fn held_and_active(w: &RccWorld, who: &str) -> anyhow::Result<(String, String)> {
    let held = w
        .held
        .get(who)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{who} holds no call"))?;
    Ok((held, current(w, who)?))
}

#[when(expr = "{word} dials {word}")]
async fn dials(w: &mut RccWorld, who: String, target: String) -> Step {
    let called = number(w, &target);
    let calling = line(w, &who)?;
    let r = ok(
        w,
        &who,
        Request::MakeCall {
            calling: calling.clone(),
            called,
            auto_originate: Some(AutoOriginate::DoNotPrompt),
        },
    )
    .await?;
    let Response::MakeCall { calling: c } = r else {
        anyhow::bail!("expected MakeCallResponse, got {r:?}");
    };
    anyhow::ensure!(
        c.device_id.as_deref() == Some(calling.as_str()),
        "MakeCallResponse did not echo the LineURI verbatim: {:?}",
        c.device_id
    );
    w.calls.insert(who, c.call_id.unwrap_or_default());
    Ok(())
}

#[when(expr = "{word} tries to dial {word}")]
async fn tries_dial(w: &mut RccWorld, who: String, target: String) -> Step {
    let called = number(w, &target);
    let calling = line(w, &who)?;
    ask(
        w,
        &who,
        Request::MakeCall {
            calling,
            called,
            auto_originate: Some(AutoOriginate::DoNotPrompt),
        },
    )
    .await
    .map(drop)
}

#[when(expr = "{word} tries to dial from {word}'s line")]
async fn dial_from_other_line(w: &mut RccWorld, who: String, owner: String) -> Step {
    let calling = line(w, &owner)?;
    ask(
        w,
        &who,
        Request::MakeCall {
            calling,
            called: "tel:+14255559999".into(),
            auto_originate: None,
        },
    )
    .await
    .map(drop)
}

#[then(expr = "{word} gets the CSTA error {word}")]
async fn csta_error(w: &mut RccWorld, who: String, value: String) -> Step {
    match w.answers.get(&who) {
        Some(Ok(Message::Error(e))) => {
            anyhow::ensure!(
                e.value == value,
                "{who} got {}/{}, expected {value}",
                e.category.as_str(),
                e.value
            );
            Ok(())
        }
        other => anyhow::bail!("{who} got {other:?}, expected CSTAErrorCode {value}"),
    }
}

#[then(expr = "{word}'s request is refused with {int}")]
async fn sip_refused(w: &mut RccWorld, who: String, code: u16) -> Step {
    match w.answers.get(&who) {
        Some(Err(e)) if *e == format!("SIP {code}") => Ok(()),
        other => anyhow::bail!("{who} got {other:?}, expected SIP {code}"),
    }
}

#[when(expr = "{word} sends a malformed CSTA request")]
async fn malformed(w: &mut RccWorld, who: String) -> Step {
    let id = endpoint(w, &who)?;
    let r = lab(w)
        .await?
        .lync
        .raw_info(
            id,
            "application/csta+xml",
            b"<MakeCall><callingDevice>".to_vec(),
            WAIT,
        )
        .await?;
    w.answers.insert(who, r);
    Ok(())
}

#[when(expr = "{word} answers from Lync")]
async fn answers_from_lync(w: &mut RccWorld, who: String) -> Step {
    let c = on_call(w, &who)?;
    ok(w, &who, Request::AnswerCall { call: c }).await.map(drop)
}

#[when(expr = "{word} hangs up from Lync")]
async fn hangs_up_lync(w: &mut RccWorld, who: String) -> Step {
    let c = on_call(w, &who)?;
    ok(
        w,
        &who,
        Request::ClearConnection {
            connection: c,
            reason: None,
        },
    )
    .await
    .map(drop)
}

#[when(expr = "{word} puts the call on hold")]
async fn hold(w: &mut RccWorld, who: String) -> Step {
    let c = on_call(w, &who)?;
    hold_connection(w, &who, c).await
}

#[when(expr = "{word} puts the call with {word} on hold")]
async fn hold_call_with(w: &mut RccWorld, who: String, other: String) -> Step {
    let call = call_with(w, &who, &other).await?;
    let c = me(w, &who, &call)?;
    hold_connection(w, &who, c).await
}

/// HoldCall from `who`'s Lync client.
async fn hold_connection(w: &mut RccWorld, who: &str, call: ConnectionId) -> Step {
    let hold = Request::HoldCall {
        call,
        reservation: None,
    };
    ok(w, who, hold).await.map(drop)
}

/// The PBX's call between `who` and `other` (a lab user or an outside number).
async fn call_with(w: &mut RccWorld, who: &str, other: &str) -> anyhow::Result<String> {
    let mine = extension(w, who)?;
    let theirs = extension(w, other).unwrap_or_else(|_| other.trim_start_matches("tel:").into());
    let calls = lab(w).await?.pbx()?.calls().await?;
    calls
        .iter()
        .find(|c| {
            let has = |d: &str| c.parties.iter().any(|p| p.device == d);
            has(&mine) && has(&theirs)
        })
        .map(|c| c.call_id.clone())
        .ok_or_else(|| anyhow::anyhow!("no call between {who} and {other} on the PBX: {calls:?}"))
}

#[when(expr = "{word} retrieves the call")]
async fn retrieve(w: &mut RccWorld, who: String) -> Step {
    let c = on_call(w, &who)?;
    ok(w, &who, Request::RetrieveCall { call: c })
        .await
        .map(drop)
}

#[when(expr = "{word} consults {word}")]
async fn consults(w: &mut RccWorld, who: String, target: String) -> Step {
    let call = current(w, &who)?;
    let c = me(w, &who, &call)?;
    let consulted = number(w, &target);
    let r = ok(
        w,
        &who,
        Request::ConsultationCall {
            existing: c,
            consulted,
        },
    )
    .await?;
    let Response::ConsultationCall { initiated } = r else {
        anyhow::bail!("expected ConsultationCallResponse");
    };
    w.held.insert(who.clone(), call);
    w.calls.insert(who, initiated.call_id.unwrap_or_default());
    Ok(())
}

#[when(expr = "{word} transfers the call")]
async fn transfers(w: &mut RccWorld, who: String) -> Step {
    let (held, active) = held_and_active(w, &who)?;
    let (h, a) = (me(w, &who, &held)?, me(w, &who, &active)?);
    ok(w, &who, Request::TransferCall { held: h, active: a })
        .await
        .map(drop)
}

#[when(expr = "{word} conferences the calls")]
async fn conferences(w: &mut RccWorld, who: String) -> Step {
    let (held, active) = held_and_active(w, &who)?;
    let (h, a) = (me(w, &who, &held)?, me(w, &who, &active)?);
    let r = ok(w, &who, Request::ConferenceCall { held: h, active: a }).await?;
    if let Response::ConferenceCall {
        conference: Some(c),
        ..
    } = r
    {
        w.calls.insert(who, c.call_id.unwrap_or_default());
    }
    Ok(())
}

#[when(expr = "{word} alternates between the calls")]
async fn alternates(w: &mut RccWorld, who: String) -> Step {
    let (held, active) = held_and_active(w, &who)?;
    let (h, a) = (me(w, &who, &held)?, me(w, &who, &active)?);
    ok(w, &who, Request::AlternateCall { held: h, active: a }).await?;
    w.held.insert(who.clone(), active);
    w.calls.insert(who, held);
    Ok(())
}

#[when(expr = "{word} goes back to the held call")]
async fn reconnects(w: &mut RccWorld, who: String) -> Step {
    let (held, active) = held_and_active(w, &who)?;
    let (h, a) = (me(w, &who, &held)?, me(w, &who, &active)?);
    ok(w, &who, Request::ReconnectCall { active: a, held: h }).await?;
    w.calls.insert(who.clone(), held);
    w.held.remove(&who);
    Ok(())
}

#[when(expr = "{word} transfers the call to {word}")]
async fn single_step(w: &mut RccWorld, who: String, target: String) -> Step {
    let c = on_call(w, &who)?;
    let to = number(w, &target);
    ok(
        w,
        &who,
        Request::SingleStepTransferCall {
            active: c,
            transferred_to: to,
        },
    )
    .await
    .map(drop)
}

#[when(expr = "{word} deflects the call to {word}")]
async fn deflects(w: &mut RccWorld, who: String, target: String) -> Step {
    let c = on_call(w, &who)?;
    let to = number(w, &target);
    ok(
        w,
        &who,
        Request::DeflectCall {
            call: c,
            new_destination: to,
        },
    )
    .await
    .map(drop)
}

#[when(expr = "{word} sends the digits {word}")]
async fn dtmf(w: &mut RccWorld, who: String, digits: String) -> Step {
    let c = on_call(w, &who)?;
    ok(
        w,
        &who,
        Request::GenerateDigits {
            connection: c,
            digits,
            tone_duration: None,
        },
    )
    .await
    .map(drop)
}

#[when(expr = "{word} forwards all calls to {word}")]
async fn forwards(w: &mut RccWorld, who: String, target: String) -> Step {
    set_forwarding(w, &who, &target, ForwardingType::Immediate, None).await
}

#[when(expr = "{word} forwards calls to {word} when busy")]
async fn forwards_busy(w: &mut RccWorld, who: String, target: String) -> Step {
    set_forwarding(w, &who, &target, ForwardingType::Busy, None).await
}

#[when(expr = "{word} forwards unanswered calls to {word} after {int} rings")]
async fn forwards_no_answer(w: &mut RccWorld, who: String, target: String, rings: u32) -> Step {
    set_forwarding(w, &who, &target, ForwardingType::NoAnswer, Some(rings)).await
}

/// SetForwarding from `who`'s Lync client.
async fn set_forwarding(
    w: &mut RccWorld,
    who: &str,
    target: &str,
    forwarding_type: ForwardingType,
    ring_count: Option<u32>,
) -> Step {
    let device = line(w, who)?;
    let dn = number(w, target);
    ok(
        w,
        who,
        Request::SetForwarding {
            device,
            forwarding_type,
            activate: true,
            forward_dn: Some(dn),
            ring_count,
        },
    )
    .await
    .map(drop)
}

#[when(expr = "{word} forwards all calls to {word} at the desk phone")]
async fn forwards_at_phone(w: &mut RccWorld, who: String, target: String) -> Step {
    let ext = extension(w, &who)?;
    let to = extension(w, &target)?;
    lab(w)
        .await?
        .pbx()?
        .phone_forwarding(&ext, ForwardingType::Immediate, Some(&to))
        .await
}

#[given(expr = "a ring lasts {int} ms")]
async fn ring_lasts(w: &mut RccWorld, ms: u64) -> Step {
    lab(w)
        .await?
        .pbx()?
        .configure_switch(move |c| c.ring = Duration::from_millis(ms))
        .await
}

#[given("the PBX does not hold a call when another is answered")]
async fn no_hold_on_answer(w: &mut RccWorld) -> Step {
    lab(w)
        .await?
        .pbx()?
        .configure_switch(|c| c.hold_on_answer = false)
        .await
}

#[when(expr = "{word} tries to answer from Lync")]
async fn tries_to_answer(w: &mut RccWorld, who: String) -> Step {
    let c = on_call(w, &who)?;
    ask(w, &who, Request::AnswerCall { call: c })
        .await
        .map(drop)
}

#[then(expr = "{word} reads back forwarding to {word}")]
async fn reads_forwarding(w: &mut RccWorld, who: String, target: String) -> Step {
    let device = line(w, &who)?;
    let want = number(w, &target);
    let r = ok(w, &who, Request::GetForwarding { device }).await?;
    let Response::GetForwarding { items } = r else {
        anyhow::bail!("expected GetForwardingResponse");
    };
    anyhow::ensure!(
        items
            .iter()
            .any(|i| i.forwarding_type == ForwardingType::Immediate
                && i.status
                && i.forward_dn.as_deref() == Some(want.as_str())),
        "forwarding read back: {items:?}"
    );
    Ok(())
}

#[when(expr = "{word} turns do-not-disturb on")]
async fn dnd(w: &mut RccWorld, who: String) -> Step {
    let device = line(w, &who)?;
    ok(w, &who, Request::SetDoNotDisturb { device, on: true })
        .await
        .map(drop)
}

// ----- the PBX side -----

#[when(expr = "{word} answers at the desk phone")]
async fn answers_desk(w: &mut RccWorld, who: String) -> Step {
    let ext = extension(w, &who)?;
    lab(w).await?.pbx()?.answer(&ext).await.map(drop)
}

#[when(expr = "{word} hangs up at the desk phone")]
async fn hangs_up_desk(w: &mut RccWorld, who: String) -> Step {
    let ext = extension(w, &who)?;
    lab(w).await?.pbx()?.hang_up(&ext).await.map(drop)
}

#[when(expr = "the outside caller {word} calls {word}")]
async fn outside_calls(w: &mut RccWorld, from: String, who: String) -> Step {
    let ext = extension(w, &who)?;
    let id = lab(w).await?.pbx()?.incoming(&from, &ext).await?;
    w.calls.insert(who, id);
    Ok(())
}

#[when(expr = "{word} hangs up")]
async fn outside_hangs_up(w: &mut RccWorld, who: String) -> Step {
    lab(w).await?.pbx()?.hang_up(&who).await.map(drop)
}

#[then(expr = "{word}'s desk phone rings")]
async fn desk_rings(w: &mut RccWorld, who: String) -> Step {
    let ext = extension(w, &who)?;
    pbx_state(w, &ext, "alerting").await
}

#[then(expr = "{word}'s desk phone is {word}")]
async fn desk_state(w: &mut RccWorld, who: String, state: String) -> Step {
    let ext = extension(w, &who)?;
    let s = match state.as_str() {
        "talking" => "connected",
        "holding" => "hold",
        other => other,
    };
    pbx_state(w, &ext, s).await
}

async fn pbx_state(w: &mut RccWorld, device: &str, state: &str) -> Step {
    let lab = lab(w).await?;
    let what = format!("PBX: {device} {state}");
    let reached = lab
        .eventually(&what, Duration::from_secs(5), async |lab| {
            let calls = lab.pbx()?.calls().await?;
            let found = calls.iter().any(|c| {
                c.parties
                    .iter()
                    .any(|p| p.device == device && p.state == state)
            });
            Ok(found.then_some(()))
        })
        .await;
    if reached.is_err() {
        let seen = lab.pbx()?.calls().await?;
        anyhow::bail!("PBX: {device} is not {state}; calls: {seen:?}");
    }
    Ok(())
}

#[then(expr = "the PBX received the digits {word}")]
async fn pbx_digits(w: &mut RccWorld, digits: String) -> Step {
    let calls = lab(w).await?.pbx()?.calls().await?;
    anyhow::ensure!(
        calls.iter().any(|c| c.digits == digits),
        "digits on the PBX: {calls:?}"
    );
    Ok(())
}

#[then("the PBX has no call")]
async fn pbx_idle(w: &mut RccWorld) -> Step {
    let lab = lab(w).await?;
    let idle = lab
        .eventually("no call on the PBX", Duration::from_secs(3), async |lab| {
            Ok(lab.pbx()?.calls().await?.is_empty().then_some(()))
        })
        .await;
    if idle.is_err() {
        anyhow::bail!("calls left on the PBX: {:?}", lab.pbx()?.calls().await?);
    }
    Ok(())
}

#[when("the PBX link drops")]
async fn link_drops(w: &mut RccWorld) -> Step {
    w.monitors_before_fault = Some(lab(w).await?.pbx_monitors().await?);
    lab(w).await?.pbx()?.drop_links(true).await
}

#[when("the PBX ends the CTI session")]
async fn session_ends(w: &mut RccWorld) -> Step {
    w.monitors_before_fault = Some(lab(w).await?.pbx_monitors().await?);
    lab(w).await?.pbx()?.terminate_sessions().await
}

#[when("the PBX stops answering")]
async fn pbx_silent(w: &mut RccWorld) -> Step {
    lab(w)
        .await?
        .pbx()?
        .set_faults(Faults {
            drop_responses: true,
            ..Faults::default()
        })
        .await
}

#[given("the PBX repeats every event")]
async fn pbx_repeats(w: &mut RccWorld) -> Step {
    lab(w)
        .await?
        .pbx()?
        .set_faults(Faults {
            repeat_events: true,
            ..Faults::default()
        })
        .await
}

#[then("the gateway restores the PBX monitors")]
async fn monitors_restored(w: &mut RccWorld) -> Step {
    let before = w.monitors_before_fault;
    let lab = lab(w).await?;
    // Our gateway says how many monitors it holds; of an external one the PBX simulator
    // counted them before the fault.
    let want = match lab.gateway() {
        Ok(g) => g.monitors().await?,
        Err(_) => before.unwrap_or(1),
    }
    .max(1);
    lab.eventually(
        "the PBX monitors re-created",
        Duration::from_secs(5),
        async |lab| {
            let linked = match lab.gateway() {
                Ok(g) => g.pbx_serving().await?,
                Err(_) => !lab.pbx()?.links().await?.is_empty(),
            };
            Ok((linked && lab.pbx_monitors().await? == want).then_some(()))
        },
    )
    .await
}

#[when("the gateway restarts")]
async fn gateway_restarts(w: &mut RccWorld) -> Step {
    super::lab(w).await?;
    match w.lab.as_mut() {
        Some(l) => l.restart_gateway().await,
        None => anyhow::bail!("no lab"),
    }
}

#[then(expr = "{word} signs in again")]
async fn signs_in_again(w: &mut RccWorld, who: String) -> Step {
    let id = endpoint(w, &who)?;
    lab(w)
        .await?
        .lync
        .wait_for(id, WAIT, "a second sign-in", |e| {
            (e.sign_ins() >= 2 && e.phase() == &Phase::Ready).then_some(())
        })
        .await
}

// ----- what the Lync client sees -----

fn kind_of(word: &str) -> anyhow::Result<K> {
    Ok(match word {
        "initiated" => K::ServiceInitiated,
        "originated" => K::Originated,
        "delivered" | "ringing" => K::Delivered,
        "established" | "answered" => K::Established,
        "cleared" => K::ConnectionCleared,
        "held" => K::Held,
        "retrieved" => K::Retrieved,
        "diverted" | "deflected" | "forwarded" => K::Diverted,
        "transferred" => K::Transferred,
        "conferenced" => K::Conferenced,
        "failed" => K::Failed,
        other => anyhow::bail!("unknown call state {other:?}"),
    })
}

async fn sees(
    w: &mut RccWorld,
    who: &str,
    kind: K,
) -> anyhow::Result<rcc_protocol::csta::CallEvent> {
    let id = endpoint(w, who)?;
    let after = w.seen.get(&id).copied().unwrap_or(0);
    let lab = lab(w).await?;
    let (i, c) = match lab.lync.wait_call_event(id, after, WAIT, kind).await {
        Ok(found) => found,
        Err(e) => {
            let since: Vec<&'static str> = lab
                .lync
                .events(id)
                .await?
                .iter()
                .skip(after)
                .map(|s| s.event.root_name())
                .collect();
            anyhow::bail!(
                "{who} did not see the call as expected ({e})\nexpected: {} (event {} or later)\nactual: {}",
                kind.root_name(),
                after + 1,
                if since.is_empty() {
                    "no event".to_owned()
                } else {
                    since.join(", ")
                }
            );
        }
    };
    w.seen.insert(id, i + 1);
    let user = who.split('/').next().unwrap_or(who).to_owned();
    let call = c.connection.as_ref().and_then(|x| x.call_id.clone());
    if let (Some(call), false) = (
        call,
        matches!(kind, K::ConnectionCleared | K::Transferred | K::Diverted),
    ) {
        w.calls.entry(user).or_insert(call);
    }
    Ok(c)
}

#[then(expr = "{word} sees the call as {word}")]
async fn sees_call(w: &mut RccWorld, who: String, state: String) -> Step {
    sees(w, &who, kind_of(&state)?).await.map(drop)
}

#[then(expr = "{word} sees the call as {word} because of {word}")]
async fn sees_call_cause(w: &mut RccWorld, who: String, state: String, cause: String) -> Step {
    let c = sees(w, &who, kind_of(&state)?).await?;
    let got = c
        .cause
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    anyhow::ensure!(got == cause, "{who}: cause {got:?}, expected {cause:?}");
    Ok(())
}

#[then(expr = "{word} sees the call with {word} as {word}")]
async fn sees_call_with(w: &mut RccWorld, who: String, other: String, state: String) -> Step {
    let want = call_with(w, &who, &other).await?;
    let c = sees(w, &who, kind_of(&state)?).await?;
    let got = c.connection.and_then(|x| x.call_id).unwrap_or_default();
    anyhow::ensure!(
        got == want,
        "{who} sees call {got:?} as {state}, expected the call with {other} ({want:?})"
    );
    Ok(())
}

#[then(expr = "{word} sees a call from {word}")]
async fn sees_call_from(w: &mut RccWorld, who: String, from: String) -> Step {
    let c = sees(w, &who, K::Delivered).await?;
    let want = number(w, &from);
    let got = c
        .calling
        .as_ref()
        .and_then(|d| d.as_id())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        got == want,
        "{who} sees the call from {got:?}, expected {want:?}"
    );
    let call = c.connection.and_then(|x| x.call_id).unwrap_or_default();
    w.calls
        .insert(who.split('/').next().unwrap_or(&who).to_owned(), call);
    Ok(())
}

#[then(expr = "{word} sees forwarding to {word}")]
async fn sees_forwarding(w: &mut RccWorld, who: String, target: String) -> Step {
    let id = endpoint(w, &who)?;
    let want = number(w, &target);
    lab(w)
        .await?
        .lync
        .wait_event(id, 0, WAIT, "ForwardingEvent", move |e| {
            matches!(e, Event::Forwarding(f) if f.status && f.forward_to.as_deref() == Some(want.as_str()))
        })
        .await
        .map(drop)
}

#[then(expr = "{word} sees do-not-disturb on")]
async fn sees_dnd(w: &mut RccWorld, who: String) -> Step {
    let id = endpoint(w, &who)?;
    lab(w)
        .await?
        .lync
        .wait_event(
            id,
            0,
            WAIT,
            "DoNotDisturbEvent",
            |e| matches!(e, Event::DoNotDisturb(d) if d.on),
        )
        .await
        .map(drop)
}

#[then(expr = "{word} saw no protocol violations")]
async fn no_violations(w: &mut RccWorld, who: String) -> Step {
    let id = endpoint(w, &who)?;
    let v = lab(w).await?.lync.violations(id).await?;
    anyhow::ensure!(v.is_empty(), "{who}: {v:?}");
    Ok(())
}

#[then(expr = "the Front End counted {int} refused route(s)")]
async fn no_route_count(w: &mut RccWorld, n: u64) -> Step {
    let s = lab(w).await?.lync.stats().await?;
    anyhow::ensure!(s.no_route == n, "no_route = {}", s.no_route);
    Ok(())
}
