//! Building responses (RFC 3261 §8.2.6) and requests inside a dialog (§12.2.1).

use std::borrow::Cow;

use super::error::SipError;
use super::message::{Message, Method};

impl Message {
    /// A response to `request`: every Via (in order, byte-exact), From, To, Call-ID and CSeq
    /// copied. A To tag is added when the request's To has none and `code` is above 100.
    pub fn response_to(request: &Message, code: u16, reason: &str, to_tag: &str) -> Message {
        let mut resp = Message::response(code, reason);
        for h in &request.headers {
            let copy = ["Via", "From", "To", "Call-ID", "CSeq"]
                .iter()
                .any(|n| h.name.is(n));
            if !copy {
                continue;
            }
            let mut h = h.clone();
            if h.name.is("To") && code > 100 && !has_tag(&h.value) {
                h.value.push_str(";tag=");
                h.value.push_str(to_tag);
            }
            resp.headers.push(h);
        }
        resp
    }

    /// Sets the body and its Content-Type (and Content-Disposition when given).
    pub fn with_body(
        mut self,
        content_type: &str,
        disposition: Option<&str>,
        body: Vec<u8>,
    ) -> Message {
        self.set_header("Content-Type", content_type);
        match disposition {
            Some(d) => self.set_header("Content-Disposition", d),
            None => self.remove_header("Content-Disposition"),
        }
        self.body = body;
        self
    }
}

/// Whether a From/To value carries a `tag` parameter, read without building the name-addr.
fn has_tag(name_addr: &str) -> bool {
    super::headers::header_param(name_addr, "tag").is_some()
}

/// The state of a dialog needed to build requests within it, on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our From value for requests we send, tag included.
    pub local: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's address as they sent it (tag and `epid` included), used as To verbatim.
    pub remote: String,
    /// The peer's tag.
    pub remote_tag: Option<String>,
    /// Request-URI target: the peer's Contact URI.
    pub remote_target: String,
    /// Route set: values for Route headers, in order, byte-exact.
    pub route_set: Vec<String>,
    /// Our Contact value.
    pub local_contact: String,
    /// Last CSeq number we used.
    pub local_cseq: u32,
    /// Whether the first route is a loose router (`;lr`), worked out once: every request in
    /// the dialog needs it.
    first_route_loose: bool,
}

impl Dialog {
    /// The UAS side of a dialog created by `invite` (RFC 3261 §12.1.1): route set = the
    /// Record-Route values in order, remote target = the Contact URI, our tag added to To.
    pub fn as_uas(
        invite: &Message,
        local_tag: &str,
        local_contact: &str,
    ) -> Result<Dialog, SipError> {
        let from = invite.from_header()?;
        let to = invite.to_header()?;
        let remote_target = invite
            .contacts()?
            .into_iter()
            .next()
            .map(|c| c.uri_raw)
            .ok_or(SipError::Missing("Contact"))?;
        let to_value = invite.header("To").unwrap_or_default();
        let route_set = record_route_values(invite)?;
        let local = match to.tag() {
            Some(_) => to_value.to_owned(),
            None => format!("{to_value};tag={local_tag}"),
        };
        Ok(Dialog {
            call_id: invite.call_id()?.to_owned(),
            local,
            local_tag: to.tag().unwrap_or(local_tag).to_owned(),
            remote: invite.header("From").unwrap_or_default().to_owned(),
            remote_tag: from.tag().map(str::to_owned),
            remote_target,
            local_contact: local_contact.to_owned(),
            local_cseq: 0,
            first_route_loose: first_route_loose(&route_set),
            route_set,
        })
    }

    /// The UAC side of a dialog established by a 2xx `response` to our `request`: route set =
    /// the Record-Route values reversed, remote target = the response's Contact URI.
    pub fn as_uac(
        request: &Message,
        response: &Message,
        local_contact: &str,
    ) -> Result<Dialog, SipError> {
        let from = request.from_header()?;
        let to = response.to_header()?;
        let remote_target = response
            .contacts()?
            .into_iter()
            .next()
            .map(|c| c.uri_raw)
            .ok_or(SipError::Missing("Contact"))?;
        let mut route_set = record_route_values(response)?;
        route_set.reverse();
        Ok(Dialog {
            call_id: request.call_id()?.to_owned(),
            local: request.header("From").unwrap_or_default().to_owned(),
            local_tag: from
                .tag()
                .ok_or_else(|| SipError::header("From", "no tag"))?
                .to_owned(),
            remote: response.header("To").unwrap_or_default().to_owned(),
            remote_tag: to.tag().map(str::to_owned),
            remote_target,
            first_route_loose: first_route_loose(&route_set),
            route_set,
            local_contact: local_contact.to_owned(),
            local_cseq: request.cseq()?.seq,
        })
    }

    /// A new request in the dialog with the next CSeq. `via` is the full Via value (with a
    /// fresh branch). Loose routing when the first route has `lr`, strict routing otherwise.
    pub fn request(&mut self, method: Method, via: &str) -> Message {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        let cseq = self.local_cseq;
        self.request_with_cseq(method, via, cseq)
    }

    /// The next request of the dialog with a body, written straight to wire bytes: the same
    /// bytes as `request(..).with_body(..).to_bytes()`, without building the message first
    /// (event INFOs are the gateway's most frequent output).
    pub fn request_bytes(
        &mut self,
        method: &Method,
        via: &str,
        content_type: &str,
        disposition: Option<&str>,
        body: &[u8],
    ) -> Vec<u8> {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        // Sized once: the fixed names, separators and numbers fit in 200 bytes.
        let size = 200
            + self.remote_target.len()
            + via.len()
            + self.route_set.iter().map(|r| r.len() + 9).sum::<usize>()
            + self.local.len()
            + self.remote.len()
            + self.call_id.len()
            + self.local_contact.len()
            + content_type.len()
            + disposition.map_or(0, |d| d.len() + 23)
            + body.len();
        let mut out = Vec::with_capacity(size);
        let line = |out: &mut Vec<u8>, name: &str, value: &[&str]| {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            for v in value {
                out.extend_from_slice(v.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        };
        let (uri, routes) = self.next_hop();
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(uri.as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\n");
        line(&mut out, "Via", &[via]);
        for r in routes {
            line(&mut out, "Route", &[&r]);
        }
        line(&mut out, "Max-Forwards", &["70"]);
        line(&mut out, "From", &[&self.local]);
        line(&mut out, "To", &[&self.remote]);
        line(&mut out, "Call-ID", &[&self.call_id]);
        let cseq = self.local_cseq.to_string();
        line(&mut out, "CSeq", &[&cseq, " ", method.as_str()]);
        line(&mut out, "Contact", &[&self.local_contact]);
        line(&mut out, "Content-Type", &[content_type]);
        if let Some(d) = disposition {
            line(&mut out, "Content-Disposition", &[d]);
        }
        line(&mut out, "Content-Length", &[&body.len().to_string()]);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }

    /// The Request-URI and Route values of a request in the dialog (RFC 3261 §12.2.1.1): with a
    /// loose first route, the remote target and the route set; with a strict one, that route's
    /// URI, the rest of the route set and the remote target last.
    fn next_hop(&self) -> (Cow<'_, str>, impl Iterator<Item = Cow<'_, str>> + '_) {
        let strict = !self.first_route_loose && !self.route_set.is_empty();
        let uri = match self.route_set.first() {
            Some(first) if strict => Cow::Owned(route_uri(first)),
            _ => Cow::Borrowed(self.remote_target.as_str()),
        };
        let last = strict.then(|| Cow::Owned(format!("<{}>", self.remote_target)));
        let routes = self
            .route_set
            .iter()
            .skip(usize::from(strict))
            .map(|r| Cow::Borrowed(r.as_str()))
            .chain(last);
        (uri, routes)
    }

    /// A request with an explicit CSeq (ACK and CANCEL reuse the INVITE's).
    pub fn request_with_cseq(&self, method: Method, via: &str, cseq: u32) -> Message {
        let (uri, routes) = self.next_hop();
        let mut msg = Message::request(method.clone(), uri.into_owned());
        msg.push_header("Via", via);
        for r in routes {
            msg.push_header("Route", r);
        }
        msg.push_header("Max-Forwards", "70");
        msg.push_header("From", self.local.clone());
        msg.push_header("To", self.remote.clone());
        msg.push_header("Call-ID", self.call_id.clone());
        msg.push_header("CSeq", format!("{cseq} {method}"));
        msg.push_header("Contact", self.local_contact.clone());
        msg
    }
}

fn record_route_values(msg: &Message) -> Result<Vec<String>, SipError> {
    let mut out = Vec::new();
    for line in msg.headers_named("Record-Route") {
        for v in
            super::headers::split_values(line).map_err(|e| SipError::header("Record-Route", e))?
        {
            out.push(v.to_owned());
        }
    }
    Ok(out)
}

fn route_uri(route: &str) -> String {
    super::headers::NameAddr::parse(route).map_or_else(|_| route.to_owned(), |n| n.uri_raw)
}

fn first_route_loose(route_set: &[String]) -> bool {
    route_set.first().is_none_or(|r| route_is_loose(r))
}

fn route_is_loose(route: &str) -> bool {
    super::headers::NameAddr::parse(route)
        .ok()
        .and_then(|n| n.uri.as_sip().map(|u| u.params.has("lr")))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_parameter_is_found_only_among_the_header_parameters() {
        let cases = [
            ("<sip:a@b;tag=x>", false),
            ("<sip:a@b>;tag=1", true),
            ("sip:a@b;tag=1", true),
            ("sip:a@b", false),
            ("\"x;tag=<y>\" <sip:a@b>", false),
            ("\"a\\\"b;tag=1\" <sip:x@y>;TAG=2", true),
            ("Bob <sip:a@b>;epid=1 ; tag = 2", true),
            ("<sip:a@b>;tagx=1;xtag=2", false),
            ("<sip:a@b>;x=\"a;tag=b\"", false),
        ];
        for (value, tagged) in cases {
            assert_eq!(has_tag(value), tagged, "{value}");
            let parsed = super::super::headers::NameAddr::parse(value).map(|n| n.tag().is_some());
            if let Ok(p) = parsed {
                assert_eq!(p, tagged, "the full parser disagrees on {value}");
            }
        }
    }

    const INVITE: &str = "INVITE sip:rccgateway@rcc.contoso.com SIP/2.0\r\n\
Via: SIP/2.0/TLS 10.0.0.11:5061;branch=z9hG4bKc2a1f7e3\r\n\
Via: SIP/2.0/TLS 192.168.10.50:51063;ms-received-port=51063\r\n\
Record-Route: <sip:fe01.contoso.com:5061;transport=tls;opaque=state:T;lr>\r\n\
From: <sip:alice@contoso.com>;tag=9708e2df90;epid=bd23d94254\r\n\
To: <sip:rccgateway@rcc.contoso.com>\r\n\
Call-ID: a3f0077597a645ed91dfed3bf7e88d93\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@contoso.com;opaque=user:epid:2X3Fk9m1vVe5Yk_6Tq0aGAAA;gruu>\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn response_copies_the_required_headers_and_adds_a_tag() {
        let req = Message::parse(INVITE.as_bytes()).expect("parses");
        let resp = Message::response_to(&req, 200, "OK", "gw7c1e0a52");
        let names: Vec<&str> = resp.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["Via", "Via", "From", "To", "Call-ID", "CSeq"]);
        assert_eq!(resp.to_header().expect("To").tag(), Some("gw7c1e0a52"));
        assert_eq!(resp.headers[0].value, req.headers[0].value);
        let trying = Message::response_to(&req, 100, "Trying", "x");
        assert_eq!(trying.to_header().expect("To").tag(), None);
    }

    #[test]
    fn uas_dialog_requests_follow_the_record_route() {
        let req = Message::parse(INVITE.as_bytes()).expect("parses");
        let mut d = Dialog::as_uas(
            &req,
            "gw7c1e0a52",
            "<sip:rccgateway@gw.contoso.com:5065;transport=tls>",
        )
        .expect("dialog");
        let info = d.request(
            Method::Info,
            "SIP/2.0/TLS gw.contoso.com:5065;branch=z9hG4bK-e1",
        );
        assert_eq!(
            info.request_uri(),
            Some("sip:alice@contoso.com;opaque=user:epid:2X3Fk9m1vVe5Yk_6Tq0aGAAA;gruu")
        );
        assert_eq!(
            info.header("Route"),
            Some("<sip:fe01.contoso.com:5061;transport=tls;opaque=state:T;lr>")
        );
        assert_eq!(
            info.header("To"),
            Some("<sip:alice@contoso.com>;tag=9708e2df90;epid=bd23d94254")
        );
        assert_eq!(info.from_header().expect("From").tag(), Some("gw7c1e0a52"));
        assert_eq!(info.cseq().expect("CSeq").seq, 1);
        info.validate().expect("valid");
    }

    #[test]
    fn request_bytes_equal_the_built_message_for_loose_and_strict_routes() {
        for invite in [INVITE.to_owned(), INVITE.replace(";lr>", ">")] {
            let req = Message::parse(invite.as_bytes()).expect("parses");
            let mut built = Dialog::as_uas(&req, "t1", "<sip:gw@gw>").expect("dialog");
            let mut direct = built.clone();
            for n in 0..2 {
                let via = format!("SIP/2.0/TLS gw:5065;branch=z9hG4bK{n}");
                let body = b"<?xml version=\"1.0\"?><DeliveredEvent/>".to_vec();
                let expected = built
                    .request(Method::Info, &via)
                    .with_body("application/csta+xml", Some("signal"), body.clone())
                    .to_bytes();
                let got = direct.request_bytes(
                    &Method::Info,
                    &via,
                    "application/csta+xml",
                    Some("signal"),
                    &body,
                );
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&expected)
                );
            }
            assert_eq!(direct.local_cseq, 2, "each request takes the next CSeq");
        }
    }

    #[test]
    fn strict_route_moves_the_target_to_the_last_route() {
        let req = Message::parse(INVITE.replace(";lr>", ">").as_bytes()).expect("parses");
        let mut d = Dialog::as_uas(&req, "t", "<sip:gw@gw>").expect("dialog");
        let bye = d.request(Method::Bye, "SIP/2.0/TCP gw;branch=z9hG4bK2");
        assert_eq!(
            bye.request_uri(),
            Some("sip:fe01.contoso.com:5061;transport=tls;opaque=state:T")
        );
        assert_eq!(
            bye.headers_named("Route").last(),
            Some("<sip:alice@contoso.com;opaque=user:epid:2X3Fk9m1vVe5Yk_6Tq0aGAAA;gruu>")
        );
    }
}
