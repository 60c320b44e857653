//! The pool's registrar for real Lync clients (pidgin-sipe), sans-IO: what a client that signs
//! in to the simulated pool gets besides its RCC dialog. REGISTER is answered 200 without a
//! challenge (the simulator is not an authentication test), with what puts the client in Lync
//! 2007+ mode; a SUBSCRIBE to `vnd-microsoft-roaming-self` is answered 200 and followed by the
//! NOTIFY whose `userProperties` category carries the user's RCC line (LineURI and
//! LineServerURI), which is what makes the client open its CSTA session; everything else the
//! registrar does not serve gets a SIP answer, never silence. The RCC dialog itself is the
//! pool's business (static routes, trusted applications), as for simulated endpoints.

use std::collections::{HashMap, HashSet};

use rcc_protocol::csta;
use rcc_protocol::sip::{Message, Method, NameAddr, Uri};

/// A user a real client may sign in as: the same `[[user]]` as for simulated endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUser {
    /// `sip:katie@contoso.com`
    pub uri: String,
    /// LineURI (`tel:+14255550100;ext=100`).
    pub line: String,
    /// LineServerURI (`sip:rccgateway@rcc.contoso.com`).
    pub line_server: String,
}

/// How long a registration or subscription lasts, seconds.
const EXPIRES: u32 = 3600;
/// The event package the RCC line comes in.
const ROAMING_SELF: &str = "vnd-microsoft-roaming-self";
/// Methods a client may send the registrar (the RCC dialog's go to the gateway).
const ALLOW: &str = "REGISTER, SUBSCRIBE, SERVICE, NOTIFY, OPTIONS, INVITE, ACK, INFO, BYE, CANCEL";

/// What the registrar counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegistrarStats {
    /// REGISTERs answered 200 (refreshes included, un-REGISTERs not).
    pub registered: u64,
    /// REGISTERs for users the pool does not have (404).
    pub unknown_users: u64,
    /// NOTIFYs sent with the RCC line.
    pub line_notifies: u64,
    /// Requests answered with an error (405, 481, 501…).
    pub refused: u64,
}

/// The registrar: users, and which of them are signed in.
#[derive(Debug)]
pub struct Registrar {
    users: HashMap<String, ClientUser>,
    /// Addresses of record signed in with a usable Contact.
    bindings: HashSet<String>,
    /// `host:port` of the pool, for its Via and Contact.
    pool: String,
    /// The last NOTIFY CSeq of each subscription (by Call-ID).
    notify_cseq: HashMap<String, u32>,
    counter: u64,
    stats: RegistrarStats,
}

impl Registrar {
    /// A registrar for these users, answering as the pool at `pool` (`fqdn:port`).
    pub fn new(users: Vec<ClientUser>, pool: &str) -> Registrar {
        Registrar {
            users: users.into_iter().map(|u| (aor_key(&u.uri), u)).collect(),
            bindings: HashSet::new(),
            pool: pool.to_owned(),
            notify_cseq: HashMap::new(),
            counter: 0,
            stats: RegistrarStats::default(),
        }
    }

    pub fn stats(&self) -> &RegistrarStats {
        &self.stats
    }

    /// Whether `aor` is signed in.
    pub fn is_registered(&self, aor: &str) -> bool {
        self.bindings.contains(&aor_key(aor))
    }

    /// A message from a client that is not part of an RCC dialog: the messages to send back on
    /// the client's connection (answers, and the NOTIFY a subscription brings).
    pub fn handle(&mut self, m: &Message) -> Vec<Message> {
        let Some(method) = m.method().cloned() else {
            // The client's answers to our NOTIFYs: nothing to do.
            return Vec::new();
        };
        match method {
            Method::Ack => Vec::new(),
            Method::Register => vec![self.register(m)],
            Method::Subscribe => self.subscribe(m),
            Method::Options => {
                let mut r = self.answer(m, 200, "OK");
                r.push_header("Allow", ALLOW);
                vec![r]
            }
            // The publication of the client's own presence, and other roaming services.
            Method::Extension(ref name) if name.eq_ignore_ascii_case("SERVICE") => {
                let mut r = self.answer(m, 200, "OK");
                r.push_header("Content-Type", "application/xml");
                vec![r]
            }
            // Best-effort NOTIFYs are never answered.
            Method::Extension(ref name) if name.eq_ignore_ascii_case("BENOTIFY") => Vec::new(),
            Method::Notify => vec![self.answer(m, 200, "OK")],
            // Requests of a dialog the pool does not know (an RCC dialog already ended; only
            // an INVITE with a To tag gets here, initial ones are routed).
            Method::Bye
            | Method::Info
            | Method::Update
            | Method::Prack
            | Method::Cancel
            | Method::Invite => {
                self.stats.refused += 1;
                vec![self.answer(m, 481, "Call/Transaction Does Not Exist")]
            }
            Method::Message | Method::Publish | Method::Refer => {
                self.stats.refused += 1;
                let mut r = self.answer(m, 405, "Method Not Allowed");
                r.push_header("Allow", ALLOW);
                vec![r]
            }
            Method::Extension(_) => {
                self.stats.refused += 1;
                let mut r = self.answer(m, 501, "Not Implemented");
                r.push_header("Allow", ALLOW);
                vec![r]
            }
        }
    }

    fn register(&mut self, m: &Message) -> Message {
        let aor = m
            .to_header()
            .ok()
            .map(|t| aor_of(&t.uri))
            .unwrap_or_default();
        if !self.users.contains_key(&aor) {
            self.stats.unknown_users += 1;
            let mut r = self.answer(m, 404, "Not Found");
            r.push_header(
                "ms-diagnostics",
                "4005;reason=\"User does not exist\";source=\"lync-sim\"",
            );
            return r;
        }
        let expires = m
            .header("Expires")
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(EXPIRES)
            .min(EXPIRES);
        let contact = m.header("Contact").unwrap_or_default().to_owned();
        let mut r = self.answer(m, 200, "OK");
        if expires == 0 {
            self.bindings.remove(&aor);
            r.push_header("Expires", "0");
            return r;
        }
        self.stats.registered += 1;
        if contact_uri(&contact).is_some() {
            self.bindings.insert(aor);
        }
        if !contact.is_empty() {
            r.push_header("Contact", format!("{contact};expires={expires}"));
        }
        r.push_header("Expires", expires.to_string());
        // Each on a line of its own: pidgin-sipe compares a Supported value whole.
        r.push_header("Supported", "msrtc-event-categories");
        r.push_header("Supported", "adhoclist");
        // No spaces: pidgin-sipe splits Allow-Events on commas without trimming.
        r.push_header("Allow-Events", ROAMING_SELF);
        r.push_header(
            "ms-keep-alive",
            "UAS; tcp=no; hop-hop=yes; end=no; timeout=300",
        );
        r
    }

    fn subscribe(&mut self, m: &Message) -> Vec<Message> {
        let event = m.header("Event").unwrap_or_default().trim().to_owned();
        let expires = m
            .header("Expires")
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(EXPIRES)
            .min(EXPIRES);
        let user = m
            .from_header()
            .ok()
            .and_then(|f| self.users.get(&aor_of(&f.uri)).cloned());
        // A refresh keeps the subscription's tag; a new subscription gets one.
        let tag = match m.to_header().ok().and_then(|t| t.tag().map(str::to_owned)) {
            Some(tag) => tag,
            None => self.unique("reg"),
        };
        let mut ok = Message::response_to(m, 200, "OK", &tag);
        ok.push_header("Expires", expires.to_string());
        ok.push_header("Contact", format!("<sip:{};transport=tcp>", self.pool));
        let roaming = event
            .split(';')
            .next()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(ROAMING_SELF));
        let call_id = m.call_id().unwrap_or_default().to_owned();
        let (Some(user), true, true) = (user, roaming, expires > 0) else {
            if expires == 0 {
                self.notify_cseq.remove(&call_id);
            }
            return vec![ok];
        };
        let Some(notify) = self.line_notify(m, &user, &tag, expires) else {
            return vec![ok];
        };
        self.stats.line_notifies += 1;
        vec![ok, notify]
    }

    /// The NOTIFY of the subscription `sub` (answered with To tag `tag`) carrying `user`'s line.
    fn line_notify(
        &mut self,
        sub: &Message,
        user: &ClientUser,
        tag: &str,
        expires: u32,
    ) -> Option<Message> {
        let target = contact_uri(sub.header("Contact")?)?;
        let branch = self.unique("z9hG4bKreg");
        let mut n = Message::request(Method::Notify, target);
        n.push_header("Via", format!("SIP/2.0/TCP {};branch={branch}", self.pool));
        n.push_header("Max-Forwards", "70");
        let to = sub.header("To")?;
        let from = if sub.to_header().ok()?.tag().is_some() {
            to.to_owned()
        } else {
            format!("{to};tag={tag}")
        };
        let call_id = sub.header("Call-ID")?.to_owned();
        let cseq = self.notify_cseq.entry(call_id.clone()).or_insert(0);
        *cseq += 1;
        let cseq = format!("{cseq} NOTIFY");
        n.push_header("From", from);
        n.push_header("To", sub.header("From")?.to_owned());
        n.push_header("Call-ID", call_id);
        n.push_header("CSeq", cseq);
        n.push_header("Contact", format!("<sip:{};transport=tcp>", self.pool));
        n.push_header("Event", ROAMING_SELF);
        n.push_header("Subscription-State", format!("active;expires={expires}"));
        n.push_header("Content-Type", "application/vnd-microsoft-roaming-self+xml");
        n.body = roaming_self_body(user).into_bytes();
        Some(n)
    }

    fn answer(&mut self, m: &Message, code: u16, reason: &str) -> Message {
        let tag = self.unique("reg");
        Message::response_to(m, code, reason, &tag)
    }

    fn unique(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{:x}", self.counter)
    }
}

/// The roaming-self document with the `userProperties` category holding the RCC line, as
/// Lync's Front End publishes it for a user enabled for Remote Call Control.
fn roaming_self_body(user: &ClientUser) -> String {
    format!(
        "<roamingData xmlns=\"http://schemas.microsoft.com/2006/09/sip/roaming-self\">\
         <categories><category name=\"userProperties\" instance=\"0\" container=\"1\" version=\"1\" \
         publishTime=\"2026-01-01T00:00:00.000Z\">\
         <userProperties xmlns=\"http://schemas.microsoft.com/2006/09/sip/categories\">\
         <lines><line lineType=\"Rcc\" lineServer=\"{}\">{}</line></lines>\
         </userProperties></category></categories></roamingData>",
        csta::escape(&user.line_server, true),
        csta::escape(&user.line, false)
    )
}

/// The URI of a Contact value (`<sip:…>;params` or a bare URI).
fn contact_uri(contact: &str) -> Option<String> {
    NameAddr::parse(contact).ok().map(|c| c.uri_raw)
}

/// `sip:user@host`, lower-cased, of a URI.
fn aor_of(uri: &Uri) -> String {
    match uri {
        Uri::Sip(u) => {
            format!("sip:{}@{}", u.user.as_deref().unwrap_or_default(), u.host).to_ascii_lowercase()
        }
        _ => String::new(),
    }
}

fn aor_key(uri: &str) -> String {
    match Uri::parse(uri) {
        Ok(u) => aor_of(&u),
        Err(_) => uri.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn katie() -> ClientUser {
        ClientUser {
            uri: "sip:katie@contoso.com".into(),
            line: "tel:+14255550100;ext=100".into(),
            line_server: "sip:rccgw@rcc.contoso.com".into(),
        }
    }

    fn request(method: &str, to: &str, extra: &str) -> Message {
        let text = format!(
            "{method} sip:contoso.com SIP/2.0\r\nVia: SIP/2.0/tcp 127.0.0.1:5000;branch=z9hG4bK1\r\n\
             From: <sip:katie@contoso.com>;tag=f1;epid=e1\r\nTo: {to}\r\nCall-ID: c1\r\n\
             CSeq: 1 {method}\r\nContact: <sip:127.0.0.1:5000;transport=tcp>\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).expect("test request parses")
    }

    #[test]
    fn register_puts_the_client_in_lync_2007_mode() {
        let mut r = Registrar::new(vec![katie()], "fe.lab:5060");
        let out = r.handle(&request("REGISTER", "<sip:katie@contoso.com>", ""));
        let ok = &out[0];
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.header("Expires"), Some("3600"));
        assert!(
            ok.headers_named("Supported")
                .any(|s| s == "msrtc-event-categories")
        );
        assert_eq!(ok.header("Allow-Events"), Some(ROAMING_SELF));
        assert!(r.is_registered("sip:Katie@contoso.com"));
        let gone = r.handle(&request(
            "REGISTER",
            "<sip:katie@contoso.com>",
            "Expires: 0\r\n",
        ));
        assert_eq!(gone[0].header("Expires"), Some("0"));
        assert!(!r.is_registered("sip:katie@contoso.com"));
        let unknown = r.handle(&request("REGISTER", "<sip:mallory@contoso.com>", ""));
        assert_eq!(unknown[0].status(), Some(404));
    }

    #[test]
    fn the_roaming_self_subscription_brings_the_rcc_line() {
        let mut r = Registrar::new(vec![katie()], "fe.lab:5060");
        let out = r.handle(&request(
            "SUBSCRIBE",
            "<sip:katie@contoso.com>",
            "Event: vnd-microsoft-roaming-self\r\n",
        ));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].status(), Some(200));
        let n = &out[1];
        assert_eq!(n.method(), Some(&Method::Notify));
        assert_eq!(n.request_uri(), Some("sip:127.0.0.1:5000;transport=tcp"));
        let to_tag = out[0].to_header().expect("To").tag().map(str::to_owned);
        assert_eq!(n.from_header().expect("From").tag(), to_tag.as_deref());
        let body = String::from_utf8_lossy(&n.body);
        assert!(
            body.contains(
                "<line lineType=\"Rcc\" lineServer=\"sip:rccgw@rcc.contoso.com\">tel:+14255550100;ext=100</line>"
            ),
            "{body}"
        );
        // A refresh in the subscription: the same tag once, the next CSeq.
        let refresh = r.handle(&request(
            "SUBSCRIBE",
            &format!(
                "<sip:katie@contoso.com>;tag={}",
                to_tag.as_deref().unwrap_or_default()
            ),
            "Event: vnd-microsoft-roaming-self\r\n",
        ));
        let again = &refresh[1];
        assert_eq!(
            again.header("From").map(|f| f.matches(";tag=").count()),
            Some(1)
        );
        assert_eq!(again.from_header().expect("From").tag(), to_tag.as_deref());
        assert_eq!(again.cseq().expect("CSeq").seq, 2);
        let other = r.handle(&request(
            "SUBSCRIBE",
            "<sip:katie@contoso.com>",
            "Event: presence\r\n",
        ));
        assert_eq!(other.len(), 1, "no NOTIFY for other packages");
    }

    #[test]
    fn what_it_does_not_serve_gets_an_answer() {
        let mut r = Registrar::new(vec![katie()], "fe.lab:5060");
        for (method, code) in [
            ("MESSAGE", 405),
            ("BYE", 481),
            ("FOO", 501),
            ("OPTIONS", 200),
        ] {
            let out = r.handle(&request(method, "<sip:katie@contoso.com>", ""));
            assert_eq!(out[0].status(), Some(code), "{method}");
        }
        assert_eq!(r.stats().refused, 3);
    }
}
