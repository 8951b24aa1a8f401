//! ID tokens signed here with ring (RS256 with a fixture key, ES256 and Ed25519 with fresh ones),
//! then bent one way at a time: each bend is refused with its own error.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde_json::json;

use super::*;
use crate::crypto::b64_encode;

const ISS: &str = "https://idp.example";
const CLIENT: &str = "vigo-console";
const NONCE: &str = "n-0S6_WzA2Mj";
const NOW: u64 = 1_900_000_000;
const RSA_PEM: &str = include_str!("../../tests/fixtures/jwt/rsa2048-test-only.pem");
const OTHER_RSA_PEM: &str = include_str!("../../tests/fixtures/jwt/rsa2048-other-test-only.pem");

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Signer {
    fn rsa(pem: &str) -> Self {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap();
        Signer::Rsa(RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap())
    }
    fn ec() -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Signer::Ec(EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap())
    }
    fn ed() -> Self {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Signer::Ed(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
    }
    fn alg(&self) -> &'static str {
        match self {
            Signer::Rsa(_) => "RS256",
            Signer::Ec(_) => "ES256",
            Signer::Ed(_) => "EdDSA",
        }
    }
    fn jwk(&self, kid: &str) -> Value {
        match self {
            Signer::Rsa(k) => {
                let parts = signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                       "n": b64_encode(&parts.n), "e": b64_encode(&parts.e)})
            }
            Signer::Ec(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64_encode(&p[1..33]), "y": b64_encode(&p[33..])})
            }
            Signer::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64_encode(k.public_key().as_ref())})
            }
        }
    }
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig).unwrap();
                sig
            }
            Signer::Ec(k) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Signer::Ed(k) => k.sign(msg).as_ref().to_vec(),
        }
    }
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "u-42", "aud": CLIENT, "nonce": NONCE, "iat": NOW - 10, "exp": NOW + 300,
           "email": "alice@example.org", "preferred_username": "alice"})
}

/// `header.payload.signature` with the signature made by `signer` over the first two parts.
fn token(signer: &Signer, header: Value, claims: &Value) -> String {
    let signed = format!(
        "{}.{}",
        b64_encode(header.to_string().as_bytes()),
        b64_encode(claims.to_string().as_bytes())
    );
    let sig = signer.sign(signed.as_bytes());
    format!("{signed}.{}", b64_encode(&sig))
}

fn good(signer: &Signer, claims: &Value) -> String {
    token(signer, json!({"alg": signer.alg(), "kid": "k1", "typ": "JWT"}), claims)
}

fn jwks(keys: &[Value]) -> Jwks {
    Jwks::from_json(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISS,
        client_id: CLIENT,
        nonce: NONCE,
        now: UNIX_EPOCH + Duration::from_secs(NOW),
        clock_skew: DEFAULT_CLOCK_SKEW,
    }
}

fn check(token: &str, set: &Jwks) -> Result<Claims, JwtError> {
    verify_id_token(token, set, &expected())
}

#[test]
fn rs256_es256_and_eddsa_tokens_verify_and_return_their_claims() {
    for signer in [Signer::rsa(RSA_PEM), Signer::ec(), Signer::ed()] {
        let set = jwks(&[signer.jwk("k1")]);
        let c = check(&good(&signer, &claims()), &set).unwrap_or_else(|e| panic!("{}: {e}", signer.alg()));
        assert_eq!(c["sub"], "u-42");
        assert_eq!(c["email"], "alice@example.org");
    }
    // RFC 9864's fully-specified name for Ed25519 is the same check.
    let ed = Signer::ed();
    let t = token(&ed, json!({"alg": "Ed25519", "kid": "k1"}), &claims());
    check(&t, &jwks(&[ed.jwk("k1")])).unwrap();
}

#[test]
fn alg_none_is_refused_even_when_the_kid_matches() {
    let rsa = Signer::rsa(RSA_PEM);
    let set = jwks(&[rsa.jwk("k1")]);
    for alg in ["none", "None", "NONE"] {
        let h = b64_encode(json!({"alg": alg, "kid": "k1"}).to_string().as_bytes());
        let p = b64_encode(claims().to_string().as_bytes());
        assert_eq!(check(&format!("{h}.{p}."), &set), Err(JwtError::AlgNone), "{alg}");
        // With a (meaningless) signature part too.
        assert_eq!(check(&format!("{h}.{p}.AAAA"), &set), Err(JwtError::AlgNone), "{alg}");
    }
}

#[test]
fn hmac_is_refused_also_with_the_public_key_as_secret_and_a_matching_kid() {
    let rsa = Signer::rsa(RSA_PEM);
    let jwk = rsa.jwk("k1");
    // The classic confusion: HS256 keyed with the verifier's own public key.
    let Signer::Rsa(pair) = &rsa else { unreachable!() };
    let secret = pair.public().as_ref().to_vec();
    let oct = json!({"kty": "oct", "kid": "k1", "k": b64_encode(&secret)});
    for set in [
        jwks(std::slice::from_ref(&jwk)),
        jwks(&[jwk.clone(), oct.clone()]),
        jwks(std::slice::from_ref(&oct)),
    ] {
        for alg in ["HS256", "HS384", "HS512", "hs256"] {
            let h = b64_encode(json!({"alg": alg, "kid": "k1"}).to_string().as_bytes());
            let p = b64_encode(claims().to_string().as_bytes());
            let msg = format!("{h}.{p}");
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
            let t = format!("{msg}.{}", b64_encode(ring::hmac::sign(&key, msg.as_bytes()).as_ref()));
            assert_eq!(check(&t, &set), Err(JwtError::Hmac), "{alg}");
        }
    }
    // A key set of symmetric keys only holds nothing usable.
    assert!(jwks(&[oct]).is_empty());
}

#[test]
fn other_algorithms_and_critical_headers_are_refused() {
    let rsa = Signer::rsa(RSA_PEM);
    let set = jwks(&[rsa.jwk("k1")]);
    for alg in ["PS256", "RS384", "RS512", "ES384", "ES256K"] {
        let t = token(&rsa, json!({"alg": alg, "kid": "k1"}), &claims());
        assert_eq!(check(&t, &set), Err(JwtError::Algorithm(alg.into())), "{alg}");
    }
    let t = token(&rsa, json!({"alg": "RS256", "kid": "k1", "crit": ["b64"], "b64": false}), &claims());
    assert_eq!(check(&t, &set), Err(JwtError::Critical));
}

#[test]
fn the_key_is_chosen_by_kid_and_must_fit_the_algorithm() {
    let rsa = Signer::rsa(RSA_PEM);
    let ec = Signer::ec();
    let both = jwks(&[rsa.jwk("r"), ec.jwk("e")]);
    let with_kid = |s: &Signer, kid: &str| token(s, json!({"alg": s.alg(), "kid": kid}), &claims());
    check(&with_kid(&rsa, "r"), &both).unwrap();
    check(&with_kid(&ec, "e"), &both).unwrap();
    assert_eq!(check(&with_kid(&rsa, "gone"), &both), Err(JwtError::UnknownKey));
    // An ES256 header naming the RSA key: confusion, not a signature to try.
    assert_eq!(check(&with_kid(&ec, "r"), &both), Err(JwtError::KeyMismatch));
    // A key pinned to another alg by the provider.
    let mut pinned = rsa.jwk("r");
    pinned["alg"] = json!("RS512");
    assert_eq!(check(&with_kid(&rsa, "r"), &jwks(&[pinned])), Err(JwtError::KeyMismatch));
    // No kid: the only key fit for the algorithm, or refused as ambiguous.
    let no_kid = token(&rsa, json!({"alg": "RS256"}), &claims());
    check(&no_kid, &both).unwrap();
    let other = Signer::rsa(OTHER_RSA_PEM);
    assert_eq!(check(&no_kid, &jwks(&[rsa.jwk("r"), other.jwk("o")])), Err(JwtError::AmbiguousKey));
    assert_eq!(check(&no_kid, &jwks(&[ec.jwk("e")])), Err(JwtError::UnknownKey));
}

#[test]
fn a_bad_signature_is_refused() {
    let rsa = Signer::rsa(RSA_PEM);
    let set = jwks(&[rsa.jwk("k1")]);
    let t = good(&rsa, &claims());
    // Another payload under the original signature.
    let (head, rest) = t.split_once('.').unwrap();
    let sig = rest.rsplit_once('.').unwrap().1;
    let mut c = claims();
    c["sub"] = json!("admin");
    let swapped = format!("{head}.{}.{sig}", b64_encode(c.to_string().as_bytes()));
    assert_eq!(check(&swapped, &set), Err(JwtError::BadSignature));
    // Another key under the same kid.
    let other = Signer::rsa(OTHER_RSA_PEM);
    assert_eq!(check(&good(&other, &claims()), &set), Err(JwtError::BadSignature));
    let ed = Signer::ed();
    assert_eq!(check(&good(&ed, &claims()), &jwks(&[Signer::ed().jwk("k1")])), Err(JwtError::BadSignature));
}

#[test]
fn issuer_audience_and_authorized_party_are_checked() {
    let ec = Signer::ec();
    let set = jwks(&[ec.jwk("k1")]);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        check(&good(&ec, &c), &set)
    };
    assert_eq!(with(&|c| c["iss"] = json!("https://idp.example/")), Err(JwtError::Issuer));
    assert_eq!(with(&|c| c["iss"] = json!("https://evil.example")), Err(JwtError::Issuer));
    assert_eq!(with(&|c| c["aud"] = json!("someone-else")), Err(JwtError::Audience));
    assert_eq!(with(&|c| c["aud"] = json!(["someone-else"])), Err(JwtError::Audience));
    assert_eq!(with(&|c| c["aud"] = json!(42)), Err(JwtError::MissingClaim("aud")));
    // Several audiences: azp must name this client.
    assert_eq!(with(&|c| c["aud"] = json!([CLIENT, "api"])), Err(JwtError::AuthorizedParty));
    assert_eq!(
        with(&|c| {
            c["aud"] = json!([CLIENT, "api"]);
            c["azp"] = json!("api");
        }),
        Err(JwtError::AuthorizedParty)
    );
    with(&|c| {
        c["aud"] = json!([CLIENT, "api"]);
        c["azp"] = json!(CLIENT);
    })
    .unwrap();
    assert_eq!(with(&|c| c["azp"] = json!("api")), Err(JwtError::AuthorizedParty));
    assert_eq!(with(&|c| drop(c.as_object_mut().unwrap().remove("sub"))), Err(JwtError::MissingClaim("sub")));
}

#[test]
fn times_are_checked_with_the_configured_skew() {
    let ed = Signer::ed();
    let set = jwks(&[ed.jwk("k1")]);
    let at = |c: Value, skew: u64| {
        let mut e = expected();
        e.clock_skew = Duration::from_secs(skew);
        verify_id_token(&good(&ed, &c), &set, &e)
    };
    let mut c = claims();
    c["exp"] = json!(NOW - 30);
    at(c.clone(), 60).unwrap();
    assert_eq!(at(c.clone(), 0), Err(JwtError::Expired));
    c["exp"] = json!(NOW - 61);
    assert_eq!(at(c, 60), Err(JwtError::Expired));
    let mut c = claims();
    c["iat"] = json!(NOW + 30);
    at(c.clone(), 60).unwrap();
    c["iat"] = json!(NOW + 61);
    assert_eq!(at(c, 60), Err(JwtError::IssuedInFuture));
    let mut c = claims();
    c["nbf"] = json!(NOW + 61);
    assert_eq!(at(c.clone(), 60), Err(JwtError::NotYetValid));
    c["nbf"] = json!(NOW + 59);
    at(c, 60).unwrap();
    for (name, v) in [("exp", json!(null)), ("iat", json!("yesterday")), ("exp", json!(f64::NAN))] {
        let mut c = claims();
        c[name] = v;
        assert_eq!(at(c, 60), Err(JwtError::MissingClaim(name)));
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iat");
    assert_eq!(at(c, 60), Err(JwtError::MissingClaim("iat")));
}

#[test]
fn the_nonce_must_be_this_logins() {
    let ed = Signer::ed();
    let set = jwks(&[ed.jwk("k1")]);
    let mut c = claims();
    c["nonce"] = json!("another-login");
    assert_eq!(check(&good(&ed, &c), &set), Err(JwtError::Nonce));
    c.as_object_mut().unwrap().remove("nonce");
    assert_eq!(check(&good(&ed, &c), &set), Err(JwtError::MissingClaim("nonce")));
}

#[test]
fn malformed_tokens_are_refused_without_quoting_them() {
    let ed = Signer::ed();
    let set = jwks(&[ed.jwk("k1")]);
    let t = good(&ed, &claims());
    let mut cases: Vec<(String, JwtError)> = vec![
        ("abc.def".into(), JwtError::Malformed("it is not three dot-separated parts")),
        (format!("{t}.x.y"), JwtError::Malformed("it is encrypted (JWE), which this client does not accept")),
        (format!("!{t}"), JwtError::Malformed("header is not base64url")),
        (
            format!("{}.{}", b64_encode(b"[1]"), t.split_once('.').unwrap().1),
            JwtError::Malformed("header is not a JSON object"),
        ),
        ("x".repeat(MAX_TOKEN + 1), JwtError::TooLarge),
    ];
    let (head, _) = t.split_once('.').unwrap();
    let signed = format!("{head}.{}", b64_encode(b"not json"));
    cases.push((
        format!("{signed}.{}", b64_encode(&ed.sign(signed.as_bytes()))),
        JwtError::Malformed("payload is not a JSON object"),
    ));
    cases.push((
        format!("{}.%%", t.rsplit_once('.').unwrap().0),
        JwtError::Malformed("signature is not base64url"),
    ));
    for (bad, want) in cases {
        let got = check(&bad, &set).unwrap_err();
        assert_eq!(got, want);
        let text = got.to_string();
        assert!(text.len() < 120 && !text.contains(head), "{text}");
    }
}

#[test]
fn key_sets_keep_only_usable_signing_keys() {
    let ed = Signer::ed();
    let mut enc = Signer::ec().jwk("enc");
    enc["use"] = json!("enc");
    let set = jwks(&[
        ed.jwk("k1"),
        enc,
        json!({"kty": "oct", "k": "c2VjcmV0"}),
        json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
        json!({"kty": "RSA", "n": "%%%", "e": "AQAB"}),
        json!({"kty": "AKP", "alg": "ML-DSA-44", "pub": "AA"}),
        json!("not an object"),
    ]);
    assert_eq!(set.len(), 1);
    assert_eq!(Jwks::from_json(b"{}").unwrap_err(), JwtError::Jwks("no \"keys\" array"));
    assert_eq!(Jwks::from_json(b"<html>").unwrap_err(), JwtError::Jwks("not JSON"));
    let many: Vec<Value> = (0..65).map(|i| ed.jwk(&format!("k{i}"))).collect();
    assert_eq!(
        Jwks::from_json(json!({ "keys": many }).to_string().as_bytes()).unwrap_err(),
        JwtError::Jwks("more than 64 keys")
    );
}
