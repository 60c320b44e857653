//! Each simulator binary names itself: `--version` says `pbx-sim` or `lync-sim`, not the crate.

use std::process::Command;

#[test]
fn each_binary_names_itself_in_its_version() {
    for (bin, name) in [
        (env!("CARGO_BIN_EXE_pbx-sim"), "pbx-sim"),
        (env!("CARGO_BIN_EXE_lync-sim"), "lync-sim"),
    ] {
        let out = Command::new(bin).arg("--version").output().expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert_eq!(
            text.trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION")),
            "{bin}"
        );
    }
}

/// One spelling of the configuration check across the binaries: `check-config --config FILE`
/// (rcc-gateway's too); the old `pbx-sim --check` and `lync-sim check` still work.
#[test]
fn every_binary_checks_its_config_with_check_config() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (bin, example, old) in [
        (
            env!("CARGO_BIN_EXE_pbx-sim"),
            "pbx.example.toml",
            ["--check"],
        ),
        (
            env!("CARGO_BIN_EXE_lync-sim"),
            "lync.example.toml",
            ["check"],
        ),
    ] {
        let config = root.join(example);
        let out = Command::new(bin)
            .arg("check-config")
            .arg("--config")
            .arg(&config)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{bin} check-config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
        let mut cmd = Command::new(bin);
        if old[0] == "check" {
            cmd.args(old).arg("--config").arg(&config);
        } else {
            cmd.arg("--config").arg(&config).args(old);
        }
        assert!(
            cmd.output().expect("runs").status.success(),
            "{bin} {old:?}"
        );
        let broken =
            std::env::temp_dir().join(format!("rcc-cli-broken-{}.toml", std::process::id()));
        std::fs::write(&broken, "[[[").expect("write");
        let out = Command::new(bin)
            .arg("check-config")
            .arg("--config")
            .arg(&broken)
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{bin} accepted a broken file");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&broken.display().to_string()), "{bin}: {err}");
        let _ = std::fs::remove_file(&broken);
        let help = Command::new(bin).arg("--help").output().expect("runs");
        assert!(
            String::from_utf8_lossy(&help.stdout).contains("Examples:"),
            "{bin} --help has no examples"
        );
    }
}

/// `--exports`: the pool takes the routes, trusted applications and users of Lync Management
/// Shell exports (the fixtures `rcc-gateway lync-check` is tested with); a folder without them
/// is an error naming the missing file.
#[test]
fn lync_sim_takes_its_topology_from_management_shell_exports() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let exports = root.join("../gateway/tests/fixtures/lync-exports");
    let run = |sub: &str, exports: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_lync-sim"))
            .arg(sub)
            .arg("--config")
            .arg(root.join("lync.example.toml"))
            .arg("--exports")
            .arg(exports)
            .output()
            .expect("runs")
    };
    let out = run("check-config", &exports);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 static route(s), 1 trusted application(s), 2 user(s)"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ps = String::from_utf8_lossy(&run("powershell", &exports).stdout).into_owned();
    assert!(
        ps.contains("-Destination 'rccgw.contoso.com' -Port 5065"),
        "{ps}"
    );
    assert!(
        ps.contains("Set-CsUser -Identity 'sip:katie@contoso.com'"),
        "{ps}"
    );
    let out = run("check-config", root);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes.json"), "{err}");
}

/// `lync-sim run` with `clients_listen`: a real client's REGISTER is answered 200 in Lync 2007+
/// mode, and its roaming-self SUBSCRIBE brings the NOTIFY with the user's RCC line.
#[test]
fn lync_sim_run_registers_real_clients() {
    use std::io::{Read, Write};
    let dir = std::env::temp_dir().join(format!("lync-sim-clients-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let config = dir.join("lync.toml");
    std::fs::write(
        &config,
        format!(
            "clients_listen = \"127.0.0.1:{port}\"\n[pool]\nfqdn = \"fe.lab.example\"\n\
             [[pool.static_route]]\nmatch_uri = \"rcc.lab.example\"\ntransport = \"tcp\"\n\
             destination = \"127.0.0.1\"\nport = 9\n\
             [[pool.trusted_application]]\npool_fqdn = \"127.0.0.1\"\nip = \"127.0.0.1\"\nport = 9\n\
             [[user]]\nuri = \"sip:katie@contoso.com\"\nline = \"tel:+14255550100;ext=100\"\n\
             line_server = \"sip:rccgw@rcc.lab.example\"\nendpoints = 0\n"
        ),
    )
    .expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_lync-sim"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("lync-sim runs");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut s = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "clients port: {e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let request = |method: &str, extra: &str| {
        format!(
            "{method} sip:contoso.com SIP/2.0\r\nVia: SIP/2.0/tcp 127.0.0.1:5000;branch=z9hG4bK{method}\r\n\
             From: <sip:katie@contoso.com>;tag=1;epid=e1\r\nTo: <sip:katie@contoso.com>\r\n\
             Call-ID: {method}-1\r\nCSeq: 1 {method}\r\nContact: <sip:127.0.0.1:5000;transport=tcp>\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        )
    };
    let read_until = |s: &mut std::net::TcpStream, needle: &str| {
        let mut got = String::new();
        let mut buf = [0u8; 4096];
        while !got.contains(needle) {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        got
    };
    s.write_all(request("REGISTER", "").as_bytes())
        .expect("send");
    let ok = read_until(&mut s, "\r\n\r\n");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains("Supported: msrtc-event-categories\r\n"), "{ok}");
    s.write_all(request("SUBSCRIBE", "Event: vnd-microsoft-roaming-self\r\n").as_bytes())
        .expect("send");
    let notify = read_until(&mut s, "</roamingData>");
    assert!(
        notify.contains("NOTIFY sip:127.0.0.1:5000;transport=tcp SIP/2.0"),
        "{notify}"
    );
    assert!(
        notify.contains("lineServer=\"sip:rccgw@rcc.lab.example\">tel:+14255550100;ext=100</line>"),
        "{notify}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
