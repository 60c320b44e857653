//! Steps in virtual time: a scenario that says `Given the lab runs in virtual time` runs on
//! the in-memory lab (rcc-testkit's MemLab: the Front End and endpoints, our gateway's core and
//! the PBX switch, no sockets, a virtual clock), so minutes of protocol timers take
//! microseconds. Only the steps here know that lab; any other step in such a scenario says so.

use std::time::Duration;

use rcc_simulators::lync::ClientProfile;
use rcc_testkit::MemLab;

use super::RccWorld;

type Step = anyhow::Result<()>;

/// The scenario's in-memory lab, built from the options the Given steps gathered.
fn lab(w: &mut RccWorld) -> anyhow::Result<&mut MemLab> {
    if w.memlab.is_none() {
        let users: Vec<(&str, &str)> = w
            .options
            .users
            .iter()
            .map(|u| (u.name.as_str(), u.extension.as_str()))
            .collect();
        let session_expires = w.options.session_expires;
        let lab = MemLab::with(&users, |c| {
            if let Some(se) = session_expires {
                c.sip.session_expires_s = se;
            }
        })?;
        w.memlab = Some(lab);
    }
    w.memlab
        .as_mut()
        .ok_or_else(|| anyhow::anyhow!("the in-memory lab did not start"))
}

/// Signs in a Lync 2013 endpoint of `user` that signs in again when its dialog ends, as the
/// async lab's endpoints do.
pub fn sign_in(w: &mut RccWorld, key: &str, user: &str, epid: &str) -> Step {
    let lab = lab(w)?;
    let mut config = lab.endpoint_config(user, epid, ClientProfile::Lync2013)?;
    config.reestablish = true;
    let id = lab.add_endpoint(config);
    lab.sign_in(id)?;
    w.endpoints.insert(key.to_owned(), id);
    Ok(())
}

/// The gateway ends the endpoint's session for want of a refresh within `within` of virtual
/// time, and the endpoint signs in again.
pub fn session_expired(w: &mut RccWorld, id: usize, within: Duration) -> Step {
    let lab = lab(w)?;
    lab.wait_until("the gateway ends the session as expired", within, |l| {
        l.gateway_metrics()
            .lines()
            .any(|m| m == "rcc_gateway_sessions_ended_total{reason=\"expired\"} 1")
    })?;
    lab.wait_for(id, "a new sign-in", Duration::from_secs(5), |e| {
        (e.sign_ins() >= 2).then_some(())
    })
}
