//! rcc-lab: the lab around the RCC gateway. At this stage it holds the reference exchange that
//! `rcc-lab run` pushes through the protocol codecs; the scenario runner, replay, load harness
//! and reports come with the gateway and simulators.

pub mod reference;
