//! Prints the verdict of the SIP codec on each file given: accepted, or the error.
use rcc_protocol::sip::{Limits, parse_datagram};

fn main() {
    for path in std::env::args().skip(1) {
        let verdict = match std::fs::read(&path) {
            Err(e) => format!("unreadable: {e}"),
            Ok(data) => match parse_datagram(&data, &Limits::default())
                .and_then(|m| m.validate().map(|_| m))
            {
                Ok(m) => format!(
                    "accepted ({} headers, {} body bytes)",
                    m.headers.len(),
                    m.body.len()
                ),
                Err(e) => format!("rejected ({}): {e}", e.status_code()),
            },
        };
        println!("{path}: {verdict}");
    }
}
