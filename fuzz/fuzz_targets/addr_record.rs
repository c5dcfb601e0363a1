//! Address records and relay addresses (mosaic-wire `addr.rs`, `relay.rs`): the
//! `PeerAddr` any DHT node may hand a reader (`PeerAddr::from_record_value`, what
//! `Routing::resolve` decodes with), and a relay's text form
//! (`[NODE_ID@]https://HOST:PORT[#PIN]`), which users paste and nodes print.
//!
//! Checks, for any bytes: no panic; a decoded record publishes as a record that
//! decodes to itself (less the addresses beyond the limit) and publishes the same
//! again; the relay it names prints as text that parses back to it (so an address
//! found in the DHT can be given to `--relay` as printed), with a port and a host; a
//! relay text that parses prints as text that parses back to the same relay.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic_wire::{
    addr::{MAX_PUBLISHED_ADDRS, PeerAddr},
    relay::RelayInfo,
};

fuzz_target!(|data: &[u8]| {
    if let Some(addr) = PeerAddr::from_record_value(data) {
        // Published again: the same record, less the addresses beyond the limit.
        let bytes = addr.record_value();
        let again = PeerAddr::from_record_value(&bytes).expect("a published record decodes");
        assert_eq!(again.relay, addr.relay);
        let kept = addr.direct.len().min(MAX_PUBLISHED_ADDRS);
        assert_eq!(again.direct, addr.direct[..kept]);
        assert_eq!(again.record_value(), bytes);
        assert_eq!(
            addr.is_empty(),
            addr.direct.is_empty() && addr.relay.is_none()
        );
        if let Some(relay) = &addr.relay {
            check_relay(relay);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        match text.parse::<RelayInfo>() {
            Ok(relay) => check_relay(&relay),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});

/// A relay prints as text that parses back to it, and has a port and a host.
fn check_relay(relay: &RelayInfo) {
    let text = relay.to_string();
    match text.parse::<RelayInfo>() {
        Ok(again) => assert_eq!(&again, relay, "{text:?}"),
        Err(e) => panic!("relay {relay:?} prints as {text:?}, which does not parse: {e}"),
    }
    let _ = (relay.port(), relay.host());
}
