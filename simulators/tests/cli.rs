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
