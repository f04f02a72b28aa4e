//! Policy names: Vault's normalisation (trim, lowercase) plus Ward's validation.

use crate::error::PolicyError;

/// The longest policy name accepted, in bytes.
pub const MAX_POLICY_NAME_LEN: usize = 128;

/// The name of the built-in policy that allows everything.
pub const ROOT_POLICY_NAME: &str = "root";
/// The name of the built-in policy attached to every token by default.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// Vault's immutable policies: they can be neither written nor deleted through the API.
const RESERVED: [&str; 3] = [ROOT_POLICY_NAME, "response-wrapping", "control-group"];

/// Normalises a policy name as Vault does (surrounding spaces trimmed, lowercased) and
/// checks that it is usable: non-empty, at most [`MAX_POLICY_NAME_LEN`] bytes, only ASCII
/// letters, digits, `-`, `_`, `.` and `@` (so never `/`), and not `.` or `..`.
///
/// Reserved names pass: callers that write or delete policies check [`is_reserved`].
pub fn normalize_policy_name(name: &str) -> Result<String, PolicyError> {
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(PolicyError::EmptyName);
    }
    if name.len() > MAX_POLICY_NAME_LEN {
        return Err(PolicyError::NameTooLong {
            len: name.len(),
            max: MAX_POLICY_NAME_LEN,
        });
    }
    if let Some(found) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')))
    {
        return Err(PolicyError::InvalidNameChar { name, found });
    }
    if name == "." || name == ".." {
        return Err(PolicyError::DotName(name));
    }
    Ok(name)
}

/// Whether `name` (normalised first) is a built-in policy that can be neither created,
/// modified nor deleted: `root`, and Vault's other immutable names (`response-wrapping`,
/// `control-group`). `default` is not reserved: it can be modified but not deleted (see
/// [`is_undeletable`]).
pub fn is_reserved(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    RESERVED.contains(&name.as_str())
}

/// Whether `name` (normalised first) cannot be deleted: the reserved names and `default`.
pub fn is_undeletable(name: &str) -> bool {
    is_reserved(name) || name.trim().eq_ignore_ascii_case(DEFAULT_POLICY_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_lowercased() {
        assert_eq!(normalize_policy_name("  My-Policy ").unwrap(), "my-policy");
        assert_eq!(
            normalize_policy_name("team.ops_1@x").unwrap(),
            "team.ops_1@x"
        );
    }

    #[test]
    fn bad_names_are_rejected() {
        assert_eq!(normalize_policy_name("  "), Err(PolicyError::EmptyName));
        assert!(matches!(
            normalize_policy_name("a/b"),
            Err(PolicyError::InvalidNameChar { found: '/', .. })
        ));
        assert!(matches!(
            normalize_policy_name("é"),
            Err(PolicyError::InvalidNameChar { found: 'é', .. })
        ));
        assert!(matches!(
            normalize_policy_name(&"a".repeat(MAX_POLICY_NAME_LEN + 1)),
            Err(PolicyError::NameTooLong { .. })
        ));
        assert!(normalize_policy_name(&"a".repeat(MAX_POLICY_NAME_LEN)).is_ok());
        assert!(matches!(
            normalize_policy_name(".."),
            Err(PolicyError::DotName(_))
        ));
    }

    #[test]
    fn reserved_and_undeletable() {
        assert!(is_reserved("root"));
        assert!(is_reserved(" ROOT "));
        assert!(is_reserved("response-wrapping"));
        assert!(!is_reserved("default"));
        assert!(is_undeletable("Default"));
        assert!(is_undeletable("root"));
        assert!(!is_undeletable("admin"));
    }
}
