//! `rcc-gateway lync-config` as an admin runs it, before the certificates exist: golden files
//! (insta) for each topology variant, and every printed command checked against its cmdlet's
//! documented parameters, with no unquoted PowerShell metacharacter left (no PowerShell
//! parser is installable here: PowerShell is not a Debian package).

use std::process::Command;

/// The parameters each cmdlet the printer uses takes (Microsoft's Lync Server 2013 and
/// PowerShell documentation, the subset printed).
const CMDLETS: &[(&str, &[&str])] = &[
    (
        "New-CsTrustedApplicationPool",
        &[
            "Identity",
            "Registrar",
            "Site",
            "ComputerFqdn",
            "TreatAsAuthenticated",
            "ThrottleAsServer",
            "RequiresReplication",
        ],
    ),
    ("New-CsTrustedApplicationComputer", &["Identity", "Pool"]),
    (
        "New-CsTrustedApplication",
        &[
            "ApplicationId",
            "TrustedApplicationPoolFqdn",
            "Port",
            "EnableTcp",
        ],
    ),
    ("Enable-CsTopology", &[]),
    (
        "New-CsStaticRoute",
        &[
            "TLSRoute",
            "TCPRoute",
            "Destination",
            "Port",
            "UseDefaultCertificate",
            "MatchUri",
        ],
    ),
    ("Set-CsStaticRoutingConfiguration", &["Identity", "Route"]),
    ("New-CsStaticRoutingConfiguration", &["Identity"]),
    (
        "Set-CsUser",
        &[
            "Identity",
            "EnterpriseVoiceEnabled",
            "LineServerUri",
            "LineUri",
            "RemoteCallControlTelephonyEnabled",
        ],
    ),
    ("Get-CsStaticRoutingConfiguration", &["Identity"]),
    ("Select-Object", &["ExpandProperty"]),
    ("Get-CsTrustedApplication", &["Identity"]),
    ("Get-CsUser", &["Identity"]),
    ("Format-List", &[]),
    ("Import-Csv", &["Path"]),
];

/// Tokens of a command, single quotes kept whole (`''` inside them is a quote).
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if quoted && chars.peek() == Some(&'\'') => {
                cur.push_str("''");
                chars.next();
            }
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    assert!(!quoted, "an unterminated quote in {line:?}");
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A value PowerShell takes as it is meant: a quoted string, a boolean, a number, a variable
/// the script set, a column of the CSV row, or the route hashtable.
fn plain_value(t: &str) -> bool {
    let var = |v: &str| {
        v.strip_prefix("$route")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    (t.starts_with('\'') && t.ends_with('\'') && t.len() >= 2)
        || t == "$true"
        || t == "$false"
        || t.bytes().all(|b| b.is_ascii_digit())
        || var(t)
        || t.strip_prefix("@{Add=")
            .and_then(|r| r.strip_suffix('}'))
            .is_some_and(var)
        || t.strip_prefix("$_.")
            .is_some_and(|c| c.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Checks every command of a script; returns the commands seen.
fn check_script(ps: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for line in ps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut toks = tokens(line);
        if toks.get(1).map(String::as_str) == Some("=") {
            assert!(
                toks[0].starts_with("$route"),
                "assignment to {} in {line}",
                toks[0]
            );
            toks.drain(..2);
        }
        for segment in toks.split(|t| t == "|") {
            let mut seg: Vec<&str> = segment.iter().map(String::as_str).collect();
            if seg.first() == Some(&"ForEach-Object") {
                assert_eq!(seg.get(1), Some(&"{"), "{line}");
                assert_eq!(seg.last(), Some(&"}"), "{line}");
                seg = seg[2..seg.len() - 1].to_vec();
            }
            let Some((cmdlet, args)) = seg.split_first() else {
                panic!("an empty pipeline segment in {line}");
            };
            let Some((_, params)) = CMDLETS.iter().find(|(c, _)| c == cmdlet) else {
                panic!("{cmdlet} is not a cmdlet the printer should use ({line})");
            };
            seen.push((*cmdlet).to_owned());
            let mut i = 0;
            while i < args.len() {
                let a = args[i];
                if let Some(p) = a.strip_prefix('-') {
                    assert!(
                        params.contains(&p),
                        "{cmdlet} has no parameter -{p} ({line})"
                    );
                    // Switches stand alone; the others take the next token.
                    let switch = matches!(p, "TLSRoute" | "TCPRoute" | "EnableTcp");
                    if !switch {
                        let v = args
                            .get(i + 1)
                            .unwrap_or_else(|| panic!("-{p} without a value in {line}"));
                        assert!(
                            plain_value(v) || (p == "ExpandProperty" && *v == "Route"),
                            "-{p} {v}: an unquoted value in {line}"
                        );
                        i += 1;
                    }
                } else {
                    assert!(
                        *cmdlet == "Format-List"
                            && a.split(',')
                                .all(|f| f.bytes().all(|b| b.is_ascii_alphanumeric())),
                        "a stray token {a:?} in {line}"
                    );
                }
                i += 1;
            }
        }
    }
    seen
}

fn lync_config(config: &str, args: &[&str]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!(
        "rcc-lync-config-{}-{}",
        std::process::id(),
        args.len()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_rcc-gateway"))
        .arg("lync-config")
        .arg("--config")
        .arg(&path)
        .args(args)
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// TLS, certificates not issued yet (the admin needs this output to request them).
const TLS: &str = r#"[sip]
listen_tls = "0.0.0.0:5065"
host = "rccgw.contoso.com"
trusted_peer = [{ name = "pool01.contoso.com" }]
[sip.tls]
cert = "/etc/rcc-gateway/not-yet-issued.crt"
key = "/etc/rcc-gateway/not-yet-issued.key"
client_ca = "/etc/rcc-gateway/contoso-ca.pem"
[pbx]
address = "10.0.0.20:1040"
"#;

const TCP: &str = r#"[sip]
listen_tcp = "0.0.0.0:5066"
host = "10.0.0.30"
trusted_peer = [{ ip = "10.0.0.11" }]
[pbx]
address = "10.0.0.20:1040"
"#;

fn printed(config: &str, args: &[&str]) -> String {
    let out = lync_config(config, args);
    assert!(
        out.status.success(),
        "lync-config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tls_single_computer_prints_before_the_certificates_exist() {
    let out = lync_config(TLS, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: sip.tls.cert"),
        "the missing certificate is a warning"
    );
    let ps = String::from_utf8_lossy(&out.stdout).into_owned();
    let seen = check_script(&ps);
    for c in [
        "New-CsTrustedApplicationPool",
        "New-CsStaticRoute",
        "Set-CsUser",
        "Get-CsUser",
    ] {
        assert!(seen.iter().any(|s| s == c), "{c} not printed");
    }
    insta::assert_snapshot!("tls_single", ps);
}

#[test]
fn tls_two_computers_pool_routing_and_a_users_csv() {
    let ps = printed(
        TLS,
        &[
            "--computer",
            "rccgw01.contoso.com",
            "--computer",
            "rccgw02.contoso.com",
            "--pool-routing",
            "--users-csv",
            "C:\\rcc\\users.csv",
            "--user",
            "Katie O'Jordan",
        ],
    );
    check_script(&ps);
    assert!(ps.contains(
        "New-CsTrustedApplicationComputer -Identity 'rccgw02.contoso.com' -Pool 'rccgw.contoso.com'"
    ));
    assert!(ps.contains("-Identity 'service:Registrar:pool01.contoso.com' -Route"));
    assert!(ps.contains("-Identity 'Katie O''Jordan'"));
    insta::assert_snapshot!("tls_two_computers_pool_csv", ps);
}

#[test]
fn tcp_names_the_pool_by_fqdn_and_routes_to_the_pinned_ip() {
    let ps = printed(TCP, &["--computer", "rccgw01.contoso.com"]);
    check_script(&ps);
    assert!(ps.contains("New-CsTrustedApplicationPool -Identity 'rccgw01.contoso.com'"));
    assert!(ps.contains("-TCPRoute -Destination '10.0.0.30' -Port 5066"));
    assert!(ps.contains("Limit service\n#    usage to selected IP addresses\" with 10.0.0.30"));
    insta::assert_snapshot!("tcp", ps);
}

#[test]
fn bad_inputs_are_refused_with_the_reason() {
    let out = lync_config(TLS, &["--site", "site:Redmond", "--line", "+14255550100"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a SiteId") && err.contains("not a tel: URI"),
        "{err}"
    );
    let out = lync_config(TCP, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--computer"));
}

/// A LineURI the numbering plan cannot map is refused, the example user's and each row of a
/// users CSV that is readable here (its row named); mapped ones print.
#[test]
fn lines_the_numbering_cannot_map_are_refused() {
    // Seattle numbers only, by the whole number.
    let seattle = format!(
        "{TCP}[numbering]\nline = \"number\"\n[[numbering.to_pbx]]\npattern = '\\+1206555(\\d{{4}})'\nreplace = \"$1\"\n"
    );
    let computer = ["--computer", "rccgw01.contoso.com"];
    let out = lync_config(&seattle, &computer);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--line: no numbering.to_pbx rule maps LineURI tel:+14255550100;ext=100"),
        "{err}"
    );

    let csv =
        std::env::temp_dir().join(format!("rcc-lync-config-users-{}.csv", std::process::id()));
    std::fs::write(
        &csv,
        "\u{feff}SipAddress,LineUri\nsip:ann@contoso.com,tel:+12065550100\nsip:ben@contoso.com,tel:+14255550101\n",
    )
    .expect("csv");
    let csv_arg = csv.display().to_string();
    let mut args = computer.to_vec();
    args.extend(["--line", "tel:+12065550199", "--users-csv", &csv_arg]);
    let out = lync_config(&seattle, &args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "{csv_arg} row 3: no numbering.to_pbx rule maps LineURI tel:+14255550101"
        )),
        "{err}"
    );
    assert!(
        err.starts_with("Error: 1 problem(s)") || err.contains("1 problem(s)"),
        "{err}"
    );
    std::fs::write(
        &csv,
        "SipAddress,LineUri\nsip:ann@contoso.com,tel:+12065550100\n",
    )
    .expect("csv");
    let ps = printed(&seattle, &args);
    assert!(ps.contains("Import-Csv"), "{ps}");
    let _ = std::fs::remove_file(&csv);
}

#[test]
fn the_checker_catches_what_the_old_printer_did() {
    // The unquoted LineURI of earlier versions: `;` would end the statement.
    let old = "Set-CsUser -Identity \"Katie Jordan\" -EnterpriseVoiceEnabled $false -LineServerUri sip:rccgateway@rcc.contoso.com -LineUri tel:+14255550100;ext=100 -RemoteCallControlTelephonyEnabled $true";
    let caught = std::panic::catch_unwind(|| check_script(old));
    assert!(caught.is_err(), "the checker let an unquoted value through");
}

/// `rcc-gateway numbering`: the numbering test box, on the binary.
#[test]
fn numbering_shows_each_rule_and_flags_unmapped_numbers() {
    let config = format!(
        "{TCP}[numbering]\nline = \"ext\"\n[[numbering.to_pbx]]\npattern = '\\+1425555(\\d{{4}})'\nreplace = \"$1\"\n[[numbering.to_lync]]\npattern = '(\\d{{4}})'\nreplace = \"+1425555$1\"\n"
    );
    let dir = std::env::temp_dir().join(format!("rcc-numbering-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_rcc-gateway"))
        .args(["numbering", "--config"])
        .arg(&path)
        .args(["tel:+14255551002", "1003", "+15550001"])
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("as a LineURI: its number (no ;ext=) +14255551002 -> to_pbx #1"),
        "{text}"
    );
    assert!(text.contains("-> PBX device 1002"), "{text}");
    assert!(text.contains("from the PBX: 1003 -> to_lync #1"), "{text}");
    assert!(text.contains("clients see tel:+14255551003"), "{text}");
    assert!(
        text.contains("dialled: +15550001 -> no to_pbx rule matches: passed unchanged"),
        "{text}"
    );
}
