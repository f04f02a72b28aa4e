//! Typed helpers for `auth/token/`.

use ward_api::{
    Auth, DurationInput, Response, TokenAccessorRequest, TokenCreateRequest, TokenLookup,
    TokenRenewRequest, TokenRequest,
};

use crate::{Client, ClientError};

impl Client {
    /// `POST auth/token/create`: a child token of the client's token.
    pub async fn create_token(&self, request: &TokenCreateRequest) -> Result<Auth, ClientError> {
        self.auth_reply("auth/token/create", request).await
    }

    /// `POST auth/token/create-orphan`: a token with no parent.
    pub async fn create_orphan_token(
        &self,
        request: &TokenCreateRequest,
    ) -> Result<Auth, ClientError> {
        self.auth_reply("auth/token/create-orphan", request).await
    }

    /// `GET auth/token/lookup-self`: the client's own token.
    pub async fn lookup_self(&self) -> Result<TokenLookup, ClientError> {
        let response: Option<Response<TokenLookup>> =
            self.read_as("auth/token/lookup-self").await?;
        required_data("auth/token/lookup-self", response)
    }

    /// `POST auth/token/lookup`: another token.
    pub async fn lookup_token(&self, token: &str) -> Result<TokenLookup, ClientError> {
        let body = TokenRequest {
            token: token.to_owned(),
        };
        let response = self.write_as("auth/token/lookup", &body).await?;
        required_data("auth/token/lookup", response)
    }

    /// `POST auth/token/lookup-accessor`: a token named by its accessor (`id` comes back empty).
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<TokenLookup, ClientError> {
        let body = TokenAccessorRequest {
            accessor: accessor.to_owned(),
        };
        let response = self.write_as("auth/token/lookup-accessor", &body).await?;
        required_data("auth/token/lookup-accessor", response)
    }

    /// `POST auth/token/renew-self`.
    pub async fn renew_self(&self, increment: Option<DurationInput>) -> Result<Auth, ClientError> {
        let body = TokenRenewRequest {
            token: None,
            increment,
        };
        self.auth_reply("auth/token/renew-self", &body).await
    }

    /// `POST auth/token/renew`: another token.
    pub async fn renew_token(
        &self,
        token: &str,
        increment: Option<DurationInput>,
    ) -> Result<Auth, ClientError> {
        let body = TokenRenewRequest {
            token: Some(token.to_owned()),
            increment,
        };
        self.auth_reply("auth/token/renew", &body).await
    }

    /// `POST auth/token/revoke-self`: revokes the client's own token and its children.
    pub async fn revoke_self(&self) -> Result<(), ClientError> {
        self.write("auth/token/revoke-self", &serde_json::json!({}))
            .await
            .map(drop)
    }

    /// `POST auth/token/revoke`: revokes a token and its children.
    pub async fn revoke_token(&self, token: &str) -> Result<(), ClientError> {
        let body = TokenRequest {
            token: token.to_owned(),
        };
        self.write("auth/token/revoke", &body).await.map(drop)
    }

    /// `POST auth/token/revoke-accessor`: revokes the token an accessor names.
    pub async fn revoke_accessor(&self, accessor: &str) -> Result<(), ClientError> {
        let body = TokenAccessorRequest {
            accessor: accessor.to_owned(),
        };
        self.write("auth/token/revoke-accessor", &body)
            .await
            .map(drop)
    }

    /// Writes `body` to `path` and returns the reply's `auth` block.
    async fn auth_reply<B: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Auth, ClientError> {
        let response = self.write(path, body).await?;
        response
            .and_then(|r| r.auth)
            .ok_or_else(|| missing(path, "auth"))
    }
}

/// The `data` of a response that must have it.
fn required_data<T>(path: &str, response: Option<Response<T>>) -> Result<T, ClientError> {
    response
        .and_then(|r| r.data)
        .ok_or_else(|| missing(path, "data"))
}

/// The error for a reply lacking a block it must have.
pub(crate) fn missing(path: &str, field: &str) -> ClientError {
    ClientError::Decode {
        path: path.to_owned(),
        source: serde::de::Error::custom(format!("the reply has no `{field}`")),
    }
}
