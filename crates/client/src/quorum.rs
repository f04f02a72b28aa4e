//! Typed helpers for what a quorum of unseal-key holders does on a running server: Vault's
//! `sys/rekey/*` and `sys/generate-root/*`, which answer without a token.

use reqwest::Method;
use ward_api::{
    GenerateRootRequest, GenerateRootStatus, QuorumShare, RekeyRequest, RekeyResult, RekeyStatus,
    RekeyUpdate,
};

use crate::client::{decode_optional, decode_required};
use crate::{Client, ClientError};

const REKEY_INIT: &str = "sys/rekey/init";
const REKEY_UPDATE: &str = "sys/rekey/update";
const ROOT_ATTEMPT: &str = "sys/generate-root/attempt";
const ROOT_UPDATE: &str = "sys/generate-root/update";

impl Client {
    /// `GET sys/rekey/init`: the rekey under way, if any.
    pub async fn rekey_status(&self) -> Result<RekeyStatus, ClientError> {
        let reply = self.send(Method::GET, REKEY_INIT, None).await?;
        decode_required(REKEY_INIT, reply)
    }

    /// `PUT sys/rekey/init`: starts a rekey to a new split.
    pub async fn rekey_start(&self, request: &RekeyRequest) -> Result<RekeyStatus, ClientError> {
        let reply = self
            .send_json(Method::PUT, REKEY_INIT, Some(request))
            .await?;
        decode_required(REKEY_INIT, reply)
    }

    /// `DELETE sys/rekey/init`: cancels the rekey under way.
    pub async fn rekey_cancel(&self) -> Result<(), ClientError> {
        let reply = self.send(Method::DELETE, REKEY_INIT, None).await?;
        decode_optional::<serde_json::Value>(REKEY_INIT, reply).map(drop)
    }

    /// `PUT sys/rekey/update`: gives one current share; at the quorum, the new shares.
    pub async fn rekey_update(&self, share: &QuorumShare) -> Result<RekeyUpdate, ClientError> {
        let reply = self
            .send_json(Method::PUT, REKEY_UPDATE, Some(share))
            .await?;
        let body: serde_json::Value = decode_required(REKEY_UPDATE, reply)?;
        let decoded = if body["complete"] == true {
            serde_json::from_value::<RekeyResult>(body).map(RekeyUpdate::Complete)
        } else {
            serde_json::from_value::<RekeyStatus>(body).map(RekeyUpdate::Progress)
        };
        decoded.map_err(|source| ClientError::Decode {
            path: REKEY_UPDATE.into(),
            source,
        })
    }

    /// `GET sys/generate-root/attempt`: the root token generation under way, if any.
    pub async fn generate_root_status(&self) -> Result<GenerateRootStatus, ClientError> {
        let reply = self.send(Method::GET, ROOT_ATTEMPT, None).await?;
        decode_required(ROOT_ATTEMPT, reply)
    }

    /// `PUT sys/generate-root/attempt`: starts a root token generation; the reply carries the
    /// OTP when the server made it.
    pub async fn generate_root_start(
        &self,
        request: &GenerateRootRequest,
    ) -> Result<GenerateRootStatus, ClientError> {
        let reply = self
            .send_json(Method::PUT, ROOT_ATTEMPT, Some(request))
            .await?;
        decode_required(ROOT_ATTEMPT, reply)
    }

    /// `DELETE sys/generate-root/attempt`: cancels the generation under way.
    pub async fn generate_root_cancel(&self) -> Result<(), ClientError> {
        let reply = self.send(Method::DELETE, ROOT_ATTEMPT, None).await?;
        decode_optional::<serde_json::Value>(ROOT_ATTEMPT, reply).map(drop)
    }

    /// `PUT sys/generate-root/update`: gives one share; at the quorum, the encoded token.
    pub async fn generate_root_update(
        &self,
        share: &QuorumShare,
    ) -> Result<GenerateRootStatus, ClientError> {
        let reply = self
            .send_json(Method::PUT, ROOT_UPDATE, Some(share))
            .await?;
        decode_required(ROOT_UPDATE, reply)
    }
}
