//! Steps that drive the real pidgin-sipe client (`rcc_lab::sipe`): it signs in at the
//! simulated pool's client port, dials through its RCC session, and what it received is read
//! from its own SIP trace. Scenarios that use them are tagged `@needs-pidgin-sipe`.

use std::time::Duration;

use cucumber::{then, when};
use rcc_lab::lab::WAIT;
use rcc_lab::sipe::{self, SipeClient};

use super::{RccWorld, lab};

type Step = anyhow::Result<()>;

/// sipe prints this once its MonitorStart is answered: its RCC session is up.
const RCC_UP: &str = "monitor_cross_ref_id=";

/// One real client and how far its trace has been read.
pub struct RealClient {
    client: SipeClient,
    read: usize,
}

impl RealClient {
    /// Signs off (MonitorStop and BYE go out) and ends the client.
    pub async fn quit(self) -> anyhow::Result<()> {
        self.client.quit().await.map(drop)
    }
}

fn client<'a>(w: &'a mut RccWorld, who: &str) -> anyhow::Result<&'a mut RealClient> {
    w.sipe
        .get_mut(who)
        .ok_or_else(|| anyhow::anyhow!("{who} has no pidgin-sipe client signed in"))
}

async fn start(w: &mut RccWorld, who: &str) -> Step {
    let user = w
        .options
        .users
        .iter()
        .find(|u| u.name == who)
        .map(|u| u.uri().trim_start_matches("sip:").to_owned())
        .ok_or_else(|| anyhow::anyhow!("no lab user {who:?}"))?;
    let host = sipe::host()?;
    let server = lab(w)
        .await?
        .lync
        .clients_addr
        .ok_or_else(|| anyhow::anyhow!("the lab's pool serves no real clients"))?;
    let dir = std::env::temp_dir().join(format!(
        "rcc-lab-sipe-{who}-{}-{}",
        std::process::id(),
        w.sipe_runs
    ));
    w.sipe_runs += 1;
    let client = SipeClient::start(&host, server, &user, &dir)?;
    let read = client.wait_for(RCC_UP, 0, WAIT).await? + 1;
    w.sipe.insert(who.to_owned(), RealClient { client, read });
    Ok(())
}

#[when(expr = "{word} signs in with the real pidgin-sipe")]
async fn signs_in(w: &mut RccWorld, who: String) -> Step {
    start(w, &who).await
}

#[when(expr = "{word} signs in again with the real pidgin-sipe")]
async fn signs_in_again(w: &mut RccWorld, who: String) -> Step {
    if let Some(old) = w.sipe.remove(&who) {
        old.client.quit().await?;
    }
    start(w, &who).await
}

#[when(expr = "{word} dials {word} on pidgin-sipe")]
async fn dials(w: &mut RccWorld, who: String, callee: String) -> Step {
    let number = match w.options.users.iter().find(|u| u.name == callee) {
        Some(u) => u.e164(),
        None => callee,
    };
    client(w, &who)?.client.dial(&number)
}

/// Waits for `needle` in what the client printed since the last step that read it.
async fn received(w: &mut RccWorld, who: &str, needle: &str, within: Duration) -> Step {
    let c = client(w, who)?;
    c.read = c.client.wait_for(needle, c.read, within).await? + 1;
    Ok(())
}

#[then(expr = "{word}'s pidgin-sipe gets the {word} event")]
async fn gets_event(w: &mut RccWorld, who: String, event: String) -> Step {
    received(w, &who, &format!("<{event}Event "), WAIT).await
}

#[then(expr = "{word}'s pidgin-sipe request is answered {int}")]
async fn answered(w: &mut RccWorld, who: String, code: u16) -> Step {
    received(w, &who, &format!("SIP/2.0 {code} "), WAIT).await
}
