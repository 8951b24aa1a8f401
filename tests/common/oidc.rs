//! The test OpenID Provider: `tests/oidc/provider.mjs` (npm `oidc-provider`, a certified
//! implementation) under Node.js, over HTTPS on 127.0.0.1 with a certificate from a CA made
//! here. `tests/oidc/install.sh` (also run by scripts/test-all.sh) provides its npm modules;
//! a missing node or npm fails the test. The provider exits on its own after `lifetime`, when
//! its stdin closes (this process died), and is killed when [`TestProvider`] drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost, as PEM.
pub struct TestCa {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "Vigo test OIDC CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        let cert = params.signed_by(&key, &Issuer::from_params(&ca_params, &ca_key)).unwrap();
        TestCa { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// How the provider is set up. `misbehave` is one of provider.mjs's MISBEHAVIOURS:
/// `wrong_aud`, `wrong_iss`, `expired`, `bad_signature`, `alg_none`, `hs256_public_key`,
/// `wrong_nonce`, `unknown_kid`, `rotated_key`.
#[derive(Clone, Debug)]
pub struct ProviderOptions {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    /// Log this account in without showing the form (`None`: the form is shown).
    pub auto_login: Option<String>,
    /// `RS256`, `ES256` or `EdDSA`.
    pub id_token_alg: &'static str,
    pub misbehave: Option<&'static str>,
    /// JSON array of `{"sub", "email", "preferred_username", "name"}`; `None`: alice and bob.
    pub accounts_json: Option<String>,
    pub lifetime: Duration,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        ProviderOptions {
            client_id: "vigo-console".into(),
            client_secret: "test-client-secret-5b1e0c".into(),
            redirect_uri: "https://127.0.0.1:8443/auth/oidc/callback".into(),
            auto_login: Some("alice".into()),
            id_token_alg: "RS256",
            misbehave: None,
            accounts_json: None,
            lifetime: Duration::from_secs(300),
        }
    }
}

/// What the provider sent the browser back with.
#[derive(Debug, Clone)]
pub struct Callback {
    pub code: String,
    pub state: String,
    pub iss: Option<String>,
}

pub struct TestProvider {
    child: Child,
    pub issuer: String,
    pub port: u16,
    pub ca: TestCa,
    pub options: ProviderOptions,
    dir: TempDir,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs tests/oidc/install.sh once per test process (a no-op when the cache is there).
fn install_node_modules() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf();
        let out = Command::new("bash")
            .arg(repo().join("tests/oidc/install.sh"))
            .arg(&target)
            .output()
            .expect("bash must be installed");
        assert!(
            out.status.success(),
            "tests/oidc/install.sh failed (the OIDC tests need node and npm; scripts/test-all.sh \
             installs the modules):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

impl TestProvider {
    pub fn start(options: ProviderOptions) -> TestProvider {
        install_node_modules();
        let dir = TempDir::new("oidc-provider");
        let ca = TestCa::new();
        std::fs::write(dir.join("cert.pem"), &ca.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &ca.key_pem).unwrap();
        std::fs::write(dir.join("ca.pem"), &ca.ca_pem).unwrap();
        let stdout = std::fs::File::create(dir.join("stdout")).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
        let mut cmd = Command::new("node");
        cmd.arg(repo().join("tests/oidc/provider.mjs"))
            .env("OIDC_CERT", dir.join("cert.pem"))
            .env("OIDC_KEY", dir.join("key.pem"))
            .env("OIDC_CLIENT_ID", &options.client_id)
            .env("OIDC_CLIENT_SECRET", &options.client_secret)
            .env("OIDC_REDIRECT_URI", &options.redirect_uri)
            .env("OIDC_ID_TOKEN_ALG", options.id_token_alg)
            .env("OIDC_LIFETIME_SECS", options.lifetime.as_secs().to_string())
            .env_remove("OIDC_AUTO_LOGIN")
            .env_remove("OIDC_MISBEHAVE")
            .env_remove("OIDC_ACCOUNTS")
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr);
        if let Some(a) = &options.auto_login {
            cmd.env("OIDC_AUTO_LOGIN", a);
        }
        if let Some(m) = options.misbehave {
            cmd.env("OIDC_MISBEHAVE", m);
        }
        if let Some(a) = &options.accounts_json {
            cmd.env("OIDC_ACCOUNTS", a);
        }
        let child =
            cmd.spawn().expect("node must be installed (Node.js 20+) to run the test OpenID Provider");
        let mut provider = TestProvider { child, issuer: String::new(), port: 0, ca, options, dir };
        provider.wait_until_listening();
        provider
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = std::fs::read_to_string(self.dir.join("stdout")).unwrap_or_default();
            if let Some(line) = out.lines().next().filter(|_| out.contains('\n')) {
                let v: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("provider.mjs printed {line:?} first: {e}\n{}", self.log()));
                self.issuer = v["issuer"].as_str().unwrap().to_string();
                self.port = v["port"].as_u64().unwrap() as u16;
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the test OpenID Provider exited ({status}) before listening:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the test OpenID Provider did not start in 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the provider wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Stops the provider now (tests that need it gone before they go on).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Plays the browser: follows the provider's redirects from `authorization_url` with curl and
    /// a cookie jar until it redirects to the client's redirect URI. With `login`, the login
    /// form is filled in with that name; without, the provider must log in on its own.
    pub fn authorize(&self, authorization_url: &str, login: Option<&str>) -> Result<Callback, String> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let jar = self.dir.join(&format!("cookies-{}", N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
        let mut next = authorization_url.to_string();
        let mut form = login;
        for _ in 0..12 {
            if next.starts_with(&self.options.redirect_uri) {
                return parse_callback(&next);
            }
            let mut args = vec!["-sS", "--max-time", "15", "--proto", "=https", "-o", "/dev/null"];
            args.extend(["-w", "%{http_code} %{redirect_url}"]);
            let ca = self.ca_path().display().to_string();
            let jar = jar.display().to_string();
            args.extend(["--cacert", &ca, "-b", &jar, "-c", &jar]);
            let mut target = next.clone();
            let body;
            // The login form posts to /interaction/UID/login.
            if let (Some(name), true) = (form, next.contains("/interaction/")) {
                if self.shows_form(&next, &ca, &jar)? {
                    target = format!("{next}/login");
                    body = format!("login={name}");
                    args.extend(["--data", &body]);
                    form = None;
                }
            }
            args.push(&target);
            let out = Command::new("curl").args(&args).output().map_err(|e| format!("curl: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if !out.status.success() {
                return Err(format!("curl {target}: {}", String::from_utf8_lossy(&out.stderr)));
            }
            let (status, location) = text.split_once(' ').unwrap_or((&text, ""));
            if location.is_empty() {
                return Err(format!("{target} answered HTTP {status} without a redirect"));
            }
            next = location.to_string();
        }
        Err("more than 12 redirects".into())
    }

    fn shows_form(&self, url: &str, ca: &str, jar: &str) -> Result<bool, String> {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "15", "--cacert", ca, "-b", jar, "-c", jar, url])
            .output()
            .map_err(|e| format!("curl: {e}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).contains("name=\"login\""))
    }
}

fn parse_callback(url: &str) -> Result<Callback, String> {
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    let get = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.to_string());
    if let Some(err) = get("error") {
        return Err(format!("the provider answered error={err}"));
    }
    Ok(Callback {
        code: get("code").ok_or("no code in the callback")?,
        state: get("state").ok_or("no state in the callback")?,
        iss: get("iss"),
    })
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.stop();
    }
}
