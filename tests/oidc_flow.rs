//! The OpenID Connect relying party (`src/auth/oidc.rs`) against a real OpenID Provider
//! (npm `oidc-provider`, tests/oidc/provider.mjs) on 127.0.0.1: a whole login with a real HTTP
//! client playing the browser, then each way the provider can misbehave, refused on its own.

mod common;

// The crate is a binary only: the relying-party modules are compiled into this test by path,
// with the few modules they use, under the same names as in the binary.
#[allow(dead_code, unused_imports)]
#[path = "../src/crypto/mod.rs"]
mod crypto;
#[allow(dead_code)]
#[path = "../src/util"]
mod util {
    pub mod dns;
    pub mod hosts;
    pub mod https;
}
#[allow(dead_code)]
#[path = "../src/auth"]
mod auth {
    pub mod jwt;
    pub mod oidc;
}

use std::time::Duration;

use auth::jwt::JwtError;
use auth::oidc::{OidcClient, OidcError, OidcSettings};
use common::oidc::{ProviderOptions, TestCa, TestProvider};
use crypto::SecretString;
use util::https::{HttpError, TrustRoots};

fn settings(p: &TestProvider) -> OidcSettings {
    OidcSettings::new(
        &p.issuer,
        &p.options.client_id,
        SecretString::new(p.options.client_secret.clone()),
        TrustRoots::Pem(p.ca.ca_pem.clone()),
    )
}

fn start(misbehave: Option<&'static str>) -> TestProvider {
    TestProvider::start(ProviderOptions { misbehave, ..Default::default() })
}

/// begin → the browser's trip through the provider → finish.
async fn login(p: &TestProvider, client: &OidcClient) -> (Result<auth::jwt::Claims, OidcError>, String) {
    let (url, pending) = client.begin(&p.options.redirect_uri, &["email", "profile"]).unwrap();
    let cb = p.authorize(&url, None).unwrap_or_else(|e| panic!("{e}\nprovider log:\n{}", p.log()));
    (client.finish(&cb.code, &cb.state, &pending).await, cb.code)
}

#[tokio::test]
async fn a_whole_login_returns_the_accounts_claims_for_each_algorithm() {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let p = TestProvider::start(ProviderOptions { id_token_alg: alg, ..Default::default() });
        let client = OidcClient::discover(settings(&p)).await.unwrap();
        let (url, pending) = client.begin(&p.options.redirect_uri, &["email", "profile"]).unwrap();
        // PKCE S256 and the login's own random values travel; the verifier does not.
        assert!(url.starts_with(&format!("{}/auth?", p.issuer)), "{url}");
        for part in
            ["code_challenge_method=S256", "scope=openid+email+profile", &pending.state, &pending.nonce]
        {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        assert!(!url.contains(pending.pkce_verifier.expose()));
        assert_eq!(pending.state.len(), 43, "256-bit state");
        let cb = p.authorize(&url, None).unwrap();
        assert_eq!(cb.iss.as_deref(), Some(p.issuer.as_str()));
        let claims =
            client.finish(&cb.code, &cb.state, &pending).await.unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims["sub"], "alice", "{alg}");
        assert_eq!(claims["email"], "alice@example.org");
        assert_eq!(claims["preferred_username"], "alice");
        assert_eq!(claims["iss"].as_str(), Some(p.issuer.as_str()));
    }
}

#[tokio::test]
async fn the_providers_login_form_logs_in_the_named_account() {
    let p = TestProvider::start(ProviderOptions { auto_login: None, ..Default::default() });
    let client = OidcClient::discover(settings(&p)).await.unwrap();
    let (url, pending) = client.begin(&p.options.redirect_uri, &["email", "profile"]).unwrap();
    assert!(p.authorize(&url, None).unwrap_err().contains("HTTP 200"), "the form is shown, not skipped");
    let (url, pending2) = client.begin(&p.options.redirect_uri, &["email", "profile"]).unwrap();
    let cb = p.authorize(&url, Some("bob")).unwrap();
    let claims = client.finish(&cb.code, &cb.state, &pending2).await.unwrap();
    assert_eq!(claims["sub"], "bob");
    // The first login's pending state does not fit the second login's callback.
    assert_eq!(client.finish(&cb.code, &cb.state, &pending).await.unwrap_err(), OidcError::StateMismatch);
}

/// Starts a provider that rewrites its ID tokens as `mode` says, and expects `finish` to fail
/// with `want` — and to say nothing of the code or the client secret.
async fn refused(mode: &'static str, want: JwtError) {
    let p = start(Some(mode));
    let client = OidcClient::discover(settings(&p)).await.unwrap();
    let (result, code) = login(&p, &client).await;
    let err = result.expect_err(mode);
    assert_eq!(err, OidcError::IdToken(want), "{mode}");
    let text = err.to_string();
    assert!(!text.contains(&code) && !text.contains(&p.options.client_secret), "{text}");
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused() {
    refused("wrong_aud", JwtError::Audience).await;
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    refused("wrong_iss", JwtError::Issuer).await;
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    refused("expired", JwtError::Expired).await;
}

#[tokio::test]
async fn an_id_token_with_a_bad_signature_is_refused() {
    refused("bad_signature", JwtError::BadSignature).await;
}

#[tokio::test]
async fn an_unsigned_alg_none_id_token_is_refused() {
    refused("alg_none", JwtError::AlgNone).await;
}

#[tokio::test]
async fn an_hs256_id_token_keyed_with_the_public_key_is_refused() {
    refused("hs256_public_key", JwtError::Hmac).await;
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    refused("wrong_nonce", JwtError::Nonce).await;
}

#[tokio::test]
async fn a_replayed_code_is_refused_by_the_provider() {
    let p = start(None);
    let client = OidcClient::discover(settings(&p)).await.unwrap();
    let (url, pending) = client.begin(&p.options.redirect_uri, &[]).unwrap();
    let cb = p.authorize(&url, None).unwrap();
    client.finish(&cb.code, &cb.state, &pending).await.unwrap();
    let err = client.finish(&cb.code, &cb.state, &pending).await.unwrap_err();
    assert_eq!(err, OidcError::TokenRefused { status: 400, error: "invalid_grant".into() });
    assert!(!err.to_string().contains(&cb.code));
}

#[tokio::test]
async fn a_wrong_state_or_a_stale_login_is_refused_before_any_network_call() {
    let mut p = start(None);
    let client = OidcClient::discover(settings(&p)).await.unwrap();
    let (url, pending) = client.begin(&p.options.redirect_uri, &[]).unwrap();
    let cb = p.authorize(&url, None).unwrap();
    p.stop();
    // With the provider gone, anything that reached the network would fail to connect.
    assert_eq!(
        client.finish(&cb.code, "forged-state", &pending).await.unwrap_err(),
        OidcError::StateMismatch
    );
    assert_eq!(client.finish(&cb.code, "", &pending).await.unwrap_err(), OidcError::StateMismatch);
    let mut stale = pending.clone();
    stale.created_at -= Duration::from_secs(601);
    assert_eq!(client.finish(&cb.code, &cb.state, &stale).await.unwrap_err(), OidcError::LoginExpired);
    assert_eq!(client.finish("bad code\n", &cb.state, &pending).await.unwrap_err(), OidcError::BadCode);
    // The right state does go out, and finds nobody.
    let err = client.finish(&cb.code, &cb.state, &pending).await.unwrap_err();
    assert!(matches!(err, OidcError::Http(HttpError::Connect(_))), "{err:?}");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_unknown_keys_do_not_hammer_the_provider() {
    let p = start(Some("rotated_key"));
    let client = OidcClient::discover(settings(&p)).await.unwrap();
    assert_eq!(client.jwks_fetches(), 1);
    let (claims, _) = login(&p, &client).await;
    assert_eq!(claims.unwrap()["sub"], "alice");
    assert_eq!(client.jwks_fetches(), 2, "an unknown kid refetches the key set");

    let p = start(Some("unknown_kid"));
    let client = OidcClient::discover(settings(&p)).await.unwrap();
    for _ in 0..3 {
        let (result, _) = login(&p, &client).await;
        assert_eq!(result.unwrap_err(), OidcError::IdToken(JwtError::UnknownKey));
    }
    assert_eq!(client.jwks_fetches(), 2, "at most one refetch per interval");
}

#[tokio::test]
async fn discovery_trusts_only_the_configured_ca_and_issuer() {
    let p = start(None);
    // Neither the system CAs nor another CA vouch for the test provider.
    let mut s = settings(&p);
    s.trust = TrustRoots::Bundle(util::https::SYSTEM_CA_BUNDLE.into());
    let err = OidcClient::discover(s).await.err().unwrap();
    assert!(matches!(err, OidcError::Http(HttpError::Tls { .. })), "{err:?}");
    let mut s = settings(&p);
    s.trust = TrustRoots::Pem(TestCa::new().ca_pem);
    let err = OidcClient::discover(s).await.err().unwrap();
    assert!(matches!(err, OidcError::Http(HttpError::Tls { .. })), "{err:?}");
    // The discovery document must name exactly the configured issuer.
    let mut s = settings(&p);
    s.issuer.push('/');
    assert_eq!(OidcClient::discover(s).await.err().unwrap(), OidcError::IssuerMismatch);
    let mut s = settings(&p);
    s.issuer = s.issuer.replace("https://", "http://");
    assert!(matches!(OidcClient::discover(s).await.err().unwrap(), OidcError::Settings(_)));
    OidcClient::discover(settings(&p)).await.unwrap();
}

/// An HTTPS server on 127.0.0.1 that answers every connection with `answer` (or nothing).
async fn fake_provider(answer: Option<Vec<u8>>) -> (String, TestCa) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = TestCa::new();
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(ca.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(ca.key_pem.as_bytes()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Stops with the test's runtime; serves a bounded number of connections.
        for _ in 0..8 {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                match answer {
                    Some(a) => {
                        let _ = tls.write_all(&a).await;
                        let _ = tls.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (format!("https://{addr}"), ca)
}

async fn discover_from(answer: Option<Vec<u8>>) -> OidcError {
    let (issuer, ca) = fake_provider(answer).await;
    let mut s = OidcSettings::new(&issuer, "c", SecretString::new("s".into()), TrustRoots::Pem(ca.ca_pem));
    s.http_timeout = Duration::from_secs(2);
    OidcClient::discover(s).await.err().expect("discovery must fail")
}

use rustls_pki_types::pem::PemObject;

#[tokio::test]
async fn provider_answers_are_bounded_in_time_and_size_and_redirects_are_not_followed() {
    let err = discover_from(None).await;
    assert!(matches!(err, OidcError::Http(HttpError::Timeout(_, 2))), "{err:?}");
    let redirect =
        b"HTTP/1.1 302 Found\r\nlocation: https://127.0.0.1:1/elsewhere\r\ncontent-length: 0\r\n\r\n"
            .to_vec();
    let err = discover_from(Some(redirect)).await;
    assert!(matches!(err, OidcError::Http(HttpError::Redirect(_, 302))), "{err:?}");
    let mut big = b"HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n".to_vec();
    big.extend(std::iter::repeat_n(b' ', 1 << 20));
    let err = discover_from(Some(big)).await;
    assert!(matches!(err, OidcError::Http(HttpError::TooLarge(..))), "{err:?}");
    let err = discover_from(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec())).await;
    assert_eq!(err, OidcError::IssuerMismatch);
}
