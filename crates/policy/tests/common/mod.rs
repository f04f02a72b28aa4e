//! What the policy tests share.

use ward_policy::{Acl, Policy};

/// The ACL of the policies `policies` (HCL texts, named `p0`, `p1`...).
pub(crate) fn acl(policies: &[&str]) -> Acl {
    let parsed: Vec<Policy> = policies
        .iter()
        .enumerate()
        .map(|(i, text)| Policy::parse(&format!("p{i}"), text).unwrap())
        .collect();
    Acl::new(&parsed)
}
