//! `sys/audit` (list), `sys/audit/:path` (enable, disable) and `sys/audit-hash/:path`, in
//! Vault's shapes (checked against OpenBao 2.7.2).

use serde_json::{Map, Value, json};

use super::DeviceConfig;
use crate::params::Params;
use crate::{Core, CoreError, CoreResult, Response};

impl Core {
    pub(crate) fn audit_list(&self) -> Response {
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

    pub(crate) async fn audit_enable(&self, path: &str, p: &Params<'_>) -> CoreResult<Response> {
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

    pub(crate) fn audit_hash(&self, path: &str, p: &Params<'_>) -> CoreResult<Response> {
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
    Response::data(Value::Object(map)).with_data_at_top_level()
}
