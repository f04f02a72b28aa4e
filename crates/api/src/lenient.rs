//! Deserializers for fields Vault decodes "weakly": Go's mapstructure turns `2` into `"2"`
//! for string maps, so clients send either.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A scalar that Vault would accept where it wants a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Self::Text(t) => t,
            Self::Integer(i) => i.to_string(),
            Self::Float(f) => f.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

/// `Option<map string → string>` accepting numbers and booleans as values, `null` as None.
pub(crate) fn string_map<'de, D>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw: Option<BTreeMap<String, Scalar>> = Option::deserialize(deserializer)?;
    Ok(raw.map(|map| map.into_iter().map(|(k, v)| (k, v.into_string())).collect()))
}
