//! The PBX simulator's HTTP JSON control endpoint: what the in-process API offers, for labs that
//! drive the simulator from curl or another language. Documented in docs/pbx-sim.md.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use rcc_protocol::csta::{ForwardingType, SystemStatusValue};
use serde::Deserialize;
use serde_json::json;

use super::directory::{DeviceConfig, ExternalParty};
use super::engine::Faults;
use super::server::PbxSim;

/// A control-endpoint failure as JSON `{"error": "..."}`.
use crate::http::{Failure, Reply, optional_json};

/// The routes, bound to a running simulator.
pub fn router(sim: PbxSim) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/calls", get(calls))
        .route("/links", get(links))
        .route("/log", get(log))
        .route("/devices", post(add_device))
        .route("/incoming", post(incoming))
        .route("/phones/{device}/{action}", post(phone))
        .route("/externals/{number}", post(script_external))
        .route("/faults", get(get_faults).put(put_faults))
        .route("/links/drop", post(drop_links))
        .route("/sessions/terminate", post(terminate))
        .route("/monitors/{xref}/end", post(end_monitor))
        .route("/system-status", post(system_status))
        .route("/links/malformed", post(malformed))
        .with_state(sim)
}

/// Serves the control endpoint; returns the bound address.
pub async fn serve(sim: PbxSim, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    crate::http::serve(router(sim), addr).await
}

async fn calls(State(sim): State<PbxSim>) -> Reply {
    Ok(Json(json!(sim.calls().await?)))
}

async fn links(State(sim): State<PbxSim>) -> Reply {
    Ok(Json(json!(sim.links().await?)))
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

async fn log(State(sim): State<PbxSim>, Query(q): Query<Since>) -> Reply {
    Ok(Json(json!(sim.log_since(q.since).await?)))
}

async fn add_device(State(sim): State<PbxSim>, Json(d): Json<DeviceConfig>) -> Reply {
    sim.add_device(d).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    from: String,
    to: String,
}

async fn incoming(State(sim): State<PbxSim>, Json(i): Json<Incoming>) -> Reply {
    let call = sim.incoming(&i.from, &i.to).await?;
    Ok(Json(json!({ "call_id": call })))
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PhoneArgs {
    number: Option<String>,
    forward_to: Option<String>,
    forwarding_type: Option<String>,
    on: Option<bool>,
}

async fn phone(
    State(sim): State<PbxSim>,
    Path((device, action)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let args: PhoneArgs = optional_json(&body)?;
    let call = match action.as_str() {
        "answer" => sim.answer(&device).await?,
        "hang-up" => sim.hang_up(&device).await?,
        "hold" => sim.hold(&device).await?,
        "retrieve" => sim.retrieve(&device).await?,
        "dial" => {
            let number = args.number.ok_or_else(|| {
                Failure(
                    StatusCode::BAD_REQUEST,
                    "dial needs {\"number\": ...}".into(),
                )
            })?;
            sim.dial(&device, &number).await?
        }
        "forwarding" => {
            let kind = ForwardingType::parse(
                args.forwarding_type
                    .as_deref()
                    .unwrap_or("forwardImmediate"),
            );
            sim.phone_forwarding(&device, kind, args.forward_to.as_deref())
                .await?;
            String::new()
        }
        "call-waiting" => {
            sim.set_call_waiting(&device, args.on.unwrap_or(true))
                .await?;
            String::new()
        }
        other => {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown phone action {other:?} (answer, hang-up, hold, retrieve, dial, forwarding, call-waiting)"
                ),
            ));
        }
    };
    Ok(Json(json!({ "call_id": call })))
}

async fn script_external(
    State(sim): State<PbxSim>,
    Path(number): Path<String>,
    Json(party): Json<ExternalParty>,
) -> Reply {
    sim.set_external(&number, party).await?;
    Ok(Json(json!({})))
}

async fn get_faults(State(sim): State<PbxSim>) -> Reply {
    Ok(Json(json!(sim.with(|p, _| p.faults().clone()).await?)))
}

async fn put_faults(State(sim): State<PbxSim>, Json(f): Json<Faults>) -> Reply {
    sim.set_faults(f).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct DropArgs {
    reset: bool,
}

async fn drop_links(State(sim): State<PbxSim>, body: Bytes) -> Reply {
    let reset = optional_json::<DropArgs>(&body)?.reset;
    sim.drop_links(reset).await?;
    Ok(Json(json!({})))
}

async fn end_monitor(State(sim): State<PbxSim>, Path(xref): Path<String>) -> Reply {
    if sim.end_monitor(&xref).await? {
        Ok(Json(json!({})))
    } else {
        Err(Failure(
            StatusCode::NOT_FOUND,
            format!("no monitor {xref:?} (GET /links lists them)"),
        ))
    }
}

async fn terminate(State(sim): State<PbxSim>) -> Reply {
    sim.terminate_sessions().await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusArgs {
    status: String,
}

async fn system_status(State(sim): State<PbxSim>, Json(s): Json<StatusArgs>) -> Reply {
    sim.set_system_status(SystemStatusValue::parse(&s.status))
        .await?;
    Ok(Json(json!({})))
}

async fn malformed(State(sim): State<PbxSim>) -> Reply {
    sim.send_malformed().await?;
    Ok(Json(json!({})))
}
