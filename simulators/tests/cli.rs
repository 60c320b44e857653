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
