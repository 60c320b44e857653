//! The lab tour `rcc-lab run` performs: the full lab in one process (PBX simulator, gateway,
//! Lync pool and endpoints) driven through the everyday RCC flows, each step checked on both
//! sides, with a plain report.

use std::time::{Duration, Instant};

use rcc_protocol::csta::{AutoOriginate, CallEventKind as K, ConnectionId, Request, Response};
use rcc_simulators::lync::{ClientProfile, expect_response};

use crate::lab::{Lab, LabOptions};

use crate::lab::WAIT;

/// One step of the tour and how it went.
#[derive(Debug, Clone)]
pub struct Step {
    /// What was done.
    pub name: String,
    /// `Ok` or the reason it failed.
    pub outcome: Result<(), String>,
    /// Time taken.
    pub took: Duration,
}

async fn next_event(lab: &Lab, ep: usize, after: usize, kind: K) -> anyhow::Result<usize> {
    let (i, _) = lab.lync.wait_call_event(ep, after, WAIT, kind).await?;
    Ok(i + 1)
}

/// Runs the tour over TLS (or TCP) and returns every step.
pub async fn run(tls: bool) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let started = Instant::now();
    let lab = Lab::start(LabOptions {
        tls,
        ..LabOptions::default()
    })
    .await?;
    steps.push(Step {
        name: format!(
            "lab up: PBX simulator, gateway ({}), Front End pool",
            if tls { "mutual TLS" } else { "TCP" }
        ),
        outcome: Ok(()),
        took: started.elapsed(),
    });
    let mut state = Tour {
        lab,
        steps,
        alice: 0,
        alice2: 0,
        bob: 0,
        call: String::new(),
        seen: 0,
    };
    state.go().await;
    Ok(state.steps)
}

struct Tour {
    lab: Lab,
    steps: Vec<Step>,
    alice: usize,
    alice2: usize,
    bob: usize,
    call: String,
    seen: usize,
}

impl Tour {
    async fn step<F>(&mut self, name: &str, f: F) -> bool
    where
        F: AsyncFnOnce(&mut Tour) -> anyhow::Result<()>,
    {
        let t = Instant::now();
        let outcome = f(self).await.map_err(|e| format!("{e:#}"));
        let ok = outcome.is_ok();
        self.steps.push(Step {
            name: name.to_owned(),
            outcome,
            took: t.elapsed(),
        });
        ok
    }

    async fn go(&mut self) {
        let ok = self
            .step(
                "alice signs in on two endpoints (MPOP), bob on one",
                async |t| {
                    t.alice = t
                        .lab
                        .signed_in("alice", "desk", ClientProfile::Lync2013)
                        .await?;
                    t.alice2 = t
                        .lab
                        .signed_in("alice", "laptop", ClientProfile::Lync2013)
                        .await?;
                    t.bob = t
                        .lab
                        .signed_in("bob", "desk", ClientProfile::Oc2007r2)
                        .await?;
                    anyhow::ensure!(
                        t.lab.gateway()?.monitors().await? == 2,
                        "expected one PBX monitor per line"
                    );
                    Ok(())
                },
            )
            .await;
        if !ok {
            return;
        }
        self.step(
            "alice clicks to dial bob; bob's desk phone rings",
            async |t| {
                let line = t.lab.user("alice")?.line();
                let r = expect_response(
                    t.lab
                        .lync
                        .request(
                            t.alice,
                            Request::MakeCall {
                                calling: line.clone(),
                                called: "tel:+14255551002".into(),
                                auto_originate: Some(AutoOriginate::DoNotPrompt),
                            },
                            WAIT,
                        )
                        .await?,
                )?;
                let Response::MakeCall { calling } = r else {
                    anyhow::bail!("no MakeCallResponse");
                };
                anyhow::ensure!(
                    calling.device_id.as_deref() == Some(line.as_str()),
                    "LineURI not echoed verbatim"
                );
                t.call = calling.call_id.unwrap_or_default();
                t.seen = next_event(&t.lab, t.alice, 0, K::Delivered).await?;
                next_event(&t.lab, t.bob, 0, K::Delivered).await?;
                let calls = t.lab.pbx()?.calls().await?;
                anyhow::ensure!(
                    calls.iter().any(|c| c
                        .parties
                        .iter()
                        .any(|p| p.device == "1002" && p.state == "alerting")),
                    "bob's phone is not alerting on the PBX"
                );
                Ok(())
            },
        )
        .await;
        self.step(
            "bob answers at his desk phone; both alice endpoints see it",
            async |t| {
                t.lab.pbx()?.answer("1002").await?;
                t.seen = next_event(&t.lab, t.alice, t.seen, K::Established).await?;
                next_event(&t.lab, t.alice2, 0, K::Established).await?;
                Ok(())
            },
        )
        .await;
        self.step("alice holds and retrieves the call", async |t| {
            let me = ConnectionId::new(t.call.clone(), t.lab.user("alice")?.line());
            expect_response(
                t.lab
                    .lync
                    .request(
                        t.alice,
                        Request::HoldCall {
                            call: me.clone(),
                            reservation: None,
                        },
                        WAIT,
                    )
                    .await?,
            )?;
            t.seen = next_event(&t.lab, t.alice, t.seen, K::Held).await?;
            expect_response(
                t.lab
                    .lync
                    .request(t.alice, Request::RetrieveCall { call: me }, WAIT)
                    .await?,
            )?;
            t.seen = next_event(&t.lab, t.alice, t.seen, K::Retrieved).await?;
            Ok(())
        })
        .await;
        self.step("alice sends DTMF 1234#", async |t| {
            let me = ConnectionId::new(t.call.clone(), t.lab.user("alice")?.line());
            expect_response(
                t.lab
                    .lync
                    .request(
                        t.alice,
                        Request::GenerateDigits {
                            connection: me,
                            digits: "1234#".into(),
                            tone_duration: None,
                        },
                        WAIT,
                    )
                    .await?,
            )?;
            let calls = t.lab.pbx()?.calls().await?;
            anyhow::ensure!(
                calls.iter().any(|c| c.digits == "1234#"),
                "the PBX did not get the digits"
            );
            Ok(())
        })
        .await;
        self.step(
            "alice transfers bob to carol's desk phone in one step",
            async |t| {
                let me = ConnectionId::new(t.call.clone(), t.lab.user("alice")?.line());
                expect_response(
                    t.lab
                        .lync
                        .request(
                            t.alice,
                            Request::SingleStepTransferCall {
                                active: me,
                                transferred_to: "tel:+14255551003".into(),
                            },
                            WAIT,
                        )
                        .await?,
                )?;
                t.seen = next_event(&t.lab, t.alice, t.seen, K::Transferred).await?;
                t.lab.pbx()?.answer("1003").await?;
                Ok(())
            },
        )
        .await;
        self.step(
            "an outside caller rings alice; she answers from Lync",
            async |t| {
                let id = t.lab.pbx()?.incoming("+14255550200", "1001").await?;
                t.seen = next_event(&t.lab, t.alice, t.seen, K::Delivered).await?;
                let me = ConnectionId::new(id, t.lab.user("alice")?.line());
                expect_response(
                    t.lab
                        .lync
                        .request(t.alice, Request::AnswerCall { call: me }, WAIT)
                        .await?,
                )?;
                t.seen = next_event(&t.lab, t.alice, t.seen, K::Established).await?;
                t.lab.pbx()?.hang_up("+14255550200").await?;
                t.seen = next_event(&t.lab, t.alice, t.seen, K::ConnectionCleared).await?;
                Ok(())
            },
        )
        .await;
        self.step(
            "the PBX link drops; the gateway recovers without losing a session",
            async |t| {
                let before = t.lab.gateway()?.sessions().await?;
                t.lab.pbx()?.drop_links(true).await?;
                t.lab
                    .eventually("both monitors re-created", WAIT, async |lab| {
                        Ok((lab.pbx_monitors().await? == 2).then_some(()))
                    })
                    .await?;
                anyhow::ensure!(
                    t.lab.gateway()?.sessions().await? == before,
                    "a session was lost"
                );
                Ok(())
            },
        )
        .await;
        self.step(
            "everyone signs out; no session or monitor is left",
            async |t| {
                for ep in [t.alice, t.alice2, t.bob] {
                    t.lab.lync.sign_out(ep).await?;
                }
                t.lab
                    .eventually("no session or monitor left", WAIT, async |lab| {
                        let gw = lab.gateway()?;
                        let empty = gw.sessions().await? == 0 && gw.monitors().await? == 0;
                        Ok(empty.then_some(()))
                    })
                    .await
            },
        )
        .await;
        self.step("no endpoint saw the gateway break an RCC rule", async |t| {
            for ep in [t.alice, t.alice2, t.bob] {
                let v = t.lab.lync.violations(ep).await?;
                anyhow::ensure!(v.is_empty(), "endpoint {ep}: {v:?}");
            }
            Ok(())
        })
        .await;
    }
}
