//! Development mode: initialise with one share, unseal, mount `secret/` (KV v2), as
//! `vault server -dev` does. Never for production: the unseal key is printed.

use serde_json::json;

use crate::{Core, CoreError, CoreResult, InitOutput, Operation, Request};

impl Core {
    /// Initialises and unseals a fresh store for development. With `root_token_id`, the root
    /// token is exactly that string (as `-dev-root-token-id`).
    pub async fn dev_init(&self, root_token_id: Option<&str>) -> CoreResult<InitOutput> {
        let mut out = self.init(1, 1).await?;
        let key = out
            .keys
            .first()
            .ok_or_else(|| CoreError::Invariant("init gave no unseal key"))?;
        let key_hex = hex::encode(key.expose());
        self.unseal(&key_hex).await?;
        if let Some(id) = root_token_id {
            if id.is_empty()
                || id.len() > 256
                || id.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(CoreError::bad("invalid dev root token id"));
            }
            let chosen = crate::Token::new(self.create_root_token(Some(id)).await?);
            let generated = std::mem::replace(&mut out.root_token, chosen);
            let generated = crate::token::store::hash_token(generated.expose());
            self.tokens.revoke_tree(&self.barrier, &generated).await?;
        }
        let mount = Request {
            operation: Operation::Write,
            path: "sys/mounts/secret".into(),
            data: json!({"type": "kv", "options": {"version": "2"}, "description": "key/value secret storage"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            token: Some(out.root_token.duplicate()),
            remote_addr: None,
            mfa: None,
            client_certificates: None,
            body: None,
        };
        self.handle(mount).await?;
        Ok(out)
    }
}
