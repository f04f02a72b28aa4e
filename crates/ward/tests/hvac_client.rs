//! hvac 2.4, the Python client most applications use, unchanged against a real Ward: KV v2,
//! transit (RSA-OAEP included), mounts, policies, tokens and AppRole (`clients/hvac_calls.py`).
//! The same script passes against `bao server -dev` (OpenBao 2.7.2). `scripts/test`
//! installs hvac beside `bao` and names its Python in `WARD_TEST_PYTHON`; without it this
//! test fails, it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::Server;

#[test]
fn hvac_daily_calls_work_unchanged() {
    let python = std::env::var("WARD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/hvac_calls.py");
    let server = Server::start();
    let out = Command::new(&python)
        .arg(script)
        .env("VAULT_ADDR", server.addr())
        .env("VAULT_TOKEN", server.root_token())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} ({e}); scripts/test installs hvac"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "hvac calls failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("hvac: all calls passed"), "{stdout}");
}
