//! `sys/audit` (list), `sys/audit/:path` (enable, disable) and `sys/audit-hash/:path`, in
//! Vault's shapes (checked against OpenBao 2.7.2).

use serde_json::{Map, Value, json};

use super::DeviceConfig;
use crate::params::Params;
use crate::{Core, CoreError, CoreResult, Operation, Response};

impl Core {
    /// Handles the audit endpoints below `sys/`; `None` when `rest` is not one of them.
    pub(crate) async fn handle_sys_audit(
        &self,
        rest: &str,
        op: Operation,
        p: &Params<'_>,
    ) -> Option<CoreResult<Response>> {
        if rest == "audit" {
            return Some(match op {
                Operation::Read => Ok(self.audit_list()),
                _ => Err(CoreError::UnsupportedOperation),
            });
        }
        if let Some(path) = rest.strip_prefix("audit/") {
            return Some(match op {
                Operation::Write => self.audit_enable(path, p).await,
                Operation::Delete => self
                    .audit
                    .disable(&self.barrier, path)
                    .await
                    .map(|()| Response::empty()),
                _ => Err(CoreError::UnsupportedOperation),
            });
        }
        if let Some(path) = rest.strip_prefix("audit-hash/") {
            return Some(match op {
                Operation::Write => self.audit_hash(path, p),
                _ => Err(CoreError::UnsupportedOperation),
            });
        }
        None
    }

    fn audit_list(&self) -> Response {
        let mut map = Map::new();
        for d in self.audit.snapshot().iter() {
            let c = &d.config;
            // Beyond Vault's fields: what `ward audit verify` needs to check the device's
            // log (its public key, and the head that finds a cut after the last checkpoint),
            // and the last break found in it.
            let head = d.head();
            let saved = d.saved_record();
            map.insert(
                c.path.clone(),
                json!({
                    "type": c.device_type,
                    "description": c.description,
                    "options": c.options,
                    "local": c.local,
                    "path": c.path,
                    "public_key": d.public_key,
                    "head": format!("{}:{}", head.seq, head.prev_hash),
                    "last_checkpoint": d.last_checkpoint().map(|m| json!({
                        "seq": m.seq.saturating_sub(1),
                        "head": format!("{}:{}", m.seq, m.prev_hash),
                        "time": m.time,
                    })),
                    "break": saved.chain_break.map(|b| json!({"time": b.time, "reason": b.reason})),
                }),
            );
        }
        duplicated_envelope(map)
    }

    async fn audit_enable(&self, path: &str, p: &Params<'_>) -> CoreResult<Response> {
        let device_type = p
            .str("type")?
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CoreError::bad("missing audit device 'type'"))?;
        let options = match p.0.get("options") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(CoreError::bad(
                    "invalid value for 'options': expected a map",
                ));
            }
        };
        let config = DeviceConfig {
            path: path.to_owned(),
            device_type,
            description: p.str("description")?.unwrap_or_default(),
            options,
            local: p.bool("local")?.unwrap_or(false),
            uuid: uuid::Uuid::new_v4().to_string(),
        };
        self.audit.enable(&self.barrier, config).await?;
        tracing::info!(path, "audit device enabled");
        Ok(Response::empty())
    }

    fn audit_hash(&self, path: &str, p: &Params<'_>) -> CoreResult<Response> {
        let input = p
            .str("input")?
            .ok_or_else(|| CoreError::bad("missing 'input'"))?;
        let path = super::normalise_path(path)?;
        let devices = self.audit.snapshot();
        let device = devices
            .iter()
            .find(|d| d.config.path == path)
            .ok_or_else(|| CoreError::bad(format!("unknown audit backend \"{path}\"")))?;
        let mut map = Map::new();
        map.insert("hash".into(), json!(device.hasher.hash(&input)));
        Ok(duplicated_envelope(map))
    }
}

/// Vault's answer for `sys/audit` and `sys/audit-hash`: the fields both at the top level and
/// under `data`.
fn duplicated_envelope(map: Map<String, Value>) -> Response {
    let mut body = map.clone();
    body.insert("data".into(), Value::Object(map));
    body.insert("request_id".into(), json!(uuid::Uuid::new_v4().to_string()));
    body.insert("lease_id".into(), json!(""));
    body.insert("renewable".into(), json!(false));
    body.insert("lease_duration".into(), json!(0));
    body.insert("wrap_info".into(), Value::Null);
    body.insert("warnings".into(), Value::Null);
    body.insert("auth".into(), Value::Null);
    Response::raw(Value::Object(body))
}
