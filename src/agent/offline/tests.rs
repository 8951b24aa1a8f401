use super::*;

fn paths(tag: &str) -> AgentPaths {
    let base = std::env::temp_dir().join(format!("vigo-offline-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    AgentPaths::new(&base)
}

fn bundle() -> pb::PolicyBundle {
    let marker = crate::placeholder::marker("db/pw").unwrap();
    pb::PolicyBundle {
        envoy_name: "web1".into(),
        bundle_hash: "h1".into(),
        secrets_epoch: 7,
        resources: vec![pb::Resource {
            name: "f".into(),
            r#type: "file".into(),
            attributes_json: format!(r#"{{"target_path":"/etc/x","content":"{marker}"}}"#)
                .into_bytes()
                .into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

const CANARY: &str = "offline-canary-Zq8v";

fn values() -> BTreeMap<String, SecretBytes> {
    [
        ("db/pw".to_string(), SecretBytes::new(CANARY.as_bytes().to_vec())),
        ("not/entitled".to_string(), SecretBytes::new(b"other-value-Kp2".to_vec())),
    ]
    .into()
}

#[test]
fn the_cache_holds_only_entitled_values_encrypted_and_opens_only_here() {
    let p = paths("roundtrip");
    let me = Ed25519Identity::generate().unwrap();
    store(&p, &me, "envoy-1", &bundle(), &values()).unwrap();
    let file = cache_path(&p);
    assert_eq!(std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&file).unwrap()) & 0o777, 0o600);
    let raw = std::fs::read(&file).unwrap();
    for form in [
        CANARY.to_string(),
        crate::crypto::hex_encode(CANARY.as_bytes()),
        crate::crypto::b64_encode(CANARY.as_bytes()),
        "other-value-Kp2".to_string(),
    ] {
        assert!(!raw.windows(form.len()).any(|w| w == form.as_bytes()), "{form} in the cache file");
    }
    let got = load(&p, &me, "envoy-1").unwrap().unwrap();
    assert_eq!(got.bundle, bundle());
    assert_eq!(got.values.keys().collect::<Vec<_>>(), ["db/pw"], "only what the bundle is entitled to");
    assert_eq!(got.values["db/pw"].expose(), CANARY.as_bytes());

    // Copied to a host with another identity, or to another envoy id: useless.
    let other = Ed25519Identity::generate().unwrap();
    let refused = |r: Result<Option<Cached>, Failure>| r.err().map(|f| f.message).unwrap_or_default();
    assert!(refused(load(&p, &other, "envoy-1")).contains("identity key"));
    assert!(refused(load(&p, &me, "envoy-2")).contains("another envoy"));
    // An edited header (claiming a newer epoch) no longer opens.
    let edited = String::from_utf8_lossy(&raw).replacen("\"secrets_epoch\":7", "\"secrets_epoch\":8", 1);
    let mut bytes = raw.clone();
    let at = raw.windows(17).position(|w| w == b"\"secrets_epoch\":7").unwrap();
    bytes[at + 16] = b'8';
    assert!(edited.contains("\"secrets_epoch\":8"));
    std::fs::write(&file, &bytes).unwrap();
    assert!(load(&p, &me, "envoy-1").is_err());
    // A flipped ciphertext byte neither.
    let mut flipped = raw.clone();
    let last = flipped.len() - 20;
    flipped[last] ^= 1;
    std::fs::write(&file, &flipped).unwrap();
    assert!(load(&p, &me, "envoy-1").is_err());
    // Its header still names the bundle being stored, but the body is damaged: written again.
    store(&p, &me, "envoy-1", &bundle(), &values()).unwrap();
    assert_eq!(load(&p, &me, "envoy-1").unwrap().unwrap().bundle, bundle(), "rewritten");
    wipe(&p);
    assert!(load(&p, &me, "envoy-1").unwrap().is_none());
}

#[test]
fn the_queue_is_bounded_oldest_dropped_and_counted() {
    let p = paths("queue");
    for i in 0..(queue::MAX_QUEUED + 3) {
        let r = pb::RunReport { started_ms: i as i64, status: "converged".into(), ..Default::default() };
        queue::push(&p, &r).unwrap();
    }
    assert_eq!(queue::len(&p), queue::MAX_QUEUED);
    assert_eq!(queue::dropped(&p), 3);
    let pending = queue::pending(&p);
    assert_eq!(pending[0].1.started_ms, 3, "the three oldest were dropped");
    // One the server will never take is discarded and counted; the rest go on.
    queue::discard(&p, &pending[0].0);
    assert_eq!((queue::len(&p), queue::dropped(&p)), (queue::MAX_QUEUED - 1, 4));
    for (path, _) in &pending[1..] {
        queue::sent(&p, path);
    }
    assert_eq!((queue::len(&p), queue::dropped(&p)), (0, 0));
}
