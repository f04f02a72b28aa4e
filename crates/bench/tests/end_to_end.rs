//! The benchmark binary run end to end against the trivial server it starts from itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

#[test]
fn a_short_run_on_the_trivial_server_reports_every_figure_as_json() {
    let output = Command::new(env!("CARGO_BIN_EXE_ward-bench"))
        .args([
            "--targets",
            "trivial",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
            "--concurrency",
            "4",
            "--starts",
            "2",
            "--idle",
            "100ms",
            "--rounds",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();

    let rows = report["load"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report}");
    let row = &rows[0];
    assert_eq!(row["scenario"], "trivial");
    assert_eq!(row["target"], "trivial");
    assert!(row["ok"].as_u64().unwrap() > 0, "{row}");
    assert_eq!(row["non_2xx"], 0);
    assert_eq!(row["failed"], 0);
    assert!(row["p99_ms"].as_f64().unwrap() >= row["p50_ms"].as_f64().unwrap());
    assert_eq!(row["rps_rounds"].as_array().unwrap().len(), 2);

    let startup = &report["startup"][0];
    assert_eq!(startup["samples_ms"].as_array().unwrap().len(), 2);
    assert!(startup["median_ms"].as_f64().unwrap() > 0.0);
    assert!(report["idle_rss"][0]["mb"].as_f64().unwrap() > 0.5);
    // No Ward, so no ratio and no verdicts.
    assert_eq!(report["goals"].as_array().unwrap().len(), 0);
}

#[test]
fn a_missing_ward_binary_fails_with_the_build_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_ward-bench"))
        .args(["--targets", "ward", "--ward-bin", "/nonexistent/ward"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cargo build --release"), "{stderr}");
}
