//! Encrypts and decrypts with a transit key, logging in with AppRole first.
//!
//! ```text
//! WARD_ADDR=http://127.0.0.1:8200 ROLE_ID=... SECRET_ID=... \
//!   cargo run -p ward-client --example transit
//! ```

use ward_client::{Client, Login};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::var("WARD_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8200".into());
    let client = Client::new(&address, None)?;
    let login = Login::AppRole {
        mount: "approle".into(),
        role_id: std::env::var("ROLE_ID")?,
        secret_id: std::env::var("SECRET_ID").ok(),
    };
    client.login(&login).await?;
    // Renews the token at half its TTL, and logs in again when it can no longer.
    let _renewal = client.start_renewal(Some(login));

    let transit = client.transit("transit");
    let ciphertext = transit.encrypt("app", b"card 4111", None).await?;
    let plaintext = transit.decrypt("app", &ciphertext, None).await?;
    println!("{ciphertext} decrypts to {} bytes", plaintext.len());
    Ok(())
}
