//! Templates: files rendered with minijinja from KV secrets and transit operations, written
//! atomically when their output changes, followed by their command.
//!
//! The functions a template can call:
//!
//! - `secret("secret/data/app")`: the `data` of any read (for KV v2: `data` and `metadata`);
//! - `kv("secret/app")`: a KV secret by its path, either version: `{data, metadata}`;
//! - `encrypt("key", "plaintext")` and `decrypt("key", "vault:v1:...")`, with an optional
//!   third argument naming the transit mount (`transit`).
//!
//! Each pass reads every secret again from the server (a template is a pure function of
//! the secrets), and a file is written and its command run only when the output differs
//! from the file's. Encryption is random, so `encrypt` remembers its answer for a given
//! input: the file does not change on every pass.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde_json::Value as Json;
use tokio::runtime::Handle;
use ward_client::{Client, ClientError};
use ward_crypto::sha256;
use zeroize::Zeroizing;

use crate::AgentError;
use crate::config::TemplateConfig;
use crate::files::write_atomically;

/// The default mode of a rendered file: the owner alone.
const DEFAULT_PERMS: u32 = 0o600;

/// Longest wait between two passes after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long a template's command may run before it is abandoned.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The prefix of the errors the template functions raise: their text names paths and the
/// server's messages only, so it may be shown (other details may quote values).
const OWN_ERROR: &str = "ward: ";

/// An encryption's mount, key and the SHA-256 of its plaintext.
type EncryptionInput = (String, String, [u8; 32]);

/// One template and what was last written.
struct Entry {
    name: String,
    destination: PathBuf,
    perms: u32,
    command: Option<Vec<String>>,
    /// The destination's contents as last written (or found at start).
    written: Option<Zeroizing<Vec<u8>>>,
}

/// The templates of one agent.
pub(crate) struct Templates {
    environment: Arc<Environment<'static>>,
    functions: Arc<Functions>,
    entries: Vec<Entry>,
}

/// What the template functions share: the client, the runtime to call it on, and the
/// memories that keep a pass consistent and encryption stable.
struct Functions {
    client: Client,
    runtime: Handle,
    /// Reads made during the current pass, by API path.
    reads: Mutex<HashMap<String, Json>>,
    /// Whether the server refused (4xx) a call of the template being rendered: its error
    /// is then the server's refusal (exit code 2), not a local one.
    refused: AtomicBool,
    /// Ciphertexts by (mount, key, SHA-256 of the plaintext): one per input for the agent's
    /// lifetime.
    ciphertexts: Mutex<HashMap<EncryptionInput, String>>,
}

impl Templates {
    /// Compiles every template (a syntax error names the template and its line).
    pub(crate) fn load(configs: &[TemplateConfig], client: &Client) -> Result<Self, AgentError> {
        let functions = Arc::new(Functions {
            client: client.clone(),
            runtime: Handle::current(),
            reads: Mutex::default(),
            refused: AtomicBool::new(false),
            ciphertexts: Mutex::default(),
        });
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut syntax = minijinja::syntax::SyntaxConfig::builder();
        syntax.keep_trailing_newline(true);
        environment.set_syntax(
            syntax
                .build()
                .map_err(|e| AgentError::Config(format!("template syntax: {e}")))?,
        );
        register(&mut environment, &functions);
        let mut entries = Vec::new();
        for (index, config) in configs.iter().enumerate() {
            let (name, source) = match (&config.source, &config.contents) {
                (Some(path), _) => (
                    path.display().to_string(),
                    std::fs::read_to_string(path).map_err(AgentError::io(format!(
                        "reading the template {}",
                        path.display()
                    )))?,
                ),
                (None, Some(contents)) => (format!("template {}", index + 1), contents.clone()),
                (None, None) => continue,
            };
            environment
                .add_template_owned(name.clone(), source)
                .map_err(|e| AgentError::Config(describe(&e, &name)))?;
            let written = std::fs::read(&config.destination).ok().map(Zeroizing::new);
            entries.push(Entry {
                name,
                destination: config.destination.clone(),
                perms: config.perms.map_or(DEFAULT_PERMS, |p| p.bits()),
                command: config.command.as_ref().map(|c| c.argv()),
                written,
            });
        }
        Ok(Self {
            environment: Arc::new(environment),
            functions,
            entries,
        })
    }

    /// Renders every template once, writing the files that changed and running their
    /// commands. Returns how many files changed, or the first error (the other templates
    /// are still rendered).
    pub(crate) async fn pass(&mut self) -> Result<usize, AgentError> {
        self.functions
            .reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let mut changed = 0;
        let mut first_error = None;
        for entry in &mut self.entries {
            let environment = self.environment.clone();
            let name = entry.name.clone();
            self.functions.refused.store(false, Ordering::Relaxed);
            // The functions block on the client: off the async threads.
            let rendered = tokio::task::spawn_blocking(move || {
                environment
                    .get_template(&name)
                    .and_then(|template| template.render(()))
                    .map(|text| Zeroizing::new(text.into_bytes()))
                    .map_err(|e| describe(&e, &name))
            })
            .await
            .map_err(|e| AgentError::Config(format!("template {}: {e}", entry.name)))
            .and_then(|result| {
                result.map_err(|text| {
                    if self.functions.refused.load(Ordering::Relaxed) {
                        AgentError::Refused(text)
                    } else {
                        AgentError::Config(text)
                    }
                })
            });
            let rendered = match rendered {
                Ok(rendered) => rendered,
                Err(error) => {
                    first_error.get_or_insert(error);
                    continue;
                }
            };
            if entry.written.as_ref() == Some(&rendered) {
                continue;
            }
            if let Err(error) = write_atomically(&entry.destination, &rendered, entry.perms) {
                first_error.get_or_insert(AgentError::Io {
                    action: format!("writing {}", entry.destination.display()),
                    source: error,
                });
                continue;
            }
            entry.written = Some(rendered);
            changed += 1;
            say!(
                "ward agent: rendered {} to {}",
                entry.name,
                entry.destination.display()
            );
            if let Some(command) = &entry.command {
                run_command(&entry.name, command).await;
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(changed),
        }
    }

    /// Renders again every `interval` (backing off on errors, up to five minutes), forever.
    pub(crate) async fn watch(mut self, interval: Duration) {
        let mut wait = interval;
        loop {
            tokio::time::sleep(wait).await;
            match self.pass().await {
                Ok(_) => wait = interval,
                Err(error) => {
                    wait = (wait * 2).min(MAX_BACKOFF.max(interval));
                    say!("ward agent: {error}; trying again in {wait:?}");
                }
            }
        }
    }
}

/// Runs a template's command and reports a failure (it does not stop the agent).
async fn run_command(template: &str, argv: &[String]) {
    let Some((program, arguments)) = argv.split_first() else {
        return;
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(arguments)
        .stdin(Stdio::null())
        .env_remove("WARD_TOKEN")
        .env_remove("VAULT_TOKEN")
        .kill_on_drop(true);
    let outcome = match command.spawn() {
        Ok(mut child) => tokio::time::timeout(COMMAND_TIMEOUT, child.wait()).await,
        Err(error) => {
            say!("ward agent: {template}: cannot start its command {program}: {error}");
            return;
        }
    };
    match outcome {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => say!("ward agent: {template}: its command failed ({status})"),
        Ok(Err(error)) => say!("ward agent: {template}: its command: {error}"),
        Err(_) => {
            say!("ward agent: {template}: its command took longer than {COMMAND_TIMEOUT:?}; killed")
        }
    }
}

/// An error's text for the log: the template, the line, what went wrong. A detail is shown
/// only for the kinds whose detail names template constructs (never values) or for the
/// functions' own errors.
fn describe(error: &Error, name: &str) -> String {
    let kind = error.kind();
    let safe_detail = matches!(
        kind,
        ErrorKind::SyntaxError
            | ErrorKind::UnknownFilter
            | ErrorKind::UnknownTest
            | ErrorKind::UnknownFunction
            | ErrorKind::UnknownMethod
            | ErrorKind::MissingArgument
            | ErrorKind::TooManyArguments
            | ErrorKind::TemplateNotFound
    ) || error.detail().is_some_and(|d| d.starts_with(OWN_ERROR));
    let mut text = format!("template {}", error.name().unwrap_or(name));
    if let Some(line) = error.line() {
        text.push_str(&format!(", line {line}"));
    }
    text.push_str(&format!(": {kind}"));
    if let Some(detail) = error.detail().filter(|_| safe_detail) {
        text.push_str(&format!(": {}", detail.trim_start_matches(OWN_ERROR)));
    }
    text
}

/// The functions' error: shown in full (see [`OWN_ERROR`]).
fn own_error(detail: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("{OWN_ERROR}{detail}"))
}

fn register(environment: &mut Environment<'static>, functions: &Arc<Functions>) {
    let shared = functions.clone();
    environment.add_function("secret", move |path: String| -> Result<Value, Error> {
        let data = shared.read(path.trim_matches('/'))?;
        Ok(Value::from(minijinja::value::Serde(data)))
    });
    let shared = functions.clone();
    environment.add_function("kv", move |path: String| -> Result<Value, Error> {
        shared.kv(path.trim_matches('/'))
    });
    let shared = functions.clone();
    environment.add_function(
        "encrypt",
        move |key: String, plaintext: String, mount: Option<String>| -> Result<Value, Error> {
            shared
                .encrypt(&mount.unwrap_or_else(|| "transit".into()), &key, plaintext)
                .map(Value::from)
        },
    );
    let shared = functions.clone();
    environment.add_function(
        "decrypt",
        move |key: String, ciphertext: String, mount: Option<String>| -> Result<Value, Error> {
            shared
                .decrypt(
                    &mount.unwrap_or_else(|| "transit".into()),
                    &key,
                    &ciphertext,
                )
                .map(Value::from)
        },
    );
}

impl Functions {
    /// A failed call's error for the template, remembering a refusal.
    fn server_error(&self, action: String, error: &ClientError) -> Error {
        if error.status().is_some_and(|status| status < 500) {
            self.refused.store(true, Ordering::Relaxed);
        }
        own_error(format!("{action}: {error}"))
    }

    /// The `data` of a read of `path`, once per pass.
    fn read(&self, path: &str) -> Result<Json, Error> {
        if let Some(data) = self
            .reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
        {
            return Ok(data.clone());
        }
        let response = self
            .runtime
            .block_on(self.client.read(path))
            .map_err(|e| self.server_error(format!("reading {path}"), &e))?;
        let data = response
            .and_then(|r| r.data)
            .ok_or_else(|| own_error(format!("no secret at {path}")))?;
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned(), data.clone());
        Ok(data)
    }

    /// A KV secret by its path (`secret/app`), as `{data, metadata}`.
    fn kv(&self, path: &str) -> Result<Value, Error> {
        let mount = self
            .runtime
            .block_on(self.client.kv_mount_for(path))
            .map_err(|e| self.server_error(format!("finding the KV mount of {path}"), &e))?;
        let relative = mount.relative(path);
        let kv = if mount.version == 2 {
            let data = self.read(&format!("{}/data/{relative}", mount.mount))?;
            if data.get("data").is_none_or(Json::is_null) {
                return Err(own_error(format!(
                    "the latest version of {path} is deleted"
                )));
            }
            data
        } else {
            serde_json::json!({ "data": self.read(path)?, "metadata": {} })
        };
        Ok(Value::from(minijinja::value::Serde(kv)))
    }

    fn encrypt(&self, mount: &str, key: &str, plaintext: String) -> Result<String, Error> {
        let plaintext = Zeroizing::new(plaintext);
        let memory_key = (
            mount.to_owned(),
            key.to_owned(),
            sha256(plaintext.as_bytes()),
        );
        if let Some(ciphertext) = self
            .ciphertexts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&memory_key)
        {
            return Ok(ciphertext.clone());
        }
        let ciphertext = self
            .runtime
            .block_on(
                self.client
                    .transit(mount)
                    .encrypt(key, plaintext.as_bytes(), None),
            )
            .map_err(|e| self.server_error(format!("encrypting with {mount}/keys/{key}"), &e))?;
        self.ciphertexts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(memory_key, ciphertext.clone());
        Ok(ciphertext)
    }

    fn decrypt(&self, mount: &str, key: &str, ciphertext: &str) -> Result<String, Error> {
        let plaintext = self
            .runtime
            .block_on(self.client.transit(mount).decrypt(key, ciphertext, None))
            .map_err(|e| self.server_error(format!("decrypting with {mount}/keys/{key}"), &e))?;
        String::from_utf8(plaintext.to_vec())
            .map_err(|_| own_error(format!("the plaintext of {mount}/keys/{key} is not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_template_and_line_and_no_value() {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment
            .add_template("app.conf.tmpl", "line one\n{{ password | int }}\n")
            .unwrap();
        let error = environment
            .get_template("app.conf.tmpl")
            .unwrap()
            .render(minijinja::context! { password => "hunter2-not-a-number" })
            .unwrap_err();
        let text = describe(&error, "app.conf.tmpl");
        assert!(
            text.starts_with("template app.conf.tmpl, line 2: "),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");

        let error = environment
            .add_template("bad.tmpl", "ok\n\n{{ secret( }}")
            .unwrap_err();
        let text = describe(&error, "bad.tmpl");
        assert!(
            text.starts_with("template bad.tmpl, line 3: syntax error"),
            "{text}"
        );
    }
}
