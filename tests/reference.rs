//! The `rcc-lab run` reference exchange goes through every codec without error, in order.

#[test]
fn reference_exchange_runs_through_the_codecs() {
    let ladder = rcc_lab::reference::run().expect("the reference exchange runs");
    let summaries: Vec<&str> = ladder.iter().map(|s| s.summary.as_str()).collect();
    assert_eq!(summaries[0], "INVITE RequestSystemStatus");
    assert_eq!(summaries[1], "200 RequestSystemStatusResponse");
    assert!(summaries.contains(&"[0001] MakeCallResponse"));
    assert!(summaries.contains(&"[9999] EstablishedEvent"));
    assert_eq!(summaries.last(), Some(&"200"));
    assert_eq!(ladder.len(), 24);
}
