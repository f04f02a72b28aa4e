//! HMAC'd copies of JSON values, for audit entries: every leaf value (strings, numbers and
//! booleans, map values and list items, at any depth) replaced by its `hmac-sha256:` under
//! the device's key; a number or boolean is HMAC'd as its JSON text (`1234`, `true`), which
//! is what `sys/audit-hash` is then given to find it. A PIN or a port is as secret as a
//! password. Keys and nulls are kept: they say what the data is, not what it holds. Written
//! from a tree while it is serialised, or straight from JSON text.

use serde_json::{Map, Value};

use super::entry::Hasher;

/// Serialises a value with every string HMAC'd, as [`Hasher::hash_value`] would, without
/// building the hashed copy first.
pub(super) struct Hashed<'a>(pub(super) &'a Value, pub(super) &'a Hasher);

impl serde::Serialize for Hashed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self.0 {
            Value::String(v) => s.serialize_str(&self.1.hash(v)),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Hashed(item, self.1))?;
                }
                seq.end()
            }
            Value::Object(map) => HashedMap(map, self.1).serialize(s),
            Value::Number(n) => s.serialize_str(&self.1.hash(&n.to_string())),
            Value::Bool(b) => s.serialize_str(&self.1.hash(if *b { "true" } else { "false" })),
            Value::Null => s.serialize_unit(),
        }
    }
}

/// A map serialised with every string in its values HMAC'd.
pub(super) struct HashedMap<'a>(pub(super) &'a Map<String, Value>, pub(super) &'a Hasher);

impl serde::Serialize for HashedMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut out = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            out.serialize_entry(k, &Hashed(v, self.1))?;
        }
        out.end()
    }
}

/// Appends the JSON text `json` to `out` with every string in it HMAC'd, as [`Hashed`]
/// writes the parsed tree, but read straight from the text: a KV read's data is held
/// serialised, and parsing it into a tree only to write it again would cost more than the
/// HMACs.
pub(super) fn write_hashed_json(
    out: &mut Vec<u8>,
    json: &str,
    h: &Hasher,
) -> serde_json::Result<()> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(json);
    HashInto { out, h }.deserialize(&mut de)?;
    de.end()
}

/// Writes the JSON value it is given to `out`, strings HMAC'd (object keys kept).
struct HashInto<'o, 'h> {
    out: &'o mut Vec<u8>,
    h: &'h Hasher,
}

impl HashInto<'_, '_> {
    fn nested(&mut self) -> HashInto<'_, '_> {
        HashInto {
            out: self.out,
            h: self.h,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for HashInto<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for HashInto<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    // Numbers and booleans are HMAC'd as the text serde_json writes for them, as
    // [`Hashed`] does from a tree (`Number`'s text is the same).
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.h
            .write_hash(self.out, if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.h.write_hash(self.out, itoa::Buffer::new().format(v));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.h.write_hash(self.out, itoa::Buffer::new().format(v));
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        let text = serde_json::Number::from_f64(v)
            .ok_or_else(|| E::custom("a JSON number is finite"))?
            .to_string();
        self.h.write_hash(self.out, &text);
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.h.write_hash(self.out, v);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.out.push(b'[');
        let mut first = true;
        loop {
            let mark = start_item(self.out, first);
            if seq.next_element_seed(self.nested())?.is_none() {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.out.push(b'{');
        let mut first = true;
        loop {
            let mark = start_item(self.out, first);
            if map.next_key_seed(KeyInto(self.out))?.is_none() {
                self.out.truncate(mark);
                break;
            }
            self.out.push(b':');
            map.next_value_seed(self.nested())?;
            first = false;
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// Starts the next item of a list or object: writes the comma before all but the first, and
/// returns where the item starts, to take it back if there is none.
fn start_item(out: &mut Vec<u8>, first: bool) -> usize {
    let mark = out.len();
    if !first {
        out.push(b',');
    }
    mark
}

/// Writes an object key to the output as it is (escaped as JSON).
struct KeyInto<'o>(&'o mut Vec<u8>);

impl<'de> serde::de::DeserializeSeed<'de> for KeyInto<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeyInto<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        serde_json::to_writer(&mut *self.0, v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use zeroize::Zeroizing;

    /// `object` (serialised JSON object) with `"key": <value>` added at the end, the value
    /// serialised with its strings HMAC'd.
    fn with_hashed(mut object: String, key: &str, value: &impl serde::Serialize) -> String {
        let hashed = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
        object.pop();
        if object.len() > 1 {
            object.push(',');
        }
        object.push('"');
        object.push_str(key);
        object.push_str("\":");
        object.push_str(&hashed);
        object.push('}');
        object
    }

    /// The text path writes what the tree path writes, for every kind of JSON value.
    #[test]
    fn data_hashed_from_its_text_matches_the_hashed_tree() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let texts = [
            r#"{"data":{"value":"s3cret"},"metadata":{"created_time":"2026-12-02T20:44:11Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":1}}"#,
            r#"{}"#,
            r#"[]"#,
            r#"[1,-2,3.5,1e300,18446744073709551615,-9223372036854775808,true,false,null,"x",[],{}]"#,
            r#"{"esc\"aped\nkey\u0001":"va\"lue\u00e9","uni":"caf\u00e9 \ud83d\ude00","nested":{"a":[{"b":["c",{"d":""}]}]}}"#,
            r#" { "spaced" : [ 1 , "two" ] } "#,
            r#""a bare string""#,
            r#"42"#,
        ];
        for text in texts {
            let mut from_text = Vec::new();
            write_hashed_json(&mut from_text, text, &h).unwrap();
            let tree: Value = serde_json::from_str(text).unwrap();
            let from_tree = serde_json::to_vec(&Hashed(&tree, &h)).unwrap();
            // Keys keep the text's order (a tree sorts them), so compare as values.
            let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap();
            assert_eq!(parse(&from_text), parse(&from_tree), "{text}");
        }
        let mut out = Vec::new();
        assert!(write_hashed_json(&mut out, r#"{"a":"#, &h).is_err());
        assert!(write_hashed_json(&mut out, r#"{"a":1} x"#, &h).is_err());
    }
    #[test]
    fn streamed_hashing_matches_the_hashed_copy() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let v = json!({"a": "s3cret", "b": [1, "x", {"c": "y"}], "n": null});
        let streamed: Value =
            serde_json::from_str(&with_hashed("{}".into(), "data", &Hashed(&v, &h))).unwrap();
        assert_eq!(streamed, json!({"data": h.hash_value(&v)}));
        let map = v.as_object().unwrap();
        let added: Value = serde_json::from_str(&with_hashed(
            "{\"k\":1}".into(),
            "data",
            &HashedMap(map, &h),
        ))
        .unwrap();
        assert_eq!(added, json!({"k": 1, "data": h.hash_value(&v)}));
    }
}
