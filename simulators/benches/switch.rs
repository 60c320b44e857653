//! The PBX simulator's call model: `cargo bench -p rcc-simulators --bench switch`. Figures go to
//! BENCHMARKS.md. One call cycle (a desk phone dials the outside number every load call goes to,
//! the far end answers, the desk phone hangs up) while that number is already in N calls: the
//! cost must not grow with N, or the load harness measures the simulator instead of the gateway.

use std::time::Instant;

use divan::Bencher;
use rcc_simulators::pbx::{DeviceConfig, ExternalParty, Switch, SwitchConfig};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

const FAR_END: &str = "+14255550177";

/// A switch where the far end is in `n` connected calls, one per desk phone, and a spare phone.
fn switch_with_calls(n: usize, now: Instant) -> Switch {
    let mut sw = Switch::new(SwitchConfig::default());
    sw.set_external(FAR_END, ExternalParty::answers_after(0));
    for i in 0..=n {
        sw.add_device(DeviceConfig::new(&format!("{}", 100_000 + i), None));
    }
    for i in 1..=n {
        sw.phone_dial(&format!("{}", 100_000 + i), FAR_END, now)
            .expect("dial");
        sw.handle_timeout(now);
    }
    sw.take_notices().for_each(drop);
    sw
}

#[divan::bench(args = [0, 1_000, 10_000])]
fn call_cycle_with_far_end_in_n_calls(b: Bencher, n: usize) {
    let now = Instant::now();
    let mut sw = switch_with_calls(n, now);
    assert_eq!(sw.calls().len(), n, "{n} calls up before timing");
    b.bench_local(|| {
        sw.phone_dial("100000", FAR_END, now).expect("dial");
        sw.handle_timeout(now);
        sw.phone_hang_up("100000").expect("hang up");
        sw.take_notices().count()
    });
}
