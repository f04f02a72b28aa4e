//! The core knows no HTTP and opens no connection (DESIGN.md's layering): none of its
//! dependencies, direct or not, is an HTTP stack. The transport owns those.

use std::process::Command;

#[test]
fn core_depends_on_no_http_crate() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "ward-core",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("ward-store"), "{tree}");
    for http in [
        "reqwest", "hyper", "axum", "http", "h2", "tower", "ureq", "rustls",
    ] {
        let found: Vec<&str> = tree
            .lines()
            .filter(|line| line.split(' ').next() == Some(http))
            .collect();
        assert!(found.is_empty(), "ward-core depends on {found:?}");
    }
}
