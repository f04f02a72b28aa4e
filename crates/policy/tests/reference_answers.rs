//! Replays answers recorded from a real OpenBao 2.7.2 server (`sys/capabilities` for a token
//! holding the case's policies; see fixtures/gen_reference_answers.py): Vault's documented
//! priority examples, merging and deny across policies, and 60 random sets of `+`/`*`
//! patterns probed with random paths. Ward must give the same answer for every path,
//! paths ending in `/` included (HashiCorp Vault since 1.15.2 answers some of those
//! differently; Ward follows OpenBao, whose order lets a folder's `deny` stop its LIST).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde_json::Value;
use ward_policy::{Acl, Policy};

#[test]
fn ward_answers_like_openbao_for_every_recorded_path() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/reference_answers.json")).unwrap();
    let cases = fixture.as_array().unwrap();
    assert!(cases.len() >= 60, "fixture lost its cases");
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let policies: Vec<Policy> = case["policies"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, text)| Policy::parse(&format!("{name}-{i}"), text.as_str().unwrap()).unwrap())
            .collect();
        let acl = Acl::new(&policies);
        let answers: BTreeMap<String, Vec<String>> =
            serde_json::from_value(case["answers"].clone()).unwrap();
        for (path, expected) in answers {
            checked += 1;
            let ours = acl.capabilities(&path).as_strs();
            if ours != expected {
                mismatches.push(format!(
                    "{name}: {path:?}: OpenBao {expected:?}, Ward {ours:?}\n{}",
                    case["policies"]
                ));
            }
        }
    }
    eprintln!("{checked} paths checked");
    assert!(checked > 2000, "only {checked} paths checked");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
