//! `rcc-gateway lync-check` on the binary, against Management Shell exports
//! (`tests/fixtures/lync-exports/`: routes.json, trusted-applications.json,
//! trusted-application-pools.json and trusted-application-computers.json as ConvertTo-Json
//! writes them, users.csv as Export-Csv does, byte-order marks included): the correct topology
//! gives no finding and exit 0; each mistake gives exactly its finding, and an error gives a
//! non-zero exit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lync-exports")
}

struct Case {
    dir: PathBuf,
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A copy of the fixtures with `edit` applied to a file's text, a gateway certificate for
/// `cert_name`, and a gateway.toml with `numbering`.
fn case(
    name: &str,
    file: &str,
    edit: impl Fn(String) -> String,
    cert_name: &str,
    numbering: &str,
) -> Case {
    let dir = std::env::temp_dir().join(format!("rcc-lync-check-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for f in [
        "routes.json",
        "trusted-applications.json",
        "trusted-application-pools.json",
        "trusted-application-computers.json",
        "users.csv",
    ] {
        let text = std::fs::read_to_string(fixtures().join(f)).expect("fixture");
        let text = if f == file { edit(text) } else { text };
        std::fs::write(dir.join(f), text).expect("copy");
    }
    let id = rcgen::generate_simple_self_signed(vec![cert_name.to_owned()]).expect("cert");
    std::fs::write(dir.join("gw.crt"), id.cert.pem()).expect("cert");
    std::fs::write(dir.join("gw.key"), id.signing_key.serialize_pem()).expect("key");
    std::fs::write(
        dir.join("gateway.toml"),
        format!(
            "[sip]\nlisten_tls = \"0.0.0.0:5065\"\nhost = \"rccgw.contoso.com\"\ntrusted_peer = [{{ name = \"pool01.contoso.com\" }}]\n[sip.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_cert = \"none\"\n[pbx]\naddress = \"10.0.0.20:1040\"\n{numbering}",
            dir.join("gw.crt").display(),
            dir.join("gw.key").display()
        ),
    )
    .expect("config");
    Case { dir }
}

const EXT: &str = "[numbering]\nline = \"ext\"\n";

/// The binary's lync-check on a case's exports and gateway.toml.
fn lync_check(c: &Case) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rcc-gateway"))
        .arg("lync-check")
        .arg("--config")
        .arg(c.dir.join("gateway.toml"))
        .arg("--exports")
        .arg(&c.dir)
        .output()
        .expect("runs")
}

/// Runs lync-check: exit success and the finding lines (`error: …` / `warning: …`).
fn run(c: &Case) -> (bool, Vec<String>) {
    let out = lync_check(c);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("checked:"),
        "no summary: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = text
        .lines()
        .filter(|l| l.starts_with("error: ") || l.starts_with("warning: "))
        .map(str::to_owned)
        .collect();
    (out.status.success(), findings)
}

fn unchanged(s: String) -> String {
    s
}

#[test]
fn the_correct_topology_has_no_finding() {
    let (ok, findings) = run(&case("good", "", unchanged, "rccgw.contoso.com", EXT));
    assert!(ok && findings.is_empty(), "{findings:?}");
}

/// Each mistake gives exactly one finding, with the object it is in.
#[test]
fn each_mistake_gives_exactly_its_finding() {
    let cases: Vec<(&str, Case, bool, &str)> = vec![
        (
            "MatchUri is not the LineServerURI domain",
            case(
                "matchuri",
                "routes.json",
                |t| t.replace("\"rcc.contoso.com\"", "\"cti.contoso.com\""),
                "rccgw.contoso.com",
                EXT,
            ),
            false,
            "error: 2 user(s) with LineServerURI domain rcc.contoso.com (sip:katie@contoso.com, sip:bob@contoso.com): \"rcc.contoso.com\" matches no static route to this gateway",
        ),
        (
            "a MatchUri so wide it catches conference URIs",
            case(
                "wide",
                "routes.json",
                |t| t.replace("\"rcc.contoso.com\"", "\"*.contoso.com\""),
                "rccgw.contoso.com",
                EXT,
            ),
            false,
            "error: static route *.contoso.com in Global: MatchUri *.contoso.com takes every URI under the domain, conference URIs too",
        ),
        (
            "a route no trusted application matches",
            case(
                "untrusted",
                "trusted-applications.json",
                |_| "[]".to_owned(),
                "rccgw.contoso.com",
                EXT,
            ),
            false,
            "error: static route rcc.contoso.com in Global: no trusted application on rccgw.contoso.com:5065",
        ),
        (
            "a pool with its own routing collection without the route",
            case(
                "poolroutes",
                "routes.json",
                |t| {
                    let t = t.trim_end().trim_end_matches(']');
                    format!(
                        "{t},\n{{ \"Identity\": \"Service:Registrar:pool02.contoso.com\", \"Route\": [] }}\n]\n"
                    )
                },
                "rccgw.contoso.com",
                EXT,
            ),
            false,
            "error: routing collection Service:Registrar:pool02.contoso.com: pool pool02.contoso.com has its own routing collection without a route to this gateway",
        ),
        (
            "a trusted application pool with no computer",
            case(
                "computers",
                "trusted-application-computers.json",
                |t| t.replace("\"rccgw.contoso.com\"", "\"rccgw-old.contoso.com\""),
                "rccgw.contoso.com",
                EXT,
            ),
            false,
            "error: trusted application pool rccgw.contoso.com: Get-CsTrustedApplicationComputer lists no computer in it",
        ),
        (
            "a trusted application pool whose requests are challenged",
            case(
                "unauthenticated",
                "trusted-application-pools.json",
                |t| {
                    t.replace(
                        "\"TreatAsAuthenticated\":  true",
                        "\"TreatAsAuthenticated\":  false",
                    )
                },
                "rccgw.contoso.com",
                EXT,
            ),
            false,
            "error: trusted application pool rccgw.contoso.com: TreatAsAuthenticated is False",
        ),
        (
            "a trusted application pool throttled as a client",
            case(
                "throttled",
                "trusted-application-pools.json",
                |t| {
                    t.replace(
                        "\"ThrottleAsServer\":  true",
                        "\"ThrottleAsServer\":  false",
                    )
                },
                "rccgw.contoso.com",
                EXT,
            ),
            true,
            "warning: trusted application pool rccgw.contoso.com: ThrottleAsServer is False",
        ),
        (
            "a certificate that does not name the pool",
            case("cert", "", unchanged, "rccgw01.contoso.com", EXT),
            false,
            "error: the gateway's certificate (sip.tls.cert): it names rccgw01.contoso.com but not the trusted application pool rccgw.contoso.com",
        ),
        (
            "Enterprise Voice still enabled",
            case(
                "ev",
                "users.csv",
                |t| t.replacen("\"True\",\"False\"", "\"True\",\"True\"", 1),
                "rccgw.contoso.com",
                EXT,
            ),
            false,
            "error: user sip:katie@contoso.com: Enterprise Voice is enabled",
        ),
        (
            "an E.164 LineURI with phone-context=dialstring",
            case(
                "ctx",
                "users.csv",
                |t| {
                    t.replace(
                        "tel:+14255550100;ext=100",
                        "tel:+14255550100;ext=100;phone-context=dialstring",
                    )
                },
                "rccgw.contoso.com",
                EXT,
            ),
            false,
            "error: user sip:katie@contoso.com: LineURI tel:+14255550100;ext=100;phone-context=dialstring is E.164 with phone-context=dialstring",
        ),
        (
            "a LineURI the numbering cannot map",
            case(
                "unmapped",
                "users.csv",
                |t| t.replace("tel:+14255550100;ext=100", "tel:+14255550100"),
                "rccgw.contoso.com",
                // Seattle numbers only: the Redmond line has no rule.
                "[numbering]\nline = \"ext\"\n[[numbering.to_pbx]]\npattern = '\\+1206555(\\d{4})'\nreplace = \"$1\"\n",
            ),
            true,
            "warning: user sip:katie@contoso.com: no numbering.to_pbx rule maps LineURI tel:+14255550100",
        ),
    ];
    for (what, c, exit_ok, expected) in cases {
        let (ok, findings) = run(&c);
        assert_eq!(findings.len(), 1, "{what}: {findings:?}");
        assert!(findings[0].starts_with(expected), "{what}: {findings:?}");
        assert_eq!(ok, exit_ok, "{what}: exit status");
    }
}

#[test]
fn a_broken_export_is_an_error_naming_the_file() {
    let c = case(
        "broken",
        "routes.json",
        |_| "{ not json".to_owned(),
        "rccgw.contoso.com",
        EXT,
    );
    let out = lync_check(&c);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("routes.json") && err.contains("ConvertTo-Json"),
        "{err}"
    );
}

/// A TCP topology: the route goes to the gateway's IP, the trusted application is TCP, and the
/// Front End knows the gateway's connections only by the address its computer's FQDN resolves
/// to (here `localhost`, which resolves to 127.0.0.1 on every machine).
fn tcp_case(name: &str, gateway_ip: &str) -> Case {
    let dir = std::env::temp_dir().join(format!("rcc-lync-check-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let files = [
        (
            "routes.json",
            format!(
                r#"[{{ "Identity": "Global", "Route": [ {{ "Transport": {{ "Address": "{gateway_ip}", "Port": 5065 }}, "MatchUri": "rcc.contoso.com", "Enabled": true }} ] }}]"#
            ),
        ),
        (
            "trusted-applications.json",
            r#"{ "Identity": "rccgw.contoso.com/urn:application:rcc-gateway", "Protocol": "Tcp", "TrustedApplicationPoolFqdn": "rccgw.contoso.com", "Port": 5065 }"#.to_owned(),
        ),
        (
            "trusted-application-computers.json",
            r#"{ "Identity": "localhost", "Pool": "rccgw.contoso.com" }"#.to_owned(),
        ),
        (
            "users.csv",
            std::fs::read_to_string(fixtures().join("users.csv")).expect("fixture"),
        ),
        (
            "gateway.toml",
            format!(
                "[sip]\nlisten_tcp = \"0.0.0.0:5065\"\nhost = \"{gateway_ip}\"\ntrusted_peer = [{{ ip = \"10.0.0.11\" }}]\n[pbx]\naddress = \"10.0.0.20:1040\"\n{EXT}"
            ),
        ),
    ];
    for (file, text) in files {
        std::fs::write(dir.join(file), text).expect("write");
    }
    Case { dir }
}

#[test]
fn a_tcp_trusted_application_must_resolve_to_the_routes_ip() {
    let (ok, findings) = run(&tcp_case("tcp-good", "127.0.0.1"));
    assert!(ok && findings.is_empty(), "{findings:?}");
    let (ok, findings) = run(&tcp_case("tcp-elsewhere", "10.0.0.30"));
    assert!(!ok);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].starts_with("error: TCP trusted application on port 5065: none of its computers is at the route's 10.0.0.30 (localhost resolves to "),
        "{findings:?}"
    );
}
