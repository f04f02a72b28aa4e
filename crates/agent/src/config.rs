//! The agent's TOML configuration: Vault Agent's blocks and names (`vault`, `auto_auth`
//! with its `method` and `sink`s, `template_config`, `template`, `exec`, `api_proxy`,
//! `listener`, `cache`), read and checked in full before anything starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use ward_api::parse_duration;
use ward_client::SecretRef;

use crate::AgentError;

/// How often templates are rendered again when nothing says otherwise: Vault Agent's
/// `static_secret_render_interval` default.
const DEFAULT_RENDER_INTERVAL: Duration = Duration::from_secs(300);

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The server to talk to.
    #[serde(default)]
    pub vault: VaultConfig,
    /// How the agent logs in and where it writes its token.
    pub auto_auth: Option<AutoAuthConfig>,
    /// Settings shared by the templates.
    #[serde(default)]
    pub template_config: TemplateSettings,
    /// Files rendered from templates.
    #[serde(default)]
    pub template: Vec<TemplateConfig>,
    /// One supervised child with secrets in its environment.
    pub exec: Option<ExecConfig>,
    /// The local API proxy (served on the `listener`s).
    pub api_proxy: Option<ApiProxyConfig>,
    /// Where the API proxy listens.
    #[serde(default)]
    pub listener: Vec<ListenerConfig>,
    /// The API proxy's cache of reads.
    pub cache: Option<CacheConfig>,
}

/// `[vault]`: the server's address and TLS trust.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// `http(s)://host:port`; else `WARD_ADDR`, `VAULT_ADDR`, `http://127.0.0.1:8200`.
    pub address: Option<String>,
    /// A PEM CA bundle to trust instead of the system roots.
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate (tests only).
    #[serde(default)]
    pub tls_skip_verify: bool,
}

/// `[auto_auth]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoAuthConfig {
    /// The login method.
    pub method: MethodConfig,
    /// The files the token is written to.
    #[serde(default)]
    pub sink: Vec<SinkConfig>,
}

/// `[auto_auth.method]`: `type = "approle"` or `type = "token_file"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodConfig {
    /// `approle` or `token_file`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The auth mount (`auth/approle`, the default, or `approle`).
    pub mount_path: Option<String>,
    /// The method's settings.
    #[serde(default)]
    pub config: MethodSettings,
}

/// `[auto_auth.method.config]`, with Vault Agent's names (and the shorter `role_id_file`,
/// `secret_id_file`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSettings {
    /// AppRole: the file holding the role ID.
    #[serde(alias = "role_id_file")]
    pub role_id_file_path: Option<PathBuf>,
    /// AppRole: the file holding the secret ID.
    #[serde(alias = "secret_id_file")]
    pub secret_id_file_path: Option<PathBuf>,
    /// AppRole: delete the secret ID file once read (Vault Agent's default: true).
    pub remove_secret_id_file_after_reading: Option<bool>,
    /// `token_file`: the file holding the token, read again at each login.
    pub token_file_path: Option<PathBuf>,
}

/// `[[auto_auth.sink]]`: `type = "file"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Only `file`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The sink's settings.
    pub config: SinkSettings,
}

/// `[auto_auth.sink.config]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    /// The file the token is written to.
    pub path: PathBuf,
    /// Its mode (`0o600`, or the string `"0600"`); 0600 when absent.
    pub mode: Option<FileMode>,
}

/// A file mode: an integer (TOML's `0o600`) or an octal string (`"0600"`, as Vault's
/// `perms`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum FileMode {
    /// `0o600`.
    Number(u32),
    /// `"0600"`.
    Octal(#[serde(deserialize_with = "octal")] u32),
}

impl FileMode {
    /// The permission bits.
    pub fn bits(self) -> u32 {
        match self {
            Self::Number(bits) | Self::Octal(bits) => bits,
        }
    }
}

fn octal<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let text = String::deserialize(deserializer)?;
    u32::from_str_radix(text.trim().trim_start_matches("0o"), 8)
        .map_err(|_| serde::de::Error::custom(format!("{text:?} is not an octal file mode")))
}

/// `[template_config]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    /// How often templates are rendered again to pick up changed secrets (`5m` by default;
    /// fractions such as `200ms` allowed).
    pub static_secret_render_interval: Option<String>,
}

/// `[[template]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The template file.
    pub source: Option<PathBuf>,
    /// The template itself, instead of `source`.
    pub contents: Option<String>,
    /// The file written.
    pub destination: PathBuf,
    /// Its mode (`"0640"`); 0600 when absent.
    pub perms: Option<FileMode>,
    /// Run after each change of the file: a shell command line, or a program and its
    /// arguments.
    pub command: Option<CommandLine>,
}

/// A command: `"systemctl reload nginx"` (run by `sh -c`) or `["nginx", "-s", "reload"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    /// Run by `sh -c`.
    Shell(String),
    /// A program and its arguments.
    Argv(Vec<String>),
}

impl CommandLine {
    /// The program and its arguments.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Self::Shell(line) => vec!["sh".into(), "-c".into(), line.clone()],
            Self::Argv(argv) => argv.clone(),
        }
    }
}

/// `[exec]`: the supervised child, as `ward run --watch` runs it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program and its arguments.
    pub command: CommandLine,
    /// `always` (the default): restart the child when a secret changes; `never`.
    pub restart_on_secret_changes: Option<String>,
    /// Send this signal (`HUP`) on a change instead of restarting.
    pub signal_on_secret_changes: Option<String>,
    /// The child's environment: `NAME = "mount/path#field"`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `[api_proxy]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiProxyConfig {
    /// Send the agent's token with requests that carry none (default true).
    pub use_auto_auth_token: Option<bool>,
}

/// `[[listener]]`: `type = "tcp"`, on a loopback address, without TLS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Only `tcp`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `127.0.0.1:8100`.
    pub address: String,
    /// Must be true: the proxy speaks plain HTTP, to this host only.
    #[serde(default)]
    pub tls_disable: bool,
}

/// `[cache]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Keep successful reads (KV secrets among them) to answer with while the server is
    /// sealed or down (default true once `[cache]` is present).
    pub cache_static_secrets: Option<bool>,
}

/// How the agent logs in, checked.
#[derive(Debug, Clone)]
pub enum AuthMethod {
    /// AppRole with role and secret ID files.
    AppRole {
        /// The mount below `auth/`.
        mount: String,
        /// The role ID file.
        role_id_file: PathBuf,
        /// The secret ID file, if the role needs one.
        secret_id_file: Option<PathBuf>,
        /// Delete the secret ID file once read.
        remove_secret_id_file: bool,
    },
    /// A token file, read again at each login.
    TokenFile(PathBuf),
}

/// The checked exec settings.
#[derive(Debug)]
pub struct Exec {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The secrets of its environment.
    pub env: BTreeMap<String, SecretRef>,
    /// Whether a change restarts (or signals) the child.
    pub watch: bool,
    /// The signal sent instead of a restart.
    pub signal: Option<rustix::process::Signal>,
}

impl AgentConfig {
    /// Reads and checks `path`. Every error names the file.
    pub fn load(path: &Path) -> Result<Self, AgentError> {
        let text = std::fs::read_to_string(path).map_err(AgentError::io(format!(
            "reading the agent configuration {}",
            path.display()
        )))?;
        let config: Self = toml::from_str(&text).map_err(|e| {
            AgentError::Config(format!(
                "Error in the agent configuration {}: {}",
                path.display(),
                e.to_string().trim_end()
            ))
        })?;
        config.check().map_err(|e| {
            AgentError::Config(format!(
                "Error in the agent configuration {}: {e}",
                path.display()
            ))
        })?;
        Ok(config)
    }

    /// The checks serde cannot make.
    fn check(&self) -> Result<(), String> {
        if let Some(auto_auth) = &self.auto_auth {
            self.auth_method_of(auto_auth)?;
            for sink in &auto_auth.sink {
                if sink.kind != "file" {
                    return Err(format!(
                        "auto_auth.sink: unsupported type {:?} (only \"file\")",
                        sink.kind
                    ));
                }
            }
        }
        self.render_interval()?;
        for (index, template) in self.template.iter().enumerate() {
            if template.source.is_some() == template.contents.is_some() {
                return Err(format!(
                    "template {}: give exactly one of source and contents",
                    index + 1
                ));
            }
        }
        self.exec()?;
        self.proxy_addresses()?;
        let work = self.auto_auth.is_some()
            || !self.template.is_empty()
            || self.exec.is_some()
            || self.api_proxy.is_some();
        if !work {
            return Err(
                "nothing to do: configure auto_auth, template, exec or api_proxy".to_owned(),
            );
        }
        if self.auto_auth.is_none() && (!self.template.is_empty() || self.exec.is_some()) {
            return Err("template and exec need auto_auth (the agent's token)".to_owned());
        }
        Ok(())
    }

    /// The login method of `auto_auth`, checked.
    pub fn auth_method(&self) -> Option<AuthMethod> {
        self.auto_auth
            .as_ref()
            .and_then(|a| self.auth_method_of(a).ok())
    }

    fn auth_method_of(&self, auto_auth: &AutoAuthConfig) -> Result<AuthMethod, String> {
        let method = &auto_auth.method;
        let settings = &method.config;
        match method.kind.as_str() {
            "approle" => {
                let mount = method
                    .mount_path
                    .as_deref()
                    .unwrap_or("auth/approle")
                    .trim_matches('/');
                let mount = mount.strip_prefix("auth/").unwrap_or(mount).to_owned();
                let role_id_file = settings.role_id_file_path.clone().ok_or(
                    "auto_auth.method (approle): role_id_file_path is required".to_owned(),
                )?;
                Ok(AuthMethod::AppRole {
                    mount,
                    role_id_file,
                    secret_id_file: settings.secret_id_file_path.clone(),
                    remove_secret_id_file: settings
                        .remove_secret_id_file_after_reading
                        .unwrap_or(true),
                })
            }
            "token_file" => settings
                .token_file_path
                .clone()
                .map(AuthMethod::TokenFile)
                .ok_or_else(|| {
                    "auto_auth.method (token_file): token_file_path is required".to_owned()
                }),
            other => Err(format!(
                "auto_auth.method: unsupported type {other:?} (approle or token_file)"
            )),
        }
    }

    /// `template_config.static_secret_render_interval`, at least 100 ms.
    pub fn render_interval(&self) -> Result<Duration, String> {
        match &self.template_config.static_secret_render_interval {
            None => Ok(DEFAULT_RENDER_INTERVAL),
            Some(text) => parse_duration(text)
                .map(|d| d.max(Duration::from_millis(100)))
                .map_err(|e| format!("template_config.static_secret_render_interval: {e}")),
        }
    }

    /// The checked `[exec]` block.
    pub fn exec(&self) -> Result<Option<Exec>, String> {
        let Some(exec) = &self.exec else {
            return Ok(None);
        };
        let command = exec.command.argv();
        if command.first().is_none_or(String::is_empty) {
            return Err("exec.command is empty".to_owned());
        }
        let watch = match exec.restart_on_secret_changes.as_deref() {
            None | Some("always") => true,
            Some("never") => false,
            Some(other) => {
                return Err(format!(
                    "exec.restart_on_secret_changes: {other:?} is not \"always\" or \"never\""
                ));
            }
        };
        let signal = exec
            .signal_on_secret_changes
            .as_deref()
            .map(crate::supervise::parse_signal)
            .transpose()
            .map_err(|e| format!("exec.signal_on_secret_changes: {e}"))?;
        let mut env = BTreeMap::new();
        for (name, reference) in &exec.env {
            let (name, secret) = crate::supervise::parse_assignment(&format!("{name}={reference}"))
                .map_err(|e| format!("exec.env: {e}"))?;
            env.insert(name, secret);
        }
        Ok(Some(Exec {
            command,
            env,
            watch,
            signal,
        }))
    }

    /// The API proxy's listen addresses (empty without `[api_proxy]`).
    pub fn proxy_addresses(&self) -> Result<Vec<SocketAddr>, String> {
        if self.api_proxy.is_none() {
            if !self.listener.is_empty() {
                return Err("listener needs an [api_proxy] block".to_owned());
            }
            return Ok(Vec::new());
        }
        if self.listener.is_empty() {
            return Err("api_proxy needs a [[listener]]".to_owned());
        }
        self.listener
            .iter()
            .map(|listener| {
                if listener.kind != "tcp" {
                    return Err(format!(
                        "listener: unsupported type {:?} (only \"tcp\")",
                        listener.kind
                    ));
                }
                if !listener.tls_disable {
                    return Err(
                        "listener: set tls_disable = true (the proxy serves plain HTTP to this \
                         host only)"
                            .to_owned(),
                    );
                }
                let address: SocketAddr = listener.address.parse().map_err(|_| {
                    format!("listener: {:?} is not an IP:port address", listener.address)
                })?;
                // Whoever connects is served with the agent's token: this host only.
                if !address.ip().is_loopback() {
                    return Err(format!(
                        "listener: {address} is not a loopback address (127.0.0.1 or ::1)"
                    ));
                }
                Ok(address)
            })
            .collect()
    }

    /// Whether the API proxy keeps reads to serve while the server is down.
    pub fn proxy_caches(&self) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|c| c.cache_static_secrets.unwrap_or(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, String> {
        let config: AgentConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    #[test]
    fn a_full_configuration_parses() {
        let config = parse(
            r#"
            [vault]
            address = "http://127.0.0.1:8200"
            [auto_auth.method]
            type = "approle"
            [auto_auth.method.config]
            role_id_file = "/etc/ward/role-id"
            secret_id_file_path = "/etc/ward/secret-id"
            [[auto_auth.sink]]
            type = "file"
            config = { path = "/run/ward/token", mode = "0640" }
            [template_config]
            static_secret_render_interval = "500ms"
            [[template]]
            contents = "{{ kv('secret/app').data.password }}"
            destination = "/run/app.conf"
            perms = "0600"
            command = "true"
            [api_proxy]
            [[listener]]
            type = "tcp"
            address = "127.0.0.1:8100"
            tls_disable = true
            [cache]
            "#,
        )
        .unwrap();
        let Some(AuthMethod::AppRole {
            mount,
            remove_secret_id_file,
            ..
        }) = config.auth_method()
        else {
            panic!("not approle")
        };
        assert_eq!(mount, "approle");
        assert!(remove_secret_id_file);
        let sink = &config.auto_auth.as_ref().unwrap().sink[0];
        assert_eq!(sink.config.mode.unwrap().bits(), 0o640);
        assert_eq!(
            config.render_interval().unwrap(),
            Duration::from_millis(500)
        );
        assert!(config.proxy_caches());
    }

    #[test]
    fn mistakes_are_named() {
        for (text, wanted) in [
            (
                "[auto_auth.method]\ntype = \"ldap\"",
                "unsupported type \"ldap\"",
            ),
            (
                "[auto_auth.method]\ntype = \"approle\"",
                "role_id_file_path is required",
            ),
            ("", "nothing to do"),
            (
                "[api_proxy]\n[[listener]]\ntype = \"tcp\"\naddress = \"0.0.0.0:8100\"\ntls_disable = true",
                "not a loopback",
            ),
            ("[vault]\nadress = \"x\"", "unknown field"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(wanted), "{text:?}: {error}");
        }
    }
}
