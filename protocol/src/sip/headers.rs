//! Typed views of header values, parsed on demand from the raw model.

use super::error::SipError;
use super::message::{Message, Method, is_token_char};
use super::uri::{Host, Params, Uri, is_lws, parse_host_port, split_outside_quotes};

/// Splits a header value into its comma-separated values (commas in quotes or `<>` kept).
/// Empty values are an error: `a,,b` is malformed.
pub fn split_values(value: &str) -> Result<Vec<&str>, String> {
    split_outside_quotes(value, b',')
        .map(|v| v.trim_matches(is_lws))
        .map(|v| {
            if v.is_empty() {
                Err("empty value in list".to_owned())
            } else {
                Ok(v)
            }
        })
        .collect()
}

/// The value of parameter `name` (case-insensitive) of one header value, read without parsing
/// it: the parameters follow the first `;` outside quotes and `<...>` (after a Via's sent-by, a
/// name-addr's `>`, or an addr-spec, whose own parameters are the header's). `None` when absent
/// or without a value.
pub(crate) fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    split_outside_quotes(value, b';').skip(1).find_map(|param| {
        let (n, v) = param.split_once('=')?;
        n.trim_matches(is_lws)
            .eq_ignore_ascii_case(name)
            .then(|| v.trim_matches(is_lws))
    })
}

fn values<'a>(msg: &'a Message, name: &'static str) -> Result<Vec<&'a str>, SipError> {
    let mut out = Vec::new();
    for line in msg.headers_named(name) {
        out.extend(split_values(line).map_err(|e| SipError::header(name, e))?);
    }
    Ok(out)
}

fn single<'a>(msg: &'a Message, name: &'static str) -> Result<Option<&'a str>, SipError> {
    let mut it = msg.headers_named(name);
    let first = it.next();
    let extra = it.count();
    if extra > 0 {
        return Err(SipError::Duplicate(name, extra + 1));
    }
    Ok(first)
}

fn required<'a>(msg: &'a Message, name: &'static str) -> Result<&'a str, SipError> {
    single(msg, name)?.ok_or(SipError::Missing(name))
}

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// `SIP/2.0`
    pub protocol: String,
    /// Transport token (`UDP`, `TCP`, `TLS`, `SCTP`, or any extension).
    pub transport: String,
    /// Sent-by host.
    pub host: Host,
    /// Sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, `maddr`, `ttl`, vendor ones).
    pub params: Params,
}

impl Via {
    /// Parses one Via value; LWS is allowed around `/`, `:` and `;`.
    pub fn parse(s: &str) -> Result<Via, String> {
        let (proto_part, params) = match s.find(';') {
            Some(i) => (&s[..i], Params::parse(&s[i..])?),
            None => (s, Params::default()),
        };
        let mut pieces = proto_part.splitn(3, '/');
        let (Some(name), Some(version), Some(rest)) = (pieces.next(), pieces.next(), pieces.next())
        else {
            return Err(format!("sent-protocol missing in {s:?}"));
        };
        let (name, version) = (name.trim_matches(is_lws), version.trim_matches(is_lws));
        let rest = rest.trim_start_matches(is_lws);
        let split = rest
            .find(is_lws)
            .ok_or_else(|| format!("sent-by missing in {s:?}"))?;
        let (transport, sent_by) = (&rest[..split], rest[split..].trim_matches(is_lws));
        for (what, tok) in [
            ("protocol name", name),
            ("version", version),
            ("transport", transport),
        ] {
            if tok.is_empty() || !tok.bytes().all(is_token_char) {
                return Err(format!("invalid {what} {tok:?} in Via"));
            }
        }
        let (host, port) = parse_host_port(sent_by)?;
        Ok(Via {
            protocol: format!("{name}/{version}"),
            transport: transport.to_owned(),
            host,
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// `rport`: `None` if absent, `Some(None)` if present without value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }
}

/// `name-addr` or `addr-spec` with header parameters: From, To, Contact, Route, Record-Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted and unescaped.
    pub display_name: Option<String>,
    /// The URI exactly as written (for byte-exact echo).
    pub uri_raw: String,
    /// The parsed URI.
    pub uri: Uri,
    /// Header parameters (`tag`, `epid`, `expires`, `q`, ...).
    pub params: Params,
}

impl NameAddr {
    /// Parses one value.
    pub fn parse(s: &str) -> Result<NameAddr, String> {
        let s = s.trim_matches(is_lws);
        let (display_name, rest) = if let Some(quoted) = s.strip_prefix('"') {
            let (name, after) = unquote(quoted)?;
            let after = after.trim_start_matches(is_lws);
            if !after.starts_with('<') {
                return Err("quoted display name not followed by <URI>".into());
            }
            (Some(name), after)
        } else if let Some(lt) = s.find('<') {
            let name = s[..lt].trim_matches(is_lws);
            let valid = name
                .split(is_lws)
                .all(|w| w.is_empty() || w.bytes().all(is_token_char));
            if !valid {
                return Err(format!("display name {name:?} must be quoted"));
            }
            ((!name.is_empty()).then(|| name.to_owned()), &s[lt..])
        } else {
            (None, s)
        };
        let (uri_raw, params) = if let Some(inner) = rest.strip_prefix('<') {
            let end = inner.find('>').ok_or("missing '>' after URI")?;
            let uri = &inner[..end];
            if uri.starts_with(is_lws) || uri.ends_with(is_lws) {
                return Err(format!("whitespace inside <{uri}>"));
            }
            (uri, &inner[end + 1..])
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            let uri = rest[..end].trim_end_matches(is_lws);
            if uri.contains(['?', ',', ' ', '\t', '<', '>']) {
                return Err(format!("URI {uri:?} must be enclosed in <>"));
            }
            (uri, &rest[end..])
        };
        let after = params.trim_start_matches(is_lws);
        if !after.is_empty() && !after.starts_with(';') {
            return Err(format!("unexpected {after:?} after URI"));
        }
        Ok(NameAddr {
            display_name,
            uri: Uri::parse(uri_raw)?,
            uri_raw: uri_raw.to_owned(),
            params: Params::parse(after)?,
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// Microsoft's `epid` endpoint identifier.
    pub fn epid(&self) -> Option<&str> {
        self.params.value("epid")
    }
}

/// Parses a quoted string body (after the opening quote); returns it unescaped and the rest.
fn unquote(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => out.push(e),
                None => break,
            },
            '"' => return Ok((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

/// CSeq: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (fits 32 bits, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(s: &str) -> Result<CSeq, String> {
        let s = s.trim_matches(is_lws);
        let split = s
            .find(is_lws)
            .ok_or_else(|| format!("CSeq {s:?} lacks a method"))?;
        let (num, method) = (&s[..split], s[split..].trim_matches(is_lws));
        Ok(CSeq {
            seq: parse_u32(num)?,
            method: Method::parse(method).map_err(|e| e.to_string())?,
        })
    }
}

fn parse_u32(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a number"));
    }
    s.parse::<u32>()
        .map_err(|_| format!("{s} does not fit in 32 bits"))
}

/// Media type of a Content-Type header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// Type, lower-cased.
    pub mtype: String,
    /// Subtype, lower-cased.
    pub subtype: String,
    /// Parameters (`charset`, ...).
    pub params: Params,
}

impl ContentType {
    /// Parses `type/subtype *(;param)`.
    pub fn parse(s: &str) -> Result<ContentType, String> {
        let (media, params) = match s.find(';') {
            Some(i) => (&s[..i], Params::parse(&s[i..])?),
            None => (s, Params::default()),
        };
        let (t, st) = media
            .split_once('/')
            .ok_or_else(|| format!("media type {media:?} lacks '/'"))?;
        let (t, st) = (t.trim_matches(is_lws), st.trim_matches(is_lws));
        if t.is_empty() || st.is_empty() || !t.bytes().chain(st.bytes()).all(is_token_char) {
            return Err(format!("invalid media type {media:?}"));
        }
        Ok(ContentType {
            mtype: t.to_ascii_lowercase(),
            subtype: st.to_ascii_lowercase(),
            params,
        })
    }

    /// Whether the media type is `essence` (e.g. `application/csta+xml`), ignoring case.
    pub fn is(&self, essence: &str) -> bool {
        essence.split_once('/').is_some_and(|(t, s)| {
            self.mtype.eq_ignore_ascii_case(t) && self.subtype.eq_ignore_ascii_case(s)
        })
    }
}

/// Content-Disposition (`signal;handling=required` on RCC bodies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentDisposition {
    /// Disposition type, lower-cased.
    pub disposition: String,
    /// Parameters.
    pub params: Params,
}

impl ContentDisposition {
    /// Parses `type *(;param)`.
    pub fn parse(s: &str) -> Result<ContentDisposition, String> {
        let (d, params) = match s.find(';') {
            Some(i) => (&s[..i], Params::parse(&s[i..])?),
            None => (s, Params::default()),
        };
        let d = d.trim_matches(is_lws);
        if d.is_empty() || !d.bytes().all(is_token_char) {
            return Err(format!("invalid disposition type {d:?}"));
        }
        Ok(ContentDisposition {
            disposition: d.to_ascii_lowercase(),
            params,
        })
    }
}

/// Which side refreshes a session (RFC 4028).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The UAC refreshes.
    Uac,
    /// The UAS refreshes.
    Uas,
}

/// Session-Expires (RFC 4028): interval and refresher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExpires {
    /// Interval in seconds.
    pub delta: u32,
    /// `refresher` parameter.
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses `delta-seconds *(;param)`.
    pub fn parse(s: &str) -> Result<SessionExpires, String> {
        let (d, params) = match s.find(';') {
            Some(i) => (&s[..i], Params::parse(&s[i..])?),
            None => (s, Params::default()),
        };
        let refresher = match params.value("refresher") {
            Some(r) if r.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(r) if r.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            Some(r) => return Err(format!("refresher {r:?} is neither uac nor uas")),
            None => None,
        };
        Ok(SessionExpires {
            delta: parse_u32(d.trim_matches(is_lws))?,
            refresher,
        })
    }
}

/// Typed accessors on a message. Each parses the raw header on demand and names the header in
/// its error.
impl Message {
    /// Every Via value, top first.
    pub fn vias(&self) -> Result<Vec<Via>, SipError> {
        values(self, "Via")?
            .into_iter()
            .map(|v| Via::parse(v).map_err(|e| SipError::header("Via", e)))
            .collect()
    }

    /// The `branch` parameter of the top Via, read without parsing the rest of it (a relay
    /// matching responses to the requests it forwarded needs nothing else).
    pub fn top_via_branch(&self) -> Option<&str> {
        let line = self.headers_named("Via").next()?;
        header_param(split_outside_quotes(line, b',').next()?, "branch")
    }

    /// The top Via.
    pub fn top_via(&self) -> Result<Via, SipError> {
        // Only the first value of the first line is read (every response and request needs
        // it; `vias` checks them all).
        let line = self
            .headers_named("Via")
            .next()
            .ok_or(SipError::Missing("Via"))?;
        let first = split_outside_quotes(line, b',')
            .next()
            .map(|v| v.trim_matches(is_lws))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SipError::header("Via", "empty value in list"))?;
        Via::parse(first).map_err(|e| SipError::header("Via", e))
    }

    /// From.
    pub fn from_header(&self) -> Result<NameAddr, SipError> {
        NameAddr::parse(required(self, "From")?).map_err(|e| SipError::header("From", e))
    }

    /// To.
    pub fn to_header(&self) -> Result<NameAddr, SipError> {
        NameAddr::parse(required(self, "To")?).map_err(|e| SipError::header("To", e))
    }

    /// Call-ID.
    pub fn call_id(&self) -> Result<&str, SipError> {
        let v = required(self, "Call-ID")?;
        if v.is_empty() || v.contains(is_lws) {
            return Err(SipError::header("Call-ID", format!("invalid value {v:?}")));
        }
        Ok(v)
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq, SipError> {
        CSeq::parse(required(self, "CSeq")?).map_err(|e| SipError::header("CSeq", e))
    }

    /// Every Contact value (`*` is returned as an error; RCC never uses it).
    pub fn contacts(&self) -> Result<Vec<NameAddr>, SipError> {
        name_addrs(self, "Contact")
    }

    /// Record-Route values in order.
    pub fn record_route(&self) -> Result<Vec<NameAddr>, SipError> {
        name_addrs(self, "Record-Route")
    }

    /// Route values in order.
    pub fn route(&self) -> Result<Vec<NameAddr>, SipError> {
        name_addrs(self, "Route")
    }

    /// Max-Forwards (0..=255), if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, SipError> {
        single(self, "Max-Forwards")?
            .map(|v| {
                parse_u32(v)
                    .and_then(|n| u8::try_from(n).map_err(|_| format!("{n} exceeds 255")))
                    .map_err(|e| SipError::header("Max-Forwards", e))
            })
            .transpose()
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<ContentType>, SipError> {
        single(self, "Content-Type")?
            .map(|v| ContentType::parse(v).map_err(|e| SipError::header("Content-Type", e)))
            .transpose()
    }

    /// Content-Length, if present.
    pub fn content_length(&self) -> Result<Option<usize>, SipError> {
        single(self, "Content-Length")?
            .map(|v| parse_content_length(v).map_err(SipError::ContentLength))
            .transpose()
    }

    /// Content-Disposition, if present.
    pub fn content_disposition(&self) -> Result<Option<ContentDisposition>, SipError> {
        single(self, "Content-Disposition")?
            .map(|v| {
                ContentDisposition::parse(v).map_err(|e| SipError::header("Content-Disposition", e))
            })
            .transpose()
    }

    /// Session-Expires, if present.
    pub fn session_expires(&self) -> Result<Option<SessionExpires>, SipError> {
        single(self, "Session-Expires")?
            .map(|v| SessionExpires::parse(v).map_err(|e| SipError::header("Session-Expires", e)))
            .transpose()
    }

    /// Min-SE in seconds, if present.
    pub fn min_se(&self) -> Result<Option<u32>, SipError> {
        single(self, "Min-SE")?
            .map(|v| {
                let d = v.split(';').next().unwrap_or("").trim_matches(is_lws);
                parse_u32(d).map_err(|e| SipError::header("Min-SE", e))
            })
            .transpose()
    }

    /// Option tags of Supported.
    pub fn supported(&self) -> Result<Vec<&str>, SipError> {
        tokens(self, "Supported")
    }

    /// Option tags of Require.
    pub fn require(&self) -> Result<Vec<&str>, SipError> {
        tokens(self, "Require")
    }

    /// Methods of Allow.
    pub fn allow(&self) -> Result<Vec<&str>, SipError> {
        tokens(self, "Allow")
    }
}

fn name_addrs(msg: &Message, name: &'static str) -> Result<Vec<NameAddr>, SipError> {
    values(msg, name)?
        .into_iter()
        .map(|v| NameAddr::parse(v).map_err(|e| SipError::header(name, e)))
        .collect()
}

fn tokens<'a>(msg: &'a Message, name: &'static str) -> Result<Vec<&'a str>, SipError> {
    let mut out = Vec::new();
    for line in msg.headers_named(name) {
        if line.is_empty() {
            continue; // an empty Supported/Allow is legal
        }
        for t in split_values(line).map_err(|e| SipError::header(name, e))? {
            if !t.bytes().all(is_token_char) {
                return Err(SipError::header(name, format!("{t:?} is not a token")));
            }
            out.push(t);
        }
    }
    Ok(out)
}

/// Parses a Content-Length value: digits only, checked against overflow.
pub(crate) fn parse_content_length(v: &str) -> Result<usize, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{v:?} is not a non-negative integer"));
    }
    v.parse::<usize>().map_err(|_| format!("{v} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_everywhere() {
        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8")
                .expect("parses");
        assert_eq!(v.protocol, "SIP/2.0");
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, Host::Name("spindle.example.com".into()));
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
    }

    #[test]
    fn top_via_branch_agrees_with_the_full_via() {
        for via in [
            "SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8",
            "SIP/2.0/TLS 10.0.0.1:5061;received=10.0.0.2;BRANCH=z9hG4bKa, SIP/2.0/TLS b;branch=x",
            "SIP/2.0/TLS 192.168.10.50:51063;ms-received-port=51063;rport",
            "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKv6;x=\"a;branch=no\"",
        ] {
            let text = format!(
                "OPTIONS sip:a@b SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/TLS c;branch=z9hG4bKc\r\n\
                 Call-ID: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            let m = Message::parse(text.as_bytes()).expect("parses");
            let full = m.top_via().expect("a valid Via");
            assert_eq!(m.top_via_branch(), full.branch(), "{via}");
        }
    }

    #[test]
    fn via_params() {
        let v = Via::parse(
            "SIP/2.0/TLS 192.168.10.50:51063;ms-received-port=51063;rport;received=10.0.0.1",
        )
        .expect("parses");
        assert_eq!(v.port, Some(51063));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("10.0.0.1"));
        assert_eq!(v.params.value("ms-received-port"), Some("51063"));
        assert_eq!(v.branch(), None);
    }

    #[test]
    fn from_with_tag_and_epid() {
        let f = NameAddr::parse("<sip:alice@contoso.com>;tag=9708e2df90;epid=bd23d94254")
            .expect("parses");
        assert_eq!(f.tag(), Some("9708e2df90"));
        assert_eq!(f.epid(), Some("bd23d94254"));
        assert_eq!(f.uri_raw, "sip:alice@contoso.com");
    }

    #[test]
    fn display_names() {
        let n = NameAddr::parse(r#""J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=1"#)
            .expect("parses");
        assert_eq!(n.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").expect("parses");
        assert_eq!(n.display_name.as_deref(), Some("caller"));
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>").is_err());
        assert!(NameAddr::parse(r#""unterminated <sip:a@b>"#).is_err());
        assert!(NameAddr::parse("< sip:t.watson@example.org >").is_err());
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        let n = NameAddr::parse("sip:user@example.com;unknownparam").expect("parses");
        assert!(n.params.has("unknownparam"));
        assert!(n.uri.as_sip().is_some_and(|u| u.params.0.is_empty()));
    }

    #[test]
    fn cseq_and_session_expires() {
        assert_eq!(CSeq::parse("0009 INVITE").expect("parses").seq, 9);
        assert!(CSeq::parse("4294967296 INVITE").is_err());
        let se = SessionExpires::parse("1800;refresher=uac").expect("parses");
        assert_eq!((se.delta, se.refresher), (1800, Some(Refresher::Uac)));
    }

    #[test]
    fn content_type_is_case_insensitive() {
        let ct = ContentType::parse("Application/CSTA+XML; charset=UTF-8").expect("parses");
        assert!(ct.is("application/csta+xml"));
        assert_eq!(ct.params.value("charset"), Some("UTF-8"));
    }

    #[test]
    fn list_values_split_outside_quotes() {
        assert_eq!(
            split_values(r#""a,b" <sip:x@y>, <sip:z@w;p=1,2>"#).expect("splits"),
            vec![r#""a,b" <sip:x@y>"#, "<sip:z@w;p=1,2>"]
        );
        assert!(split_values("a,,b").is_err());
    }
}
