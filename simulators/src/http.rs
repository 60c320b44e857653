//! What the simulators' HTTP JSON control endpoints share: the error body, optional JSON
//! bodies, and serving a router.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{Value, json};

/// A failure as JSON `{"error": "..."}` with its status.
pub struct Failure(pub StatusCode, pub String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure(StatusCode::CONFLICT, format!("{e:#}"))
    }
}

/// A handler's answer.
pub type Reply = Result<Json<Value>, Failure>;

/// A JSON body that may be left out (curl without `-d`).
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        Failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("request body: {e}"),
        )
    })
}

/// Serves `router` on `addr` until the task is dropped; returns the bound address.
pub async fn serve(router: Router, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("control endpoint cannot listen on {addr}: {e}"))?;
    let local = l.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(l, router).await {
            tracing::error!(error = %e, "control endpoint stopped");
        }
    });
    Ok(local)
}
