//! Arbitrary bytes as a SignedRequest and as each payload the server decodes from one, the way
//! the server's handlers do. Decoding must fail cleanly, never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;

#[allow(dead_code)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/vigo.v1.rs"));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = pb::SignedRequest::decode(data) {
        let _ = pb::CheckInRequest::decode(env.payload.as_slice());
        let _ = pb::ResolveSecretsRequest::decode(env.payload.as_slice());
        let _ = pb::ReportRunRequest::decode(env.payload.as_slice());
        // Re-encoding what decoded must decode to the same message.
        let again = pb::SignedRequest::decode(env.encode_to_vec().as_slice()).expect("round trip");
        assert_eq!(again, env);
    }
    let _ = pb::EnrollRequest::decode(data);
    let _ = pb::SecretValues::decode(data);
});
