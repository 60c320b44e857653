//! The reference RCC exchange (sign-in, then click-to-dial) carried through the wire codecs:
//! every SIP message is serialised and re-framed from a byte stream, every CSTA body decoded;
//! every PBX-side message is Annex J framed and decoded.

use anyhow::{Context, Result, bail};
use rcc_protocol::csta::{
    self, CallEvent, CallEventKind, ConnectionId, DeviceRef, ED3, Event, LocalConnectionState,
};
use rcc_protocol::csta::{
    AutoOriginate, Cause, Message as Csta, MonitorObject, Request, Response, SystemStatusValue,
};
use rcc_protocol::framing::{AnnexJDecoder, EVENT_INVOKE_ID, encode_annex_j};
use rcc_protocol::sip::{Dialog, Limits, Message, Method, StreamFramer, StreamItem};

/// One line of the ladder: who sent what to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Sender.
    pub from: &'static str,
    /// Receiver.
    pub to: &'static str,
    /// Summary: SIP start line and CSTA root, or Annex J invoke ID and CSTA root.
    pub summary: String,
}

const LINE: &str = "tel:+14255550100;ext=100";
const INVITE: &str = "INVITE sip:rccgateway@rcc.contoso.com SIP/2.0\r\n\
Via: SIP/2.0/TLS 10.0.0.11:5061;branch=z9hG4bKc2a1f7e3\r\n\
Record-Route: <sip:fe01.contoso.com:5061;transport=tls;opaque=state:T;lr>\r\n\
Max-Forwards: 69\r\n\
From: <sip:alice@contoso.com>;tag=9708e2df90;epid=bd23d94254\r\n\
To: <sip:rccgateway@rcc.contoso.com>\r\n\
Call-ID: a3f0077597a645ed91dfed3bf7e88d93\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@contoso.com;opaque=user:epid:2X3Fk9m1vVe5Yk_6Tq0aGAAA;gruu>\r\n\
Supported: timer\r\n";

fn csta_body(msg: &Csta) -> Vec<u8> {
    csta::encode(msg, ED3).into_bytes()
}

/// Serialises `msg`, frames it back from a byte stream, decodes its CSTA body, and records it.
fn sip_hop(
    ladder: &mut Vec<Step>,
    from: &'static str,
    to: &'static str,
    msg: &Message,
) -> Result<Message> {
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(&msg.to_bytes());
    let Some(StreamItem::Message(got)) =
        framer.next_item().context("framing our own SIP output")?
    else {
        bail!("our own SIP output did not frame as a message");
    };
    got.validate().context("validating our own SIP output")?;
    let start = match (got.method(), got.status()) {
        (Some(m), _) => m.to_string(),
        (_, Some(code)) => code.to_string(),
        _ => String::new(),
    };
    let body = if got.body.is_empty() {
        String::new()
    } else {
        let d = csta::decode(&got.body).context("decoding a CSTA body")?;
        format!(" {}", d.message.root_name())
    };
    ladder.push(Step {
        from,
        to,
        summary: format!("{start}{body}"),
    });
    Ok(got)
}

/// Annex J frames `msg` with `invoke`, decodes it back, and records it.
fn pbx_hop(
    ladder: &mut Vec<Step>,
    from: &'static str,
    to: &'static str,
    invoke: u16,
    msg: &Csta,
) -> Result<()> {
    let mut dec = AnnexJDecoder::new();
    dec.push(&encode_annex_j(invoke, csta::encode(msg, ED3).as_bytes())?);
    let frame = dec
        .next_frame()?
        .context("our own Annex J frame did not decode")?;
    let d = csta::decode(&frame.xml).context("decoding a CSTA frame")?;
    if d.message != *msg {
        bail!("CSTA {} changed across the wire", msg.root_name());
    }
    ladder.push(Step {
        from,
        to,
        summary: format!("[{invoke:04}] {}", d.message.root_name()),
    });
    Ok(())
}

/// Runs the exchange and returns its ladder.
pub fn run() -> Result<Vec<Step>> {
    let mut ladder = Vec::new();
    let rss = Csta::Request(Request::RequestSystemStatus {
        line: Some(LINE.into()),
    });
    let mut invite = Message::parse(INVITE.as_bytes())?;
    invite = invite.with_body(
        "application/csta+xml",
        Some("signal;handling=required"),
        csta_body(&rss),
    );
    let invite = sip_hop(&mut ladder, "client", "gateway", &invite)?;
    let mut ok = Message::response_to(&invite, 200, "OK", "gw7c1e0a52");
    ok.push_header(
        "Record-Route",
        invite.header("Record-Route").unwrap_or_default(),
    );
    ok.push_header(
        "Contact",
        "<sip:rccgateway@gw.contoso.com:5065;transport=tls>",
    );
    ok.push_header("Session-Expires", "1800;refresher=uac");
    let ok = ok.with_body(
        "application/csta+xml",
        Some("signal;handling=required"),
        csta_body(&Csta::Response(Response::RequestSystemStatus {
            status: SystemStatusValue::Normal,
        })),
    );
    let ok = sip_hop(&mut ladder, "gateway", "client", &ok)?;
    let mut client = Dialog::as_uac(&invite, &ok, "<sip:alice@contoso.com>")?;
    let mut gateway = Dialog::as_uas(
        &invite,
        "gw7c1e0a52",
        "<sip:rccgateway@gw.contoso.com:5065;transport=tls>",
    )?;
    let via = "SIP/2.0/TLS 192.168.10.50:51063;branch=z9hG4bK-c";
    let mut info = |ladder: &mut Vec<Step>,
                    req: Request,
                    pbx: Option<(Request, Response)>,
                    resp: Response|
     -> Result<()> {
        let msg = client.request(Method::Info, via).with_body(
            "application/csta+xml",
            Some("signal;handling=required"),
            csta_body(&Csta::Request(req)),
        );
        let got = sip_hop(ladder, "client", "gateway", &msg)?;
        if let Some((preq, presp)) = pbx {
            pbx_hop(ladder, "gateway", "pbx", 1, &Csta::Request(preq))?;
            pbx_hop(ladder, "pbx", "gateway", 1, &Csta::Response(presp))?;
        }
        let ok = Message::response_to(&got, 200, "OK", "unused").with_body(
            "application/csta+xml",
            None,
            csta_body(&Csta::Response(resp)),
        );
        sip_hop(ladder, "gateway", "client", &ok)?;
        Ok(())
    };
    info(
        &mut ladder,
        Request::GetCstaFeatures {
            line: Some(LINE.into()),
        },
        None,
        Response::GetCstaFeatures {
            services: vec![],
            events: vec![],
        },
    )?;
    info(
        &mut ladder,
        Request::MonitorStart {
            object: MonitorObject::Device(LINE.into()),
            monitor_type: None,
        },
        Some((
            Request::MonitorStart {
                object: MonitorObject::Device("100".into()),
                monitor_type: None,
            },
            Response::MonitorStart {
                cross_ref: "1001".into(),
                existing_calls: None,
            },
        )),
        Response::MonitorStart {
            cross_ref: "99fda87c".into(),
            existing_calls: None,
        },
    )?;
    info(
        &mut ladder,
        Request::MakeCall {
            calling: LINE.into(),
            called: "tel:+3222220220".into(),
            auto_originate: Some(AutoOriginate::DoNotPrompt),
        },
        Some((
            Request::MakeCall {
                calling: "100".into(),
                called: "003222220220".into(),
                auto_originate: Some(AutoOriginate::DoNotPrompt),
            },
            Response::MakeCall {
                calling: ConnectionId::new("C1", "100"),
            },
        )),
        Response::MakeCall {
            calling: ConnectionId::new("C1", LINE),
        },
    )?;
    for (kind, state) in [
        (
            CallEventKind::ServiceInitiated,
            LocalConnectionState::Initiated,
        ),
        (CallEventKind::Originated, LocalConnectionState::Connected),
        (CallEventKind::Delivered, LocalConnectionState::Connected),
        (CallEventKind::Established, LocalConnectionState::Connected),
    ] {
        let mut ev = CallEvent::new(kind, "1001");
        ev.connection = Some(ConnectionId::new("C1", "100"));
        if kind == CallEventKind::Originated {
            ev.calling = Some(DeviceRef::id("100"));
        } else {
            ev.subject = Some(DeviceRef::id("100"));
        }
        ev.local_state = Some(state);
        ev.cause = Some(Cause::new("makeCall"));
        pbx_hop(
            &mut ladder,
            "pbx",
            "gateway",
            EVENT_INVOKE_ID,
            &Csta::Event(Event::Call(ev.clone())),
        )?;
        ev.cross_ref = "99fda87c".into();
        for id in ev.device_ids_mut() {
            if id == "100" {
                *id = LINE.into();
            }
        }
        let msg = gateway
            .request(
                Method::Info,
                "SIP/2.0/TLS gw.contoso.com:5065;branch=z9hG4bK-g",
            )
            .with_body(
                "application/csta+xml",
                Some("signal;handling=required"),
                csta_body(&Csta::Event(Event::Call(ev))),
            );
        let got = sip_hop(&mut ladder, "gateway", "client", &msg)?;
        sip_hop(
            &mut ladder,
            "client",
            "gateway",
            &Message::response_to(&got, 200, "OK", "unused"),
        )?;
    }
    Ok(ladder)
}
