//! Where a participant can be reached: what its address record holds (a BEP 44 mutable
//! item under its key, salt `dht::ADDR_SALT`, see [`crate::dht`]), and that record's
//! value, encoded and read here so that the publisher and every reader agree.
//!
//! The value is the postcard encoding of a [`PeerAddr`], at most
//! [`MAX_PUBLISHED_ADDRS`] direct addresses. It comes from any DHT node: a value that
//! does not decode is no address at all, never an error that stops a lookup.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::relay::RelayInfo;

/// Most addresses published in one record (BEP 44 values are at most 1000 bytes).
pub const MAX_PUBLISHED_ADDRS: usize = 16;

/// Where a participant can be reached: what its address record holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddr {
    /// Direct socket addresses (none for a participant in relay-only mode).
    pub direct: Vec<SocketAddr>,
    /// The relay it is connected to (its home relay), if any.
    pub relay: Option<RelayInfo>,
}

impl PeerAddr {
    /// Nothing to dial.
    pub fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.relay.is_none()
    }

    /// The value of the address record that publishes it: the first
    /// [`MAX_PUBLISHED_ADDRS`] direct addresses and the relay.
    pub fn record_value(&self) -> Vec<u8> {
        let published = PeerAddr {
            direct: self
                .direct
                .iter()
                .take(MAX_PUBLISHED_ADDRS)
                .copied()
                .collect(),
            relay: self.relay.clone(),
        };
        // Socket addresses and one URL always encode.
        postcard::to_stdvec(&published).unwrap_or_default()
    }

    /// Reads an address record's value; `None` if it is not one.
    pub fn from_record_value(value: &[u8]) -> Option<Self> {
        postcard::from_bytes(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_record_round_trips_and_fits_bep44() {
        let relay: RelayInfo = format!("https://relay.example.org:3340#{}", "ab".repeat(32))
            .parse()
            .unwrap();
        let addr = PeerAddr {
            direct: (0..MAX_PUBLISHED_ADDRS as u16 + 3)
                .map(|i| SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, i], 4919)))
                .collect(),
            relay: Some(relay),
        };
        let bytes = addr.record_value();
        assert!(bytes.len() <= 1000, "{} bytes", bytes.len());
        let published = PeerAddr::from_record_value(&bytes).unwrap();
        assert_eq!(published.direct, addr.direct[..MAX_PUBLISHED_ADDRS]);
        assert_eq!(published.relay, addr.relay);
        assert!(PeerAddr::default().is_empty());
        assert_eq!(PeerAddr::from_record_value(b"\xff\xff\xff"), None);
    }

    /// Found by fuzzing (addr_record): a record's relay could have a URL of any scheme,
    /// which the text form refuses; this `file:` one did not even survive being
    /// published again (the url crate reads `file://sz//e:…` with host `sz`, then its
    /// own output of it without).
    #[test]
    fn a_record_whose_relay_is_not_an_http_url_is_no_address() {
        let record = b"\x00\x01\x1ffile://sz//e://sz//rele>/\x0c\x0c\x0c\x0cy.\x00\x00://sz//rele>/\x0c\x0c\x0c\x0cy.\x00\x00\x00\x80rele>/\x0c\x0c\x0c\x0cy.\x00\x00://sz//rele>/\x0c\x0c\x0c\x0cy.\x00\x00\x00\x80\x003@\x00\x80\x003@.o\x01";
        assert_eq!(PeerAddr::from_record_value(record), None);
        for url in ["ftp://relay.example.org", "https://relay.example.org/#part"] {
            let addr = PeerAddr {
                direct: vec![],
                relay: Some(RelayInfo {
                    url: url.parse().unwrap(),
                    pin: None,
                    node: None,
                }),
            };
            assert_eq!(
                PeerAddr::from_record_value(&addr.record_value()),
                None,
                "{url}"
            );
        }
    }
}
