//! SIP stream framer, parser, typed views and canonical re-serialisation on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcc_protocol::sip::{Limits, Message, StreamFramer, StreamItem, parse_datagram};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut framer = StreamFramer::new(limits);
    for part in [&data[..split], &data[split..]] {
        framer.push(part);
        while let Ok(Some(item)) = framer.next_item() {
            if let StreamItem::Message(m) = item {
                let _ = m.validate();
                let again = Message::parse(&m.to_bytes()).expect("our own canonical form must parse");
                assert_eq!(again.body, m.body);
            }
        }
    }
    if let Ok(m) = parse_datagram(data, &limits) {
        let _ = (m.validate(), m.vias(), m.contacts(), m.route(), m.session_expires());
    }
});
