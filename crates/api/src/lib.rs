//! Vault-shaped request and response types shared by Ward's server and client.
