//! One config file for every role on a host: the CLI finds the server, the vault and the TLS
//! directory the server uses from it, and an agent can be pointed at a moved server.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::fleet::{Fleet, PASS};
use common::*;

/// Runs a role with `VIGO_CONFIG=config` and no `VIGO_BASE_DIR` or `VIGO_SERVER`: everything
/// comes from the file.
fn with_config(role_name: &str, config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(role(role_name))
        .env_remove("LD_LIBRARY_PATH")
        .args(args)
        .env_remove("VIGO_BASE_DIR")
        .env_remove("VIGO_SERVER")
        .env("VIGO_CONFIG", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn the_cli_finds_the_server_vault_and_tls_directory_in_the_config_file() {
    let dir = TempDir::new("settings-file");
    let base = dir.join("state");
    let config = dir.join("vigo.yaml");
    std::fs::write(
        &config,
        format!(
            "base_dir: {base}\ntls_dir: {tls}\napi_listen: 127.0.0.1:0\nlisten: 127.0.0.1:0\nsecrets:\n  secrets_dir: {vault}\n",
            base = base.display(),
            tls = dir.join("pki").display(),
            vault = dir.join("vault").display(),
        ),
    )
    .unwrap();
    let pass = format!("{PASS}\n{PASS}\n");
    assert_code(&with_config("vigocli", &config, &["secrets", "init"], &pass), 0);
    assert_code(&with_config("vigocli", &config, &["secrets", "unlock"], &format!("{PASS}\n")), 0);
    assert_code(&with_config("vigocli", &config, &["secrets", "set", "raw", "app/k"], "v1"), 0);
    assert_code(&with_config("vigocli", &config, &["secrets", "generate-certs"], ""), 0);
    assert!(dir.join("pki/ca").exists() && dir.join("vault/app/k").exists());
    assert!(!base.join("tls").exists() && !base.join("secrets").exists(), "nothing in the default places");

    // The server reads the same file. Port 0 picks a free port, so the CLI gets a copy of the
    // file naming the port the server took.
    let mut server = Command::new(role("vigosrv"))
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("VIGO_BASE_DIR")
        .env("VIGO_CONFIG", &config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let line = std::io::BufReader::new(server.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("listening agent="))
        .expect("server started");
    let api = line.split("api=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let port = api.rsplit_once(':').unwrap().1;
    let mut text_of = std::fs::read_to_string(&config).unwrap();
    text_of = text_of.replace("api_listen: 127.0.0.1:0", &format!("api_listen: 127.0.0.1:{port}"));
    let client_config = dir.join("client.yaml");
    std::fs::write(&client_config, text_of).unwrap();
    // No --server, no VIGO_SERVER: the CLI takes api_listen, the CA and the token from the file.
    let out = with_config("vigocli", &client_config, &["envoys", "list"], "");
    let _ = server.kill();
    let _ = server.wait();
    assert_code(&out, 0);
    assert!(text(&out).contains("no envoys enrolled"), "{}", text(&out));
}

#[test]
fn an_agent_is_moved_to_another_address_of_its_server() {
    let mut f = Fleet::new("settings-move");
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"*\"\n    roles: [base]\n"),
        ("modules/base.vgo", "resources:\n  - name: motd\n    type: file\n    target_path: /etc/motd\n    content: \"hi\\n\"\n"),
    ]);
    f.start_server();
    let agent = f.enroll("web1");
    let port = f.agent_addr.rsplit_once(':').unwrap().1.to_string();
    let state = || std::fs::read_to_string(agent.join("agent.json")).unwrap();
    // A wrong address is tried and refused; the recorded one stays.
    let out = f.agent("web1", &["set-server", "127.0.0.1:1"]);
    assert_code(&out, 1);
    assert!(text(&out).contains("stays 127.0.0.1:"), "{}", text(&out));
    assert!(state().contains(&f.agent_addr));
    // Another name of the same server (in its certificate) is accepted and recorded.
    let moved = format!("localhost:{port}");
    let out = f.agent("web1", &["set-server", &moved]);
    assert_code(&out, 0);
    assert!(state().contains(&moved), "{}", state());
    assert_code(&f.run_once("web1"), 0);
    // The config file's agent.server wins over the recorded address (here: a dead one).
    let config = f.dir.join("agent.yaml");
    std::fs::write(&config, "agent:\n  server: 127.0.0.1:1\n").unwrap();
    let root = f.root("web1");
    let out = f.run_role(
        "vigo-agent",
        &agent,
        &["run", "--once", "--root", root.to_str().unwrap()],
        "",
        &[("VIGO_CONFIG", config.display().to_string())],
    );
    assert_code(&out, 1);
    assert!(text(&out).contains("127.0.0.1:1"), "{}", text(&out));
}
