//! `/metrics` and `/health` over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use rcc_gateway_core::Metrics;

/// Serves `/metrics` and `/health` on `addr`.
pub async fn serve(metrics: Arc<Metrics>, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("metrics endpoint cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/health", get(health))
        .with_state(metrics);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok(local)
}

async fn metrics_text(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn health(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    let up = m.pbx_up.get() == 1;
    let draining = m.draining.get() == 1;
    let status = match (up, draining) {
        (_, true) => "draining",
        (true, false) => "ok",
        (false, false) => "degraded",
    };
    let body = format!(
        "{{\"status\":\"{status}\",\"pbx_link\":\"{}\",\"sessions\":{},\"monitors\":{}}}",
        if up { "up" } else { "down" },
        m.sessions.get(),
        m.monitors.get()
    );
    // A load balancer sends new work only where this says 200.
    let code = if up && !draining {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, [(header::CONTENT_TYPE, "application/json")], body)
}
