//! Where `ward login` keeps the token, as Vault's default token helper does: one file in the
//! home directory, readable by its owner only. Ward's own is `~/.ward-token`; a
//! `~/.vault-token` is read when that is absent, so a Vault user's login carries over.

use std::io::Write;
use std::path::PathBuf;

use crate::error::CliError;

const WARD_FILE: &str = ".ward-token";
const VAULT_FILE: &str = ".vault-token";

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The stored token, if there is one.
pub(crate) fn read() -> Option<String> {
    let home = home()?;
    [WARD_FILE, VAULT_FILE].iter().find_map(|name| {
        let text = std::fs::read_to_string(home.join(name)).ok()?;
        let token = text.trim();
        (!token.is_empty()).then(|| token.to_owned())
    })
}

/// Stores `token` in `~/.ward-token`, mode 0600 from the moment it exists: written to a new
/// file beside it and renamed over it, so a reader never sees half a token and a file once
/// readable by others is replaced rather than written into.
pub(crate) fn store(token: &str) -> Result<PathBuf, CliError> {
    let home = home()
        .ok_or_else(|| CliError::Failed("Error storing the token: HOME is not set".into()))?;
    let path = home.join(WARD_FILE);
    let temporary = home.join(format!("{WARD_FILE}.{}.tmp", std::process::id()));
    let io = |source| CliError::Io {
        action: format!("storing the token in {}", path.display()),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(token.as_bytes())?;
        file.sync_all()
    });
    if let Err(error) = written.and_then(|()| std::fs::rename(&temporary, &path)) {
        let _ignored = std::fs::remove_file(&temporary);
        return Err(io(error));
    }
    Ok(path)
}
