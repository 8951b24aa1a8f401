//! Binary secret values (not UTF-8): written whole where an attribute takes bytes, refused
//! where text is needed, and scrubbed from reports in the forms a command can print them in.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::*;

/// A text run inside the value, as a certificate has: found in a report, it means the value
/// leaked in some form (raw, lossy, escaped).
const TEXT_RUN: &str = "CN=canary-binary-7c1d";
const KEY: &str = "tls/der";

/// A DER-like blob of `n` bytes or so: NUL, 0xff, a newline, a text run and noise.
fn der_like(n: usize) -> Vec<u8> {
    let mut v = vec![0x30, 0x82, 0x01, 0x0a, 0x00, 0xff];
    v.extend_from_slice(TEXT_RUN.as_bytes());
    v.extend_from_slice(&[0xfe, b'\n']);
    let mut x = 0x1234_5678_9abc_def1u64;
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push((x >> 24) as u8);
    }
    v.push(0xff);
    v
}

fn binary_secret(value: &[u8]) -> BTreeMap<String, SecretBytes> {
    [(KEY.to_string(), SecretBytes::new(value.to_vec()))].into()
}

fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

/// No text a report carries holds the value: not its text run, nor a line of its hex or
/// base64 as `xxd -p`, `base64` and `openssl base64` wrap them.
fn assert_no_binary_leak(r: &RunReport, value: &[u8]) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(value);
    let hex = hex(value);
    let mut needles = vec![TEXT_RUN.to_string()];
    needles.extend(hex.as_bytes().chunks(60).map(|c| String::from_utf8(c.to_vec()).unwrap()));
    needles.extend(b64.as_bytes().chunks(64).map(|c| String::from_utf8(c.to_vec()).unwrap()));
    needles.extend(b64.as_bytes().chunks(76).map(|c| String::from_utf8(c.to_vec()).unwrap()));
    for x in &r.results {
        for text in [&x.output, &x.diff, &x.error] {
            for n in &needles {
                assert!(!text.contains(n.as_str()), "{}: {n:?} leaked in {text:?}", x.name);
            }
        }
    }
}

#[test]
fn a_file_whose_content_is_one_binary_secret_is_written_byte_for_byte() {
    let root = TempRoot::new("bin-file");
    let value = der_like(300);
    let b = bundle(vec![res("der", "file", json!({"target_path": "/cert.der", "content": marker(KEY)}))]);
    let first = run(&b, &binary_secret(&value), &opts(root.path()));
    assert_all(&first, ResourceStatus::Changed);
    assert_eq!(first.results[0].diff, format!("created /cert.der\ncontent changed (secret:{KEY})"));
    assert_eq!(fs::read(root.join("cert.der")).unwrap(), value);
    assert_eq!(fs::metadata(root.join("cert.der")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_no_binary_leak(&first, &value);
    let again = run(&b, &binary_secret(&value), &opts(root.path()));
    assert_all(&again, ResourceStatus::Unchanged);
}

#[test]
fn exec_stdin_and_secret_file_carry_a_binary_value_whole() {
    let root = TempRoot::new("bin-exec");
    let value = der_like(200);
    let m = marker(KEY);
    let stdin_out = root.join("stdin.out");
    let file_out = root.join("file.out");
    let b = bundle(vec![
        res(
            "stdin",
            "exec",
            json!({"command": format!("sh -c 'cat > {}'", stdin_out.display()), "stdin": m}),
        ),
        res(
            "file",
            "exec",
            json!({"command": format!("cp {{{{secret_file}}}} {}", file_out.display()), "secret_file": m}),
        ),
    ]);
    let r = run(&b, &binary_secret(&value), &opts(root.path()));
    assert_all(&r, ResourceStatus::Changed);
    assert_eq!(fs::read(&stdin_out).unwrap(), value);
    assert_eq!(fs::read(&file_out).unwrap(), value);
}

/// What a command may do with a binary value before printing it: print it as it is (the
/// report reads it lossily), in hex as `xxd -p` wraps it, in base64 as `base64` and `openssl
/// base64` wrap it. Every one is scrubbed.
#[test]
fn binary_output_is_scrubbed_raw_and_in_wrapped_hex_and_base64() {
    let root = TempRoot::new("bin-scrub");
    let value = der_like(200);
    let m = marker(KEY);
    let command = "sh -c 'cat; xxd -p {{secret_file}}; base64 {{secret_file}}; openssl base64 -in {{secret_file}}; exit 1'";
    let b = bundle(vec![res("prints", "exec", json!({"command": command, "stdin": m, "secret_file": m}))]);
    let r = run(&b, &binary_secret(&value), &opts(root.path()));
    let x = r.result("prints").unwrap();
    assert_eq!(x.status, ResourceStatus::Failed, "{x:?}");
    // Each tool printed something, and all of it went: the value read as text, 4 base64
    // lines of 76 and 5 of 64, 7 hex lines of 60.
    let redacted = x.output.matches(&format!("[REDACTED secret:{KEY}]")).count();
    assert!(redacted >= 1 + 7 + 4 + 5, "{redacted} redactions in {:?}", x.output);
    // The raw value went whole, not piece by piece: no part of it is left to read as text.
    assert!(x.output.starts_with(&format!("[REDACTED secret:{KEY}]")), "{:?}", x.output);
    assert!(!x.output.contains(char::REPLACEMENT_CHARACTER), "{:?}", x.output);
    assert_no_binary_leak(&r, &value);
}

/// Where text is needed, a binary value is refused with the key and the attribute named, and
/// nothing is written.
#[test]
fn a_binary_value_spliced_into_text_is_refused_naming_the_key_and_the_attribute() {
    let root = TempRoot::new("bin-refuse");
    let value = der_like(64);
    let m = marker(KEY);
    let mut when = res("when", "file", json!({"target_path": "/when", "content": "x"}));
    when.when = Some(format!("{m} == x"));
    let b = bundle(vec![
        res("spliced", "file", json!({"target_path": "/spliced.conf", "content": format!("key={m}\n")})),
        res("mixed-stdin", "exec", json!({"command": "cat", "stdin": format!("{m}\n")})),
        res("path", "file", json!({"target_path": format!("/{m}"), "content": "x"})),
        when,
    ]);
    let r = run(&b, &binary_secret(&value), &opts(root.path()));
    for (name, what) in [
        ("spliced", "attribute \"content\""),
        ("mixed-stdin", "attribute \"stdin\""),
        ("path", "attribute \"target_path\""),
        ("when", "when:"),
    ] {
        let x = r.result(name).unwrap();
        assert_eq!(x.status, ResourceStatus::Failed, "{name}: {x:?}");
        let expected = format!("secret:{KEY} is binary (not UTF-8 text) and {what} needs text");
        assert!(x.error.contains(&expected), "{name}: {}", x.error);
        assert!(x.error.contains(&format!("`content: \"secret:{KEY}\"`")), "{name}: {}", x.error);
    }
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0, "nothing was written");
    assert_no_binary_leak(&r, &value);
}

#[test]
fn a_binary_user_password_is_refused_and_the_account_files_stay() {
    let root = TempRoot::new("bin-password");
    fs::create_dir_all(root.join("etc")).unwrap();
    let shadow = "root:*:19000:0:99999:7:::\n";
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    fs::write(root.join("etc/shadow"), shadow).unwrap();
    let b = bundle(vec![res("dan", "user", json!({"username": "dan", "password": marker(KEY)}))]);
    let r = run(&b, &binary_secret(&der_like(32)), &opts(root.path()));
    let x = r.result("dan").unwrap();
    assert_eq!(x.status, ResourceStatus::Failed);
    assert!(
        x.error.contains(&format!("secret:{KEY} is binary")) && x.error.contains("\"password\""),
        "{}",
        x.error
    );
    assert_eq!(fs::read_to_string(root.join("etc/shadow")).unwrap(), shadow);
    assert!(!fs::read_to_string(root.join("etc/passwd")).unwrap().contains("dan"));
}
