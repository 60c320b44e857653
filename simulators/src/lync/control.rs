//! The Lync simulator's HTTP JSON control endpoint, so a lab can drive endpoints against any
//! gateway (vendor gateways included) from curl. Documented in docs/lync-sim.md.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use rcc_protocol::csta::{self, AutoOriginate, ConnectionId, Request};
use serde::Deserialize;
use serde_json::{Value, json};

use super::server::LyncSim;

const WAIT: Duration = Duration::from_secs(10);

use crate::http::{Failure, Reply, optional_json};

/// The routes.
pub fn router(sim: LyncSim) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/stats", get(stats))
        .route("/endpoints", get(endpoints))
        .route("/endpoints/{id}/events", get(events))
        .route("/endpoints/{id}/request", post(request))
        .route("/endpoints/{id}/{action}", post(action))
        .with_state(sim)
}

/// Serves the control endpoint; returns the bound address.
pub async fn serve(sim: LyncSim, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    crate::http::serve(router(sim), addr).await
}

async fn stats(State(sim): State<LyncSim>) -> Reply {
    Ok(Json(json!(sim.stats().await?)))
}

async fn endpoints(State(sim): State<LyncSim>) -> Reply {
    let list = sim
        .with(|fe, _| {
            (0..fe.endpoint_count())
                .filter_map(|i| fe.endpoint(i).map(|e| (i, e)))
                .map(|(i, e)| {
                    json!({
                        "id": i,
                        "user": e.config.user,
                        "epid": e.config.epid,
                        "line": e.config.line,
                        "profile": e.config.profile.name(),
                        "phase": e.phase(),
                        "monitor_cross_ref_id": e.xref(),
                        "features": e.features(),
                        "calls": e.calls(),
                        "events": e.events().len(),
                        "sign_ins": e.sign_ins(),
                        "refreshes": e.refreshes(),
                        "violations": e.violations(),
                    })
                })
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!(list)))
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: usize,
}

async fn events(
    State(sim): State<LyncSim>,
    Path(id): Path<usize>,
    Query(q): Query<Since>,
) -> Reply {
    let list = sim.events(id).await?;
    let out: Vec<Value> = list
        .iter()
        .enumerate()
        .skip(q.since)
        .map(|(i, s)| {
            json!({
                "index": i,
                "event": s.event.root_name(),
                "xml": csta::encode(&csta::Message::Event(s.event.clone()), csta::ED3),
            })
        })
        .collect();
    Ok(Json(json!(out)))
}

fn answer(r: super::endpoint::ActionResult) -> Reply {
    match r {
        Ok(m) => Ok(Json(json!({ "answer": csta::encode(&m, csta::ED3) }))),
        Err(e) => Err(Failure(StatusCode::BAD_GATEWAY, e)),
    }
}

async fn request(State(sim): State<LyncSim>, Path(id): Path<usize>, body: Bytes) -> Reply {
    let decoded = csta::decode(&body)
        .map_err(|e| Failure(StatusCode::UNPROCESSABLE_ENTITY, format!("CSTA body: {e}")))?;
    let csta::Message::Request(r) = decoded.message else {
        return Err(Failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be a CSTA request".into(),
        ));
    };
    answer(sim.request(id, r, WAIT).await?)
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Args {
    number: Option<String>,
    call_id: Option<String>,
    other_call_id: Option<String>,
    digits: Option<String>,
}

async fn action(
    State(sim): State<LyncSim>,
    Path((id, action)): Path<(usize, String)>,
    body: Bytes,
) -> Reply {
    let args: Args = optional_json(&body)?;
    match action.as_str() {
        "sign-in" => {
            sim.sign_in(id).await?;
            let xref = sim.wait_ready(id, WAIT).await?;
            return Ok(Json(json!({ "monitor_cross_ref_id": xref })));
        }
        "sign-out" => {
            sim.sign_out(id).await?;
            return Ok(Json(json!({})));
        }
        "refresh" => {
            sim.refresh(id).await?;
            return Ok(Json(json!({})));
        }
        _ => {}
    }
    let line = sim
        .with(move |fe, _| fe.endpoint(id).map(|e| e.config.line.clone()))
        .await?
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("no endpoint {id}")))?;
    let need = |v: Option<String>, what: &str| {
        v.ok_or_else(|| {
            Failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{action} needs {what}"),
            )
        })
    };
    let me = |c: String| ConnectionId::new(c, line.clone());
    let r = match action.as_str() {
        "dial" => Request::MakeCall {
            calling: line.clone(),
            called: need(args.number, "\"number\"")?,
            auto_originate: Some(AutoOriginate::DoNotPrompt),
        },
        "answer" => Request::AnswerCall {
            call: me(need(args.call_id, "\"call_id\"")?),
        },
        "hang-up" => Request::ClearConnection {
            connection: me(need(args.call_id, "\"call_id\"")?),
            reason: None,
        },
        "hold" => Request::HoldCall {
            call: me(need(args.call_id, "\"call_id\"")?),
            reservation: None,
        },
        "retrieve" => Request::RetrieveCall {
            call: me(need(args.call_id, "\"call_id\"")?),
        },
        "consult" => Request::ConsultationCall {
            existing: me(need(args.call_id, "\"call_id\"")?),
            consulted: need(args.number, "\"number\"")?,
        },
        "transfer" => Request::TransferCall {
            held: me(need(args.call_id, "\"call_id\" (held)")?),
            active: me(need(args.other_call_id, "\"other_call_id\" (active)")?),
        },
        "single-step-transfer" => Request::SingleStepTransferCall {
            active: me(need(args.call_id, "\"call_id\"")?),
            transferred_to: need(args.number, "\"number\"")?,
        },
        "deflect" => Request::DeflectCall {
            call: me(need(args.call_id, "\"call_id\"")?),
            new_destination: need(args.number, "\"number\"")?,
        },
        "dtmf" => Request::GenerateDigits {
            connection: me(need(args.call_id, "\"call_id\"")?),
            digits: need(args.digits, "\"digits\"")?,
            tone_duration: None,
        },
        other => {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown action {other:?} (sign-in, sign-out, refresh, dial, answer, hang-up, hold, retrieve, consult, transfer, single-step-transfer, deflect, dtmf, request)"
                ),
            ));
        }
    };
    answer(sim.request(id, r, WAIT).await?)
}
