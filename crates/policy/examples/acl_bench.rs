//! Micro-benchmark of ACL checks: `cargo run --release -p ward-policy --example acl_bench`.
//!
//! Builds an ACL from the default policy plus 50 team policies (exact paths, globs and `+`
//! patterns, 400+ rules in all) and times `allows` / `capabilities` on a mix of paths that
//! hit exact rules, glob rules, `+` rules, and nothing.

use std::hint::black_box;
use std::time::Instant;

use ward_policy::{Acl, Capability, Policy, PolicyError};

fn team_policy(team: usize) -> Result<Policy, PolicyError> {
    let text = format!(
        r#"
path "secret/data/team{team}/*" {{ capabilities = ["create", "read", "update", "delete"] }}
path "secret/metadata/team{team}/*" {{ capabilities = ["list", "read"] }}
path "secret/data/team{team}/private" {{ capabilities = ["deny"] }}
path "transit/encrypt/team{team}-key" {{ capabilities = ["update"] }}
path "transit/decrypt/team{team}-key" {{ capabilities = ["update"] }}
path "secret/data/+/shared/team{team}" {{ capabilities = ["read"] }}
path "kv/+/team{team}/+/config*" {{ capabilities = ["read", "list"] }}
path "database/creds/team{team}-ro" {{ capabilities = ["read"] }}
"#
    );
    Policy::parse(&format!("team{team}"), &text)
}

fn main() -> Result<(), PolicyError> {
    let mut policies = vec![Policy::default_policy()];
    for team in 0..50 {
        policies.push(team_policy(team)?);
    }
    let rules: usize = policies.iter().map(|p| p.rules().len()).sum();

    let started = Instant::now();
    let acl = Acl::new(&policies);
    let build = started.elapsed();

    let paths = [
        ("exact hit", "transit/encrypt/team7-key"),
        ("exact (deny)", "secret/data/team7/private"),
        ("glob hit", "secret/data/team42/app/db"),
        ("+ hit", "secret/data/x/shared/team3"),
        ("+ and * hit", "kv/prod/team9/app/config/db"),
        ("default policy", "auth/token/lookup-self"),
        ("miss", "sys/mounts/secret/tune"),
    ];
    println!(
        "ACL of {} policies, {rules} rules, built in {build:?}",
        policies.len()
    );
    let iterations: u32 = 2_000_000;
    for (label, path) in paths {
        let started = Instant::now();
        let mut allowed = 0u32;
        for _ in 0..iterations {
            allowed += u32::from(acl.allows(black_box(path), black_box(Capability::Read)));
        }
        let elapsed = started.elapsed();
        println!(
            "{label:>15}: {:>6.1} ns/check  ({:.1} M checks/s; read allowed: {})  {path}",
            elapsed.as_nanos() as f64 / f64::from(iterations),
            f64::from(iterations) / elapsed.as_secs_f64() / 1e6,
            allowed == iterations,
        );
    }
    let started = Instant::now();
    let mut reported = 0usize;
    for _ in 0..iterations {
        for (_, path) in paths {
            reported += acl.capabilities(black_box(path)).as_strs().len();
        }
    }
    let per = started.elapsed().as_nanos() as f64 / (f64::from(iterations) * paths.len() as f64);
    println!("capabilities()+as_strs() over the mix: {per:.1} ns/path ({reported} names)");
    Ok(())
}
