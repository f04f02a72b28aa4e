//! The transit engine: encryption as a service. [`Transit`] is the typed view of one mount.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::client::decode_optional;
use crate::token::missing;
use crate::{Client, ClientError};

impl Client {
    /// The transit engine mounted at `mount` (`transit`).
    pub fn transit(&self, mount: &str) -> Transit<'_> {
        Transit {
            client: self,
            mount: mount.trim_matches('/').to_owned(),
        }
    }
}

/// A transit mount. Plaintexts and inputs are bytes; the base64 the API wants is made here.
#[derive(Debug, Clone)]
pub struct Transit<'a> {
    client: &'a Client,
    mount: String,
}

/// A data key from [`Transit::datakey`]: the key wrapped by the named key, and the key
/// itself when asked for (wiped from memory when dropped).
pub struct DataKey {
    /// The plaintext key, for `plaintext` data keys.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The key encrypted under the transit key (`vault:v1:...`).
    pub ciphertext: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &self.plaintext.as_ref().map(|_| "<redacted>"))
            .field("ciphertext", &self.ciphertext)
            .finish()
    }
}

impl Transit<'_> {
    /// `POST <mount>/keys/<name>`: creates a key of `key_type` (`aes256-gcm96`,
    /// `ed25519`, ...; the server's default when `None`).
    pub async fn create_key(&self, name: &str, key_type: Option<&str>) -> Result<(), ClientError> {
        let body = key_type.map_or_else(|| json!({}), |t| json!({ "type": t }));
        self.post::<Value>(&format!("keys/{name}"), &body, false)
            .await
            .map(drop)
    }

    /// `GET <mount>/keys/<name>`: the key's settings and versions. `Ok(None)` when absent.
    pub async fn read_key(&self, name: &str) -> Result<Option<Value>, ClientError> {
        let response = self
            .client
            .read(&self.path(&format!("keys/{name}")))
            .await?;
        Ok(response.and_then(|r| r.data))
    }

    /// `LIST <mount>/keys`: the key names.
    pub async fn list_keys(&self) -> Result<Vec<String>, ClientError> {
        Ok(self
            .client
            .list(&self.path("keys"))
            .await?
            .unwrap_or_default())
    }

    /// `POST <mount>/keys/<name>/rotate`: adds a key version, used for new encryptions.
    pub async fn rotate_key(&self, name: &str) -> Result<(), ClientError> {
        self.post::<Value>(&format!("keys/{name}/rotate"), &json!({}), false)
            .await
            .map(drop)
    }

    /// `POST <mount>/encrypt/<key>`: `plaintext` encrypted (`vault:vN:...`). `context` is
    /// for derived keys.
    pub async fn encrypt(
        &self,
        key: &str,
        plaintext: &[u8],
        context: Option<&[u8]>,
    ) -> Result<String, ClientError> {
        let mut body = json!({ "plaintext": STANDARD.encode(plaintext) });
        if let Some(context) = context {
            body["context"] = json!(STANDARD.encode(context));
        }
        self.field(&format!("encrypt/{key}"), &body, "ciphertext")
            .await
    }

    /// `POST <mount>/decrypt/<key>`: the plaintext of `ciphertext`.
    pub async fn decrypt(
        &self,
        key: &str,
        ciphertext: &str,
        context: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let mut body = json!({ "ciphertext": ciphertext });
        if let Some(context) = context {
            body["context"] = json!(STANDARD.encode(context));
        }
        let path = format!("decrypt/{key}");
        let encoded = Zeroizing::new(self.field::<String>(&path, &body, "plaintext").await?);
        decode_base64(&self.path(&path), &encoded).map(Zeroizing::new)
    }

    /// `POST <mount>/rewrap/<key>`: `ciphertext` re-encrypted under the key's latest version,
    /// the plaintext never leaving the server.
    pub async fn rewrap(&self, key: &str, ciphertext: &str) -> Result<String, ClientError> {
        self.field(
            &format!("rewrap/{key}"),
            &json!({ "ciphertext": ciphertext }),
            "ciphertext",
        )
        .await
    }

    /// `POST <mount>/sign/<key>`: a signature of `input` (`vault:vN:...`), with the hash
    /// algorithm given or the server's default.
    pub async fn sign(
        &self,
        key: &str,
        input: &[u8],
        hash_algorithm: Option<&str>,
    ) -> Result<String, ClientError> {
        let mut body = json!({ "input": STANDARD.encode(input) });
        if let Some(algorithm) = hash_algorithm {
            body["hash_algorithm"] = json!(algorithm);
        }
        self.field(&format!("sign/{key}"), &body, "signature").await
    }

    /// `POST <mount>/verify/<key>`: whether `signature` is valid for `input`.
    pub async fn verify(
        &self,
        key: &str,
        input: &[u8],
        signature: &str,
        hash_algorithm: Option<&str>,
    ) -> Result<bool, ClientError> {
        let mut body = json!({ "input": STANDARD.encode(input), "signature": signature });
        if let Some(algorithm) = hash_algorithm {
            body["hash_algorithm"] = json!(algorithm);
        }
        self.field(&format!("verify/{key}"), &body, "valid").await
    }

    /// `POST <mount>/verify/<key>` with an HMAC from [`Transit::hmac`].
    pub async fn verify_hmac(
        &self,
        key: &str,
        input: &[u8],
        hmac: &str,
    ) -> Result<bool, ClientError> {
        let body = json!({ "input": STANDARD.encode(input), "hmac": hmac });
        self.field(&format!("verify/{key}"), &body, "valid").await
    }

    /// `POST <mount>/hmac/<key>`: the HMAC of `input` (`vault:vN:...`), with the algorithm
    /// given or `sha2-256`.
    pub async fn hmac(
        &self,
        key: &str,
        input: &[u8],
        algorithm: Option<&str>,
    ) -> Result<String, ClientError> {
        let mut body = json!({ "input": STANDARD.encode(input) });
        if let Some(algorithm) = algorithm {
            body["algorithm"] = json!(algorithm);
        }
        self.field(&format!("hmac/{key}"), &body, "hmac").await
    }

    /// `POST <mount>/datakey/<plaintext|wrapped>/<key>`: a new random key of `bits` (the
    /// server's default 256 when `None`), wrapped by `key`, and in the clear when
    /// `with_plaintext`.
    pub async fn datakey(
        &self,
        key: &str,
        with_plaintext: bool,
        bits: Option<u32>,
    ) -> Result<DataKey, ClientError> {
        let kind = if with_plaintext {
            "plaintext"
        } else {
            "wrapped"
        };
        let path = format!("datakey/{kind}/{key}");
        let body = bits.map_or_else(|| json!({}), |bits| json!({ "bits": bits }));
        let data: Value = self
            .post(&path, &body, true)
            .await?
            .ok_or_else(|| missing(&self.path(&path), "data"))?;
        let ciphertext = data
            .get("ciphertext")
            .and_then(Value::as_str)
            .ok_or_else(|| missing(&self.path(&path), "ciphertext"))?
            .to_owned();
        let plaintext = match data.get("plaintext").and_then(Value::as_str) {
            Some(encoded) => Some(Zeroizing::new(decode_base64(&self.path(&path), encoded)?)),
            None => None,
        };
        Ok(DataKey {
            plaintext,
            ciphertext,
        })
    }

    fn path(&self, rest: &str) -> String {
        format!("{}/{rest}", self.mount)
    }

    /// POSTs to `<mount>/<rest>` and returns the reply's `data`. `idempotent`: safe to
    /// retry (the operations that change no key).
    async fn post<T: DeserializeOwned>(
        &self,
        rest: &str,
        body: &Value,
        idempotent: bool,
    ) -> Result<Option<T>, ClientError> {
        let path = self.path(rest);
        let bytes = serde_json::to_vec(body).map_err(|source| ClientError::Decode {
            path: path.clone(),
            source,
        })?;
        let reply = self
            .client
            .send_with(
                Method::POST,
                &path,
                Some((bytes, "application/json")),
                idempotent,
            )
            .await?;
        let response: Option<ward_api::Response<T>> = decode_optional(&path, reply)?;
        Ok(response.and_then(|r| r.data))
    }

    /// One field of the `data` of an operation that changes no key (so it is retried).
    async fn field<T: DeserializeOwned>(
        &self,
        rest: &str,
        body: &Value,
        field: &str,
    ) -> Result<T, ClientError> {
        let path = self.path(rest);
        let mut data: Value = self
            .post(rest, body, true)
            .await?
            .ok_or_else(|| missing(&path, "data"))?;
        let value = data
            .get_mut(field)
            .map(Value::take)
            .ok_or_else(|| missing(&path, field))?;
        serde_json::from_value(value).map_err(|source| ClientError::Decode { path, source })
    }
}

fn decode_base64(path: &str, encoded: &str) -> Result<Vec<u8>, ClientError> {
    STANDARD.decode(encoded).map_err(|e| ClientError::Decode {
        path: path.to_owned(),
        source: serde::de::Error::custom(format!("invalid base64: {e}")),
    })
}
