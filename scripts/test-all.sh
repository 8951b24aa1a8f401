#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the outside tools the tests use, then
# formatting, lints and every test. Needs root (or sudo) for apt on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Outside tools the suite checks Vigo against (none of them written by this project).
# cfengine3 and puppet: the peers examples/apply_bench runs side by side.
# xxd: one of the ways tests/canary_sweep.rs prints a binary secret (`xxd -p`).
# dnsmasq-base: the real DNS server tests/dns.rs starts on 127.0.0.1 (the binary alone, no service).
# openssh-client: ssh-keygen -Y sign makes the isowebauth signatures src/auth/sshsig.rs checks.
# curl: plays the browser through the test OpenID Provider (tests/common/oidc.rs).
# ca-certificates: the system CA bundle the OIDC client can trust (src/auth/https.rs).
# chromium, fonts-dejavu-core: the headless browser tests/console_browser.rs drives (with
# playwright-core from npm), and a font for its screenshots.
# strace: the tracer tests/release.rs attaches to the server (a tamper signal).
# rsyslog, rsyslog-gnutls: the syslog receiver (TLS listener, gtls driver) tests/audit_sinks.rs
# starts with its own config; prometheus: `promtool check metrics` in tests/metrics.rs.
# rpm, lintian, rpmlint, systemd, mmdebstrap, util-linux: tests/packages.rs builds the .deb and
# .rpm (packaging/build.sh: dpkg-deb, rpmbuild), checks them with lintian and rpm -qlp, the units
# with systemd-analyze verify/security, and installs the .deb in a Debian root mmdebstrap makes
# (unshare and setpriv from util-linux run it in private namespaces); binutils: build.sh strips.
# cron: Debian's crontab is the judge of the cron schedules the config compiler accepts
# (src/agent/engine/tests/systypes.rs); unshare (util-linux) gives the sysctl test its own
# network namespace. jq: the custom executor example in docs/EXECUTORS.md, which
# src/agent/engine/tests/custom.rs runs as written. apt-utils (apt-ftparchive), gnupg,
# dpkg-dev: tests/packages.rs builds and signs the local apt repository the repository and
# package resources install from.
packages=(openssl xxd python3 python3-argon2 python3-grpcio python3-grpc-tools python3-cryptography whois sslscan dpkg iproute2 argon2 mount cfengine3 puppet dnsmasq-base openssh-client curl ca-certificates chromium fonts-dejavu-core strace rsyslog rsyslog-gnutls prometheus rpm lintian rpmlint systemd mmdebstrap util-linux binutils cron jq apt-utils gnupg dpkg-dev)
# The outside tools and npm modules come over the network while cargo compiles (no build step
# needs them, so this saves their minutes on a fresh machine): started first, waited for before
# the first test runs. Their output goes to a log, printed if they fail.
install_tools() {
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing test tools: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi

  # The test OpenID Provider (npm oidc-provider, tests/oidc/) runs on Node.js, which the machine
  # provides: without node and npm the OIDC tests cannot run, so stop here and say so.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "scripts/test-all.sh: node and npm (Node.js 20+) are required by tests/oidc_flow.rs and tests/console_browser.rs" >&2
    exit 1
  fi
  # npm ci into target/oidc-node/<lockfile hash> and target/console-node/<lockfile hash> (the
  # browser driver, playwright-core, which uses Debian's chromium and downloads no browser),
  # each skipped when its cache exists.
  bash tests/oidc/install.sh "${CARGO_TARGET_DIR:-target}" >/dev/null
  bash tests/console/install.sh "${CARGO_TARGET_DIR:-target}" >/dev/null
}
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
tools_log="$target_dir/test-tools.log"
install_tools > "$tools_log" 2>&1 &
tools=$!
# A compile step that fails still lets apt finish: an apt killed halfway leaves dpkg broken.
trap 'wait "$tools" 2>/dev/null || true' EXIT

rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --check
cargo clippy --all-targets -- -D warnings
# The benchmark smoke tests run the example programs themselves.
cargo build --examples
cargo test --all-targets --no-run
if ! wait "$tools"; then
  cat "$tools_log" >&2
  echo "scripts/test-all.sh: installing the test tools failed (above)" >&2
  exit 1
fi
cargo test --all-targets
