//! SSHSIG checks against signatures made by the real `ssh-keygen -Y sign` (Debian's
//! openssh-client, installed by scripts/test-all.sh). A missing ssh-keygen fails these tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;

use super::*;

const NS: &str = "vigo-login@example";
const MSG: &[u8] = b"vigo-challenge-3f1c9a";

struct KeyDir(PathBuf);

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key_dir(tag: &str) -> KeyDir {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("vigo-sshsig-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    KeyDir(dir)
}

fn ssh_keygen(args: &[&str], dir: &Path) -> std::process::Output {
    let out = Command::new("ssh-keygen")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("ssh-keygen must be installed (Debian openssh-client; scripts/test-all.sh installs it)");
    assert!(out.status.success(), "ssh-keygen {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A fresh key of `kind` (`ed25519`, `ecdsa`, `rsa`…) in `dir`; returns its `.pub` line.
fn new_key(dir: &Path, name: &str, kind: &str, extra: &[&str]) -> String {
    let mut args = vec!["-q", "-t", kind, "-N", "", "-C", "someone@host", "-f", name];
    args.extend_from_slice(extra);
    ssh_keygen(&args, dir);
    std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap()
}

/// `ssh-keygen -Y sign -n ns -f key` over `msg`; returns the armored signature.
fn sign(dir: &Path, key: &str, ns: &str, msg: &[u8], extra: &[&str]) -> String {
    let file = dir.join("challenge");
    std::fs::write(&file, msg).unwrap();
    let _ = std::fs::remove_file(dir.join("challenge.sig"));
    let mut args = vec!["-Y", "sign", "-n", ns, "-f", key];
    args.extend_from_slice(extra);
    args.push("challenge");
    ssh_keygen(&args, dir);
    std::fs::read_to_string(dir.join("challenge.sig")).unwrap()
}

fn unarmor(sig: &str) -> Vec<u8> {
    dearmor(sig).unwrap()
}

fn armor(blob: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    let lines: Vec<&str> = b64.as_bytes().chunks(70).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("{BEGIN}\n{}\n{END}\n", lines.join("\n"))
}

#[test]
fn a_good_ed25519_signature_verifies() {
    let d = key_dir("good");
    let key = new_key(&d.0, "id", "ed25519", &[]);
    let sig = sign(&d.0, "id", NS, MSG, &[]);
    verify(&sig, MSG, NS, &key).unwrap();
    // A line copied without its comment or with surrounding blanks is the same key.
    let bare: Vec<&str> = key.split_whitespace().take(2).collect();
    verify(&sig, MSG, NS, &format!("  {}\n", bare.join(" "))).unwrap();
}

#[test]
fn ecdsa_and_rsa_keys_verify_with_each_hash() {
    let d = key_dir("algs");
    let ec = new_key(&d.0, "ec", "ecdsa", &["-b", "256"]);
    let ec384 = new_key(&d.0, "ec384", "ecdsa", &["-b", "384"]);
    let rsa = new_key(&d.0, "rsa", "rsa", &["-b", "2048"]);
    for (name, key) in [("ec", &ec), ("ec384", &ec384), ("rsa", &rsa)] {
        for hash in ["sha256", "sha512"] {
            let sig = sign(&d.0, name, NS, MSG, &["-O", &format!("hashalg={hash}")]);
            verify(&sig, MSG, NS, key).unwrap_or_else(|e| panic!("{name}/{hash}: {e}"));
            assert_eq!(verify(&sig, b"other", NS, key), Err(SshSigError::BadSignature), "{name}/{hash}");
        }
    }
}

#[test]
fn another_keys_signature_is_refused_as_a_key_mismatch() {
    let d = key_dir("other");
    let mine = new_key(&d.0, "mine", "ed25519", &[]);
    new_key(&d.0, "theirs", "ed25519", &[]);
    let sig = sign(&d.0, "theirs", NS, MSG, &[]);
    assert_eq!(verify(&sig, MSG, NS, &mine), Err(SshSigError::KeyMismatch));
}

#[test]
fn a_signature_by_another_key_claiming_mine_is_refused_as_a_bad_signature() {
    let d = key_dir("forged");
    let mine = new_key(&d.0, "mine", "ed25519", &[]);
    new_key(&d.0, "theirs", "ed25519", &[]);
    let sig = unarmor(&sign(&d.0, "theirs", NS, MSG, &[]));
    // Swap the embedded public key (bytes 10..61: string "ssh-ed25519" + 32-byte key) for mine.
    let my_blob =
        base64::engine::general_purpose::STANDARD.decode(mine.split_whitespace().nth(1).unwrap()).unwrap();
    let mut forged = sig.clone();
    forged[14..14 + my_blob.len()].copy_from_slice(&my_blob);
    assert_ne!(forged, sig);
    assert_eq!(verify(&armor(&forged), MSG, NS, &mine), Err(SshSigError::BadSignature));
}

#[test]
fn another_namespace_is_refused() {
    let d = key_dir("ns");
    let key = new_key(&d.0, "id", "ed25519", &[]);
    let sig = sign(&d.0, "id", "file", MSG, &[]);
    assert_eq!(verify(&sig, MSG, NS, &key), Err(SshSigError::Namespace));
    // Namespaces compare exactly: no prefix, no case folding.
    let sig = sign(&d.0, "id", NS, MSG, &[]);
    assert_eq!(verify(&sig, MSG, &NS.to_uppercase(), &key), Err(SshSigError::Namespace));
    assert_eq!(verify(&sig, MSG, "vigo-login", &key), Err(SshSigError::Namespace));
}

#[test]
fn a_tampered_message_is_refused() {
    let d = key_dir("msg");
    let key = new_key(&d.0, "id", "ed25519", &[]);
    let sig = sign(&d.0, "id", NS, MSG, &[]);
    let mut other = MSG.to_vec();
    other[0] ^= 1;
    assert_eq!(verify(&sig, &other, NS, &key), Err(SshSigError::BadSignature));
    assert_eq!(verify(&sig, b"", NS, &key), Err(SshSigError::BadSignature));
}

#[test]
fn truncated_or_garbled_armor_is_refused_as_such() {
    let d = key_dir("armor");
    let key = new_key(&d.0, "id", "ed25519", &[]);
    let sig = sign(&d.0, "id", NS, MSG, &[]);
    let armor_err = |s: &str| matches!(verify(s, MSG, NS, &key), Err(SshSigError::Armor(_)));
    // Cut before the END line, garbage in the body, no armor at all, a wrong label.
    assert!(armor_err(&sig[..sig.len() / 2]));
    assert!(armor_err(&sig.replacen("U1NI", "U1N*", 1)));
    assert!(armor_err("hello"));
    assert!(armor_err(&sig.replace("SSH SIGNATURE", "PGP SIGNATURE")));
    assert!(armor_err(&"A".repeat(MAX_ARMOR + 1)));
    // Well-formed armor around a blob cut short: malformed, not a bad signature.
    let blob = unarmor(&sig);
    for cut in [3, 20, blob.len() - 1] {
        let r = verify(&armor(&blob[..cut]), MSG, NS, &key);
        assert!(matches!(r, Err(SshSigError::Malformed(_))), "cut at {cut}: {r:?}");
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert!(matches!(verify(&armor(&longer), MSG, NS, &key), Err(SshSigError::Malformed(_))));
}

#[test]
fn magic_version_and_hash_fields_are_checked() {
    let d = key_dir("fields");
    let key = new_key(&d.0, "id", "ed25519", &[]);
    let blob = unarmor(&sign(&d.0, "id", NS, MSG, &[]));
    let mut bad = blob.clone();
    bad[0] = b'X';
    assert_eq!(verify(&armor(&bad), MSG, NS, &key), Err(SshSigError::Magic));
    let mut bad = blob.clone();
    bad[9] = 2;
    assert_eq!(verify(&armor(&bad), MSG, NS, &key), Err(SshSigError::Version(2)));
    // The hash name is the string after the namespace and the empty reserved field.
    let at = blob.windows(6).position(|w| w == b"sha512").unwrap();
    let mut bad = blob.clone();
    bad[at..at + 6].copy_from_slice(b"sha384");
    assert_eq!(verify(&armor(&bad), MSG, NS, &key), Err(SshSigError::HashAlgorithm));
}

#[test]
fn stored_keys_are_parsed_and_unusable_ones_refused() {
    let d = key_dir("parse");
    let line = new_key(&d.0, "id", "ed25519", &[]);
    let k = parse_public_key(&line).unwrap();
    assert_eq!(k.algorithm(), "ssh-ed25519");
    assert_eq!(k.comment(), "someone@host");
    let fp = ssh_keygen(&["-l", "-f", "id.pub"], &d.0);
    assert!(String::from_utf8_lossy(&fp.stdout).contains(&k.fingerprint()));

    for bad in ["", "ssh-ed25519", "ssh-ed25519 !!!!", "hello world", &format!("{line}\n{line}")] {
        assert!(matches!(parse_public_key(bad), Err(SshSigError::PublicKey(_))), "{bad:?}");
    }
    // A private key pasted by mistake is refused without being echoed.
    let private = std::fs::read_to_string(d.0.join("id")).unwrap();
    let err = parse_public_key(&private).unwrap_err().to_string();
    assert!(!err.contains("PRIVATE") && !err.contains(&private[40..60]), "{err}");
    // DSA is refused, naming its type.
    let mut dsa = Vec::new();
    for field in [&b"ssh-dss"[..], &[0x7f; 128], &[0x7f; 20], &[0x7f; 128], &[0x7f; 128]] {
        dsa.extend_from_slice(&(field.len() as u32).to_be_bytes());
        dsa.extend_from_slice(field);
    }
    let dsa = format!("ssh-dss {} someone@host", base64::engine::general_purpose::STANDARD.encode(&dsa));
    assert_eq!(parse_public_key(&dsa), Err(SshSigError::KeyType("ssh-dss".into())));
}

#[test]
fn a_signature_by_an_unsupported_key_type_names_the_type() {
    // An RSA key below 2048 bits cannot be made by this ssh-keygen; an sk- signature needs a
    // token. Rewrite the signature's algorithm name instead: the type is named, nothing verified.
    let d = key_dir("type");
    let key = new_key(&d.0, "id", "ed25519", &[]);
    let blob = unarmor(&sign(&d.0, "id", NS, MSG, &[]));
    let at = blob.len() - 64 - 4 - 11;
    assert_eq!(&blob[at..at + 11], b"ssh-ed25519");
    let mut bad = blob.clone();
    bad[at..at + 11].copy_from_slice(b"ssh-ed25518");
    assert_eq!(verify(&armor(&bad), MSG, NS, &key), Err(SshSigError::KeyType("ssh-ed25518".into())));
}
