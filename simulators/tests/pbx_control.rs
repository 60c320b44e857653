//! The pbx-sim configuration file and HTTP JSON control endpoint, end to end.

mod support;

use std::net::SocketAddr;

use rcc_protocol::csta::{CallEventKind, Message, Request};
use rcc_simulators::pbx::config;
use support::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

const CONFIG: &str = r#"
profile = "generic"
[listen]
tcp = "127.0.0.1:0"
control = "127.0.0.1:0"
[[device]]
number = "100"
e164 = "+14255550100"
[[external]]
number = "+14255550999"
reach = "busy"
"#;

#[tokio::test]
async fn control_endpoint_drives_the_switch() {
    let loaded = config::parse(CONFIG).expect("config");
    let launched = loaded.launch().await.expect("launch");
    let ctl = launched.control.expect("control endpoint");
    let mut c = Client::connect(launched.sim.tcp_addr().expect("tcp")).await;
    let xref = c.monitor("+14255550100").await;

    let (code, body) = http(
        ctl,
        "POST",
        "/incoming",
        r#"{"from":"+14255550200","to":"100"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let call = body["call_id"].as_str().expect("call_id").to_owned();
    let e = c.events_for(&xref, 1).await.remove(0);
    assert_eq!(e.kind, CallEventKind::Delivered);

    let (code, body) = http(ctl, "POST", "/phones/100/answer", "").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["call_id"], call.as_str());
    assert_eq!(
        c.events_for(&xref, 1).await[0].kind,
        CallEventKind::Established
    );

    let (code, calls) = http(ctl, "GET", "/calls", "").await;
    assert_eq!(code, 200);
    assert_eq!(calls[0]["parties"][1]["state"], "connected");

    // With call waiting, a second caller rings instead of getting busy.
    let (code, body) = http(ctl, "POST", "/phones/100/call-waiting", r#"{"on":true}"#).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(
        ctl,
        "POST",
        "/incoming",
        r#"{"from":"+14255550201","to":"100"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let waiting = c.events_for(&xref, 1).await.remove(0);
    assert_eq!(
        (
            waiting.kind,
            waiting.local_state.map(|s| s.as_str().to_owned())
        ),
        (CallEventKind::Delivered, Some("alerting".to_owned()))
    );
    let (_, calls) = http(ctl, "GET", "/calls", "").await;
    assert_eq!(calls.as_array().map(Vec::len), Some(2), "{calls}");

    let (code, body) = http(ctl, "POST", "/phones/100/juggle", "").await;
    assert_eq!(code, 404);
    assert!(
        body["error"]
            .as_str()
            .expect("error text")
            .contains("juggle")
    );

    let (code, body) = http(ctl, "POST", "/phones/555/answer", "").await;
    assert_eq!(code, 409, "{body}");

    let (code, _) = http(ctl, "PUT", "/faults", r#"{"drop_responses":true}"#).await;
    assert_eq!(code, 200);
    let (_, faults) = http(ctl, "GET", "/faults", "").await;
    assert_eq!(faults["drop_responses"], true);
    let (code, _) = http(ctl, "PUT", "/faults", r#"{"drop_respones":true}"#).await;
    assert_eq!(code, 422, "a typo in a fault name is refused");
    http(ctl, "PUT", "/faults", "{}").await;

    let (_, log) = http(ctl, "GET", "/log?since=0", "").await;
    assert!(
        log.as_array()
            .expect("log")
            .iter()
            .any(|e| e["root"] == "DeliveredEvent")
    );

    // The scripted busy external.
    let r = c
        .request(Request::MakeCall {
            calling: "100".into(),
            called: "+14255550999".into(),
            auto_originate: None,
        })
        .await;
    assert!(
        matches!(r, Message::Error(_)),
        "100 is still in a call: {r:?}"
    );
    let (code, _) = http(ctl, "POST", "/links/drop", r#"{"reset":true}"#).await;
    assert_eq!(code, 200);
    assert!(c.closed_within(support::WAIT).await);
}
