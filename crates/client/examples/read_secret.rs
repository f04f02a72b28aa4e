//! Reads a named secret the way an application should: through the cache, with renewal of
//! the token, and a fallback variable when Ward is down.
//!
//! ```text
//! WARD_ADDR=http://127.0.0.1:8200 WARD_TOKEN=... \
//!   cargo run -p ward-client --example read_secret -- secret/myapp/db#password
//! ```

use ward_client::{Client, HealthState, SecretRef};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::var("WARD_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8200".into());
    let token = std::env::var("WARD_TOKEN").ok();
    let reference = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "secret/myapp/db#password".into());
    let secret: SecretRef = reference.parse()?;

    let client = Client::new(&address, token.as_deref())?;
    // Keeps the token alive while the program runs (stops when dropped).
    let _renewal = client.start_renewal(None);

    let value = client.read_secret("DB_PASSWORD", &secret).await?;
    println!(
        "{secret}: {} characters, version {:?}, from {:?}",
        value.value.len(),
        value.version,
        value.source
    );
    if let HealthState::Degraded { fallbacks } = client.health_state() {
        eprintln!("degraded: {fallbacks:?} came from WARD_FALLBACK_* variables");
    }
    Ok(())
}
