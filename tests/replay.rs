//! The capture corpus: every capture in `captures/` reads cleanly (no gaps, no framing loss), has
//! a one-line description, and its normalized ladder matches the snapshot beside it
//! (`captures/<name>.snap`). Replaying captures against the gateway is not built yet (issue 7).

use std::path::PathBuf;

fn captures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "pcapng" || e == "pcap"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_corpus_has_at_least_twelve_described_captures() {
    let caps = captures();
    assert!(caps.len() >= 12, "only {} captures", caps.len());
    for c in &caps {
        let txt = c.with_extension("txt");
        let line = std::fs::read_to_string(&txt).unwrap_or_default();
        assert_eq!(
            line.lines().count(),
            1,
            "{} needs a one-line description",
            txt.display()
        );
    }
}

#[test]
fn every_capture_ladder_matches_its_snapshot() {
    for c in captures() {
        let cap = rcc_lab::capture::read(&c).unwrap_or_else(|e| panic!("{}: {e}", c.display()));
        let (steps, notes) = rcc_lab::capture::ladder(&cap);
        assert!(notes.is_empty(), "{}: {notes:?}", c.display());
        assert!(
            steps.iter().any(|s| s.label.starts_with("INVITE")),
            "{}: no INVITE",
            c.display()
        );
        let name = c
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("capture")
            .to_owned();
        let text = rcc_lab::capture::ladder_text(&steps, &notes);
        insta::with_settings!({
            snapshot_path => "../captures",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

#[test]
fn a_truncated_capture_is_reported_not_looped_on() {
    let src = captures().into_iter().next().expect("a capture");
    let bytes = std::fs::read(&src).expect("read");
    let cut = std::env::temp_dir().join(format!("rcc-lab-truncated-{}.pcapng", std::process::id()));
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).expect("write");
    let cap = rcc_lab::capture::read(&cut).expect("readable up to the cut");
    let _ = std::fs::remove_file(&cut);
    assert!(
        cap.problems.iter().any(|p| p.contains("truncated")),
        "{:?}",
        cap.problems
    );
}

#[test]
fn garbage_is_refused_with_a_reason() {
    let f = std::env::temp_dir().join(format!("rcc-lab-garbage-{}.pcap", std::process::id()));
    std::fs::write(&f, b"this is not a capture at all").expect("write");
    let err = rcc_lab::capture::read(&f)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&f);
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
}
