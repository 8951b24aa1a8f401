//! Host names resolve through real DNS, without NSS: a dnsmasq started here on 127.0.0.1 answers
//! `vigo.test`, `VIGO_DNS_SERVERS` points every role at it, and the server listens on, the CLI
//! reaches, and an agent enrolls and runs against `vigo.test`. No dnsmasq is a failure, not a
//! skip: scripts/test-all.sh installs it (Debian package dnsmasq-base).

mod common;

use common::fleet::Fleet;
use common::*;
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A dnsmasq answering `vigo.test` (and its subdomains) with 127.0.0.1 and nothing else.
struct Dnsmasq {
    child: Child,
    port: u16,
}

impl Dnsmasq {
    fn start() -> Dnsmasq {
        let exe = ["/usr/sbin/dnsmasq", "/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("dnsmasq must be installed for the DNS tests (apt-get install -y dnsmasq-base)");
        for _ in 0..5 {
            // A port free for UDP now; dnsmasq binds it (and TCP) a moment later.
            let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut cmd = Command::new(exe);
            cmd.args([
                "--keep-in-foreground",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--address=/vigo.test/127.0.0.1",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--log-facility=-",
            ]);
            if nix::unistd::getuid().is_root() {
                cmd.arg("--user=root");
            }
            let mut child =
                cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Dnsmasq { child, port };
                }
                if child.try_wait().unwrap().is_some() {
                    break; // the port was taken in between: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            eprintln!("dnsmasq did not start on {port}: {}", String::from_utf8_lossy(&out.stderr));
        }
        panic!("dnsmasq did not start");
    }

    fn servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn server_cli_and_agent_reach_each_other_by_a_dns_name() {
    let dns = Dnsmasq::start();
    let mut f = Fleet::new("dns-name");
    // A certificate for the name, as an operator would make one.
    let out =
        run_in(&f.base(), "vigocli", &["secrets", "generate-certs", "--force", "--san", "vigo.test"], "");
    assert_code(&out, 0);
    f.extra_env.push(("VIGO_DNS_SERVERS".into(), dns.servers()));
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"web*\"\n    roles: [web]\n"),
        ("modules/web.vgo", "resources:\n  - name: d\n    type: directory\n    target_path: /etc/dns-test\n"),
    ]);
    // The listen addresses are names too.
    f.start_server_on("vigo.test:0", "vigo.test:0");
    assert!(f.agent_addr.starts_with("127.0.0.1:"), "{}", f.agent_addr);
    let agent_port = f.agent_addr.rsplit(':').next().unwrap().to_string();
    let api_port = f.api_addr.rsplit(':').next().unwrap().to_string();

    let url = format!("https://vigo.test:{api_port}");
    let out = f.cli(&["--server", &url, "envoys", "list", "-o", "json"], "");
    assert_code(&out, 0);

    f.agent_addr = format!("vigo.test:{agent_port}");
    f.enroll("web1");
    let out = f.run_once("web1");
    assert_code(&out, 0);
    assert!(f.root("web1").join("etc/dns-test").is_dir());

    // A name DNS does not know is named in the error, with where the answer was sought.
    let out = f.cli(&["--server", &format!("https://nowhere.invalid:{api_port}"), "envoys", "list"], "");
    assert_code(&out, 2);
    let t = text(&out);
    assert!(t.contains("cannot resolve \"nowhere.invalid\"") && t.contains(&dns.servers()), "{t}");
    f.stop_server();
}
