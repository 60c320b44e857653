//! SIP, SIPS and tel URIs with their parameters; other schemes are kept opaque.

use std::fmt;
use std::net::Ipv4Addr;

/// `;name[=value]` parameters in received order. Names compare without ASCII case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=b;c` (the leading `;` optional). LWS around `;` and `=` is allowed; a value may
    /// be a quoted string (kept with its quotes). Empty names are an error.
    pub fn parse(s: &str) -> Result<Params, String> {
        let s = s.trim_matches(is_lws);
        let s = s.strip_prefix(';').unwrap_or(s);
        if s.trim_matches(is_lws).is_empty() {
            return Ok(Params(Vec::new()));
        }
        let mut out = Vec::with_capacity(split_outside_quotes(s, b';').count());
        for item in split_outside_quotes(s, b';') {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim_matches(is_lws), Some(v.trim_matches(is_lws))),
                None => (item.trim_matches(is_lws), None),
            };
            if name.is_empty() || !name.bytes().all(is_param_char) {
                return Err(format!("invalid parameter name {name:?}"));
            }
            if let Some(v) = value {
                if v.is_empty() {
                    return Err(format!("parameter {name} has an empty value"));
                }
                if v.starts_with('"') && !(v.len() >= 2 && v.ends_with('"')) {
                    return Err(format!("parameter {name} has an unterminated quoted value"));
                }
            }
            out.push((name.to_owned(), value.map(str::to_owned)));
        }
        Ok(Params(out))
    }

    /// The value of a parameter: `Some(None)` when present without value.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of a parameter that has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    /// Whether the parameter is present (with or without value).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

pub(crate) fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_param_char(b: u8) -> bool {
    super::message::is_token_char(b) || b"[]/:&+$".contains(&b)
}

/// Splits on `sep` where it is not inside a quoted string (with `\` escapes) or `<...>`.
pub(crate) fn split_outside_quotes(s: &str, sep: u8) -> SplitOutsideQuotes<'_> {
    SplitOutsideQuotes {
        s,
        sep,
        start: 0,
        done: false,
    }
}

/// The pieces of [`split_outside_quotes`], found as they are asked for (no list is built).
pub(crate) struct SplitOutsideQuotes<'a> {
    s: &'a str,
    sep: u8,
    start: usize,
    done: bool,
}

impl<'a> Iterator for SplitOutsideQuotes<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        // Jumps from one byte that matters to the next (memchr) instead of walking every byte.
        let bytes = self.s.as_bytes();
        let (mut angle, mut i) = (0usize, self.start);
        while i < bytes.len() {
            let rest = &bytes[i..];
            let hit = if angle == 0 {
                memchr::memchr3(self.sep, b'"', b'<', rest)
            } else {
                memchr::memchr3(b'"', b'<', b'>', rest)
            };
            let Some(offset) = hit else {
                break;
            };
            i += offset;
            match bytes[i] {
                b'"' => {
                    // A quoted string: up to its closing quote, `\` escaping the next byte.
                    i += 1;
                    loop {
                        let Some(o) = memchr::memchr2(b'"', b'\\', &bytes[i..]) else {
                            // Never closed: the rest of the value is inside it.
                            i = bytes.len();
                            break;
                        };
                        i += o;
                        if bytes[i] != b'\\' {
                            break;
                        }
                        i = (i + 2).min(bytes.len());
                    }
                }
                b'<' => angle += 1,
                b'>' => angle -= 1,
                _ => {
                    let part = &self.s[self.start..i];
                    self.start = i + 1;
                    return Some(part);
                }
            }
            i += 1;
        }
        self.done = true;
        Some(&self.s[self.start.min(self.s.len())..])
    }
}

/// The host part of a SIP URI or Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A domain name.
    Name(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference, without brackets (kept as text: RFC 5118 asks to tolerate odd forms).
    V6(String),
}

impl Host {
    /// Parses a host: a name, a dotted IPv4 address, or a bracketed IPv6 reference.
    pub fn parse(s: &str) -> Result<Host, String> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| format!("unterminated IPv6 reference {s:?}"))?;
            if inner.is_empty()
                || !inner.contains(':')
                || !inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(format!("invalid IPv6 reference {s:?}"));
            }
            return Ok(Host::V6(inner.to_owned()));
        }
        if s.is_empty() {
            return Err("empty host".into());
        }
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Ok(Host::V4(v4));
        }
        if s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            return Ok(Host::Name(s.to_owned()));
        }
        Err(format!("invalid host {s:?}"))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Splits `host[:port]` (IPv6 in brackets) and parses both.
pub(crate) fn parse_host_port(s: &str) -> Result<(Host, Option<u16>), String> {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let rest = s[end + 1..].trim_matches(is_lws);
                let port = match rest.strip_prefix(':') {
                    Some(p) => Some(p.trim_matches(is_lws)),
                    None if rest.is_empty() => None,
                    None => return Err(format!("garbage after IPv6 reference in {s:?}")),
                };
                (&s[..=end], port)
            }
            None => return Err(format!("unterminated IPv6 reference {s:?}")),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.trim_matches(is_lws), Some(p.trim_matches(is_lws))),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("port {p} out of range"))?,
        ),
        Some(p) => return Err(format!("invalid port {p:?}")),
        None => None,
    };
    Ok((Host::parse(host)?, port))
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// User part, still %-escaped as received.
    pub user: Option<String>,
    /// Password, if the userinfo had one.
    pub password: Option<String>,
    /// Host.
    pub host: Host,
    /// Port, if given.
    pub port: Option<u16>,
    /// URI parameters (`transport`, `lr`, `maddr`, `opaque`, `gruu`, ...).
    pub params: Params,
    /// The `?headers` component, raw.
    pub headers: Option<String>,
}

impl SipUri {
    /// Parses a SIP or SIPS URI.
    pub fn parse(s: &str) -> Result<SipUri, String> {
        let prefix = |n: usize, p: &str| s.get(..n).is_some_and(|x| x.eq_ignore_ascii_case(p));
        let (secure, rest) = if prefix(5, "sips:") {
            (true, &s[5..])
        } else if prefix(4, "sip:") {
            (false, &s[4..])
        } else {
            return Err(format!("not a SIP URI: {s:?}"));
        };
        if rest
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(format!("whitespace or control characters in URI {s:?}"));
        }
        let (userinfo, hostpart) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            Some("") => return Err(format!("empty user part in {s:?}")),
            Some(u) => match u.split_once(':') {
                Some((user, pw)) => (Some(user.to_owned()), Some(pw.to_owned())),
                None => (Some(u.to_owned()), None),
            },
            None => (None, None),
        };
        let (hostpart, headers) = match hostpart.split_once('?') {
            Some((h, q)) => (h, Some(q.to_owned())),
            None => (hostpart, None),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], Params::parse(&hostpart[i..])?),
            None => (hostpart, Params::default()),
        };
        let (host, port) = parse_host_port(hostport)?;
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// A `tel:` URI (RFC 3966): a global (`+` E.164) or local number with parameters
/// (`ext`, `phone-context`, `isub`, and vendor parameters such as `partition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    /// The number as written, `+` included for global numbers, visual separators kept.
    pub number: String,
    /// Parameters.
    pub params: Params,
}

impl TelUri {
    /// Parses a tel URI.
    pub fn parse(s: &str) -> Result<TelUri, String> {
        let rest = match s.get(..4) {
            Some(p) if p.eq_ignore_ascii_case("tel:") => &s[4..],
            _ => return Err(format!("not a tel URI: {s:?}")),
        };
        let (number, params) = match rest.find(';') {
            Some(i) => (&rest[..i], Params::parse(&rest[i..])?),
            None => (rest, Params::default()),
        };
        let digits = number.strip_prefix('+').unwrap_or(number);
        let ok = !digits.is_empty()
            && digits
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b"*#-.()".contains(&b))
            && digits
                .bytes()
                .any(|b| b.is_ascii_hexdigit() || b == b'*' || b == b'#');
        if !ok {
            return Err(format!("invalid telephone number {number:?}"));
        }
        Ok(TelUri {
            number: number.to_owned(),
            params,
        })
    }

    /// Whether the number is global (E.164 with `+`).
    pub fn is_global(&self) -> bool {
        self.number.starts_with('+')
    }

    /// The number without visual separators (`-`, `.`, `(`, `)`).
    pub fn digits(&self) -> String {
        self.number
            .chars()
            .filter(|c| !"-.()".contains(*c))
            .collect()
    }
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}{}", self.number, self.params)
    }
}

/// Any URI: SIP/SIPS and tel are parsed; other schemes are kept as `scheme:rest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:`.
    Tel(TelUri),
    /// Another scheme (RFC 3986 `scheme ":" ...`), opaque.
    Other {
        /// The scheme.
        scheme: String,
        /// Everything after the colon.
        rest: String,
    },
}

impl Uri {
    /// Parses a URI by its scheme.
    pub fn parse(s: &str) -> Result<Uri, String> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("URI without scheme: {s:?}"))?;
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err(format!("invalid URI scheme {scheme:?}"));
        }
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse(s).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse(s).map(Uri::Tel)
        } else if rest.is_empty() || rest.bytes().any(|b| b.is_ascii_whitespace()) {
            Err(format!("invalid {scheme} URI {s:?}"))
        } else {
            Ok(Uri::Other {
                scheme: scheme.to_owned(),
                rest: rest.to_owned(),
            })
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(t) => t.fmt(f),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain reading of the rule [`split_outside_quotes`] implements, one byte at a time.
    fn split_reference(s: &str, sep: u8) -> Vec<&str> {
        let (mut out, mut start, mut in_quote, mut angle, mut i) = (vec![], 0, false, 0usize, 0);
        let b = s.as_bytes();
        while i < b.len() {
            match b[i] {
                b'\\' if in_quote => i += 1,
                b'"' => in_quote = !in_quote,
                _ if in_quote => {}
                b'<' => angle += 1,
                b'>' => angle = angle.saturating_sub(1),
                c if c == sep && angle == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        out.push(&s[start.min(s.len())..]);
        out
    }

    proptest::proptest! {
        #[test]
        fn splitting_jumps_agree_with_the_byte_walk(s in r#"[a-c;,"<>\\ ]{0,40}"#) {
            for sep in [b',', b';'] {
                let fast: Vec<&str> = split_outside_quotes(&s, sep).collect();
                proptest::prop_assert_eq!(fast, split_reference(&s, sep));
            }
        }
    }

    #[test]
    fn lync_gruu_contact_uri() {
        let u =
            SipUri::parse("sip:alice@contoso.com;opaque=user:epid:2X3Fk9m1vVe5Yk_6Tq0aGAAA;gruu")
                .expect("parses");
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.host, Host::Name("contoso.com".into()));
        assert_eq!(
            u.params.value("opaque"),
            Some("user:epid:2X3Fk9m1vVe5Yk_6Tq0aGAAA")
        );
        assert!(u.params.has("gruu"));
    }

    #[test]
    fn front_end_record_route_uri() {
        let u = SipUri::parse("sip:fe01.contoso.com:5061;transport=tls;opaque=state:T;lr")
            .expect("parses");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.params.value("transport"), Some("tls"));
        assert!(u.params.has("lr"));
        assert_eq!(
            u.to_string(),
            "sip:fe01.contoso.com:5061;transport=tls;opaque=state:T;lr"
        );
    }

    #[test]
    fn ipv6_hosts() {
        let u = SipUri::parse("sip:[2001:db8::10]:5070").expect("parses");
        assert_eq!(
            (u.host, u.port),
            (Host::V6("2001:db8::10".into()), Some(5070))
        );
        let u = SipUri::parse("sip:[2001:db8::10:5070]").expect("parses");
        assert_eq!(
            (u.host, u.port),
            (Host::V6("2001:db8::10:5070".into()), None)
        );
        assert!(SipUri::parse("sip:2001:db8::10").is_err());
    }

    #[test]
    fn tel_uris_of_rcc_lines() {
        let t = TelUri::parse("tel:+14255550100;ext=100").expect("parses");
        assert!(t.is_global());
        assert_eq!(t.params.value("ext"), Some("100"));
        let t = TelUri::parse("tel:73124;phone-context=dialstring;partition=BE_BRS_INT")
            .expect("parses");
        assert!(!t.is_global());
        assert_eq!(t.params.value("phone-context"), Some("dialstring"));
        assert_eq!(
            TelUri::parse("tel:+1-425-555-0100")
                .expect("parses")
                .digits(),
            "+14255550100"
        );
        assert!(TelUri::parse("tel:+").is_err());
        assert!(TelUri::parse("tel:12;;").is_err());
    }

    #[test]
    fn other_schemes_are_opaque() {
        assert!(matches!(
            Uri::parse("soap.beep://192.0.2.103:3002"),
            Ok(Uri::Other { .. })
        ));
        assert!(Uri::parse("nourl").is_err());
        assert!(Uri::parse("1x:abc").is_err());
    }
}

#[cfg(test)]
mod boundary_tests {
    use super::*;

    #[test]
    fn multibyte_text_at_scheme_boundaries_is_an_error_not_a_panic() {
        for s in ["sipé:x", "siéx", "tééé", "é", "sips", "si"] {
            assert!(SipUri::parse(s).is_err(), "{s}");
            let _ = Uri::parse(s);
            let _ = TelUri::parse(s);
        }
    }
}
