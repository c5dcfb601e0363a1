//! The storage protocol's messages (mosaic-wire `proto.rs`): the frame bodies a node
//! reads from any peer (`Request`) and a client from any node (`Response`), postcard
//! as `read_frame` decodes them, at most `MAX_FRAME` bytes.
//!
//! Checks, for any body: no panic and no runaway allocation; a message that decodes
//! encodes, decodes again to the same message, and encodes to the same bytes again (a
//! fixed point, so a relayed message is not changed by passing through Mosaic); and
//! what the handlers derive from a message (its hashes, a refusal's kind) is
//! computable.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use mosaic_wire::proto::{self, Found, Lookup, MAX_FRAME, Request, Response};
use serde::{Serialize, de::DeserializeOwned};

fuzz_target!(|data: &[u8]| {
    let body = &data[..data.len().min(MAX_FRAME)];
    if let Some(request) = round_trip::<Request>(body) {
        match &request {
            Request::Pin { hashes }
            | Request::Unpin { hashes }
            | Request::Stat { hashes }
            | Request::Status { hashes } => assert_eq!(proto::hashes(hashes).len(), hashes.len()),
            Request::Adopt { owners, .. } => assert_eq!(proto::hashes(owners).len(), owners.len()),
            Request::HoldName { record, .. } => {
                let _ = record.verify();
            }
            _ => {}
        }
    }
    if let Some(response) = round_trip::<Response>(body) {
        match &response {
            Response::Refused { reason, message } => {
                let _ = (reason.kind(), message.len());
            }
            Response::Found(Found::Record(Some(record))) => {
                let _ = record.verify();
            }
            Response::Found(Found::Address(addr)) => {
                let _ = addr.is_empty();
            }
            _ => {}
        }
    }
    // The pieces a message is made of, alone (a body of one of them is also how a
    // truncated or confused peer looks).
    round_trip::<Lookup>(body);
    round_trip::<Found>(body);
    round_trip::<proto::NodeStatus>(body);
    round_trip::<proto::RepairReport>(body);
});

/// Decodes `body` as a `T`; if it is one, checks that it encodes, decodes to itself
/// and encodes the same again.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(body: &[u8]) -> Option<T> {
    let value: T = postcard::from_bytes(body).ok()?;
    let bytes = postcard::to_stdvec(&value).expect("a decoded message encodes");
    let again: T = postcard::from_bytes(&bytes).expect("an encoded message decodes");
    assert_eq!(again, value);
    assert_eq!(postcard::to_stdvec(&again).expect("encodes"), bytes);
    Some(value)
}
