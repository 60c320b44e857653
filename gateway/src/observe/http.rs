//! `/metrics` and `/health` over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use rcc_gateway_core::Exposition;
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

/// OpenMetrics when the scraper asks for it (Prometheus does), the classic text format
/// otherwise (curl, promtool).
async fn metrics_text(
    State(m): State<Arc<Metrics>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Exposition::from_accept(accept);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        m.encode_as(format),
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
