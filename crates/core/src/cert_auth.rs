//! The `cert` auth method: roles that trust a CA (or pin one certificate) and the settings of
//! the token a login with a matching client certificate gets, stored behind the barrier below
//! the mount's storage prefix, as Vault's (OpenBao's) `cert` method.
//!
//! The transport hands the core the chain the client presented on its TLS connection, having
//! checked only that the client holds the key of its certificate. Which CA issued it is
//! decided here, per role, by rustls-webpki: a path from the client's certificate (through the
//! intermediates it sent) to one of the role's certificates, valid now, for client
//! authentication. The first role, in name order, whose CA verifies the chain and whose name
//! constraints the certificate meets gives the token.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use serde_json::json;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::engine::{Args, Call, Engine, Route};
use crate::mounts::MountEntry;
use crate::params::Params;
use crate::record;
use crate::token::LoginToken;
use crate::token::store::{cidr_contains, validate_cidrs};
use crate::{Core, CoreError, CoreResult, Operation, Response};

/// The `cert` engine.
pub(crate) struct CertAuth;

/// The routes of a `cert` mount.
#[derive(Clone, Copy)]
pub(crate) enum CertRoute {
    Certs,
    Cert,
    Login,
}

impl Engine for CertAuth {
    type Route = CertRoute;

    const ROUTES: &'static [Route<CertRoute>] = {
        use CertRoute as C;
        use Operation::{Delete, List, Read, Write};
        &[
            Route::new("certs", &[List], C::Certs),
            Route::new("certs/:name", &[Read, Write, Delete], C::Cert).checks_existence(),
            Route::new("login", &[Write], C::Login).login(),
        ]
    };

    async fn exists(
        core: &Core,
        mount: &MountEntry,
        _route: CertRoute,
        args: Args<'_>,
    ) -> CoreResult<bool> {
        Ok(read_role(core, mount, &role_name(args.get(0)))
            .await?
            .is_some())
    }

    async fn handle(core: &Core, call: Call<'_, CertRoute>) -> CoreResult<Response> {
        use CertRoute as C;
        let p = Params(call.data);
        let (mount, name) = (call.mount, role_name(call.args.get(0)));
        match (call.route, call.operation) {
            (C::Certs, _) => {
                let keys = list_roles(core, mount).await?;
                if keys.is_empty() {
                    return Err(CoreError::NotFound(String::new()));
                }
                Ok(Response::data(json!({ "keys": keys })))
            }
            (C::Cert, Operation::Read) => {
                let role = read_role(core, mount, &name).await?;
                let role = role.ok_or_else(|| CoreError::NotFound(String::new()))?;
                Ok(Response::data(role.to_json()))
            }
            (C::Cert, Operation::Delete) => {
                core.barrier.delete(&role_key(mount, &name)).await?;
                Ok(Response::empty())
            }
            (C::Cert, _) => {
                change_role(core, mount, &name, |stored| {
                    stored.unwrap_or_default().updated(&name, &p)
                })
                .await?;
                Ok(Response::empty())
            }
            (C::Login, _) => {
                let chain = call.client_certificates.unwrap_or_default();
                core.cert_login(mount, &p, chain, call.remote).await
            }
        }
    }
}

/// Role names are case-insensitive, as Vault's.
fn role_name(given: &str) -> String {
    given.to_lowercase()
}

fn roles_prefix(mount: &MountEntry) -> String {
    format!("{}cert/", mount.storage_prefix())
}

fn role_key(mount: &MountEntry, name: &str) -> String {
    format!("{}{name}", roles_prefix(mount))
}

async fn list_roles(core: &Core, mount: &MountEntry) -> CoreResult<Vec<String>> {
    let mut keys = core.barrier.list(&roles_prefix(mount)).await?;
    keys.sort();
    Ok(keys)
}

async fn read_role(core: &Core, mount: &MountEntry, name: &str) -> CoreResult<Option<CertRole>> {
    record::read(core, &role_key(mount, name), "cert role").await
}

/// Stores role `name` as `change` makes it from the stored one, by compare-and-set.
async fn change_role(
    core: &Core,
    mount: &MountEntry,
    name: &str,
    change: impl Fn(Option<CertRole>) -> CoreResult<CertRole>,
) -> CoreResult<()> {
    record::change(core, &role_key(mount, name), "cert role", change).await
}

/// A stored role: the certificates it trusts, the names it admits and its token's settings.
#[derive(Serialize, Deserialize, Default)]
struct CertRole {
    /// PEM: CA certificates a client's chain must reach, or one (non-CA) certificate a
    /// client must present exactly.
    certificate: String,
    display_name: String,
    allowed_common_names: Vec<String>,
    allowed_dns_sans: Vec<String>,
    token_policies: Vec<String>,
    token_ttl: u64,
    token_max_ttl: u64,
    token_bound_cidrs: Vec<String>,
}

impl CertRole {
    /// This role with the settings `p` gives (`policies`, `ttl` and `max_ttl` are Vault's
    /// older names of the `token_` ones). A new role needs a certificate; its display name
    /// defaults to its name.
    fn updated(mut self, name: &str, p: &Params<'_>) -> CoreResult<Self> {
        if let Some(pem) = p.str("certificate")? {
            trusted_certificates(&pem)?;
            self.certificate = pem;
        }
        if self.certificate.is_empty() {
            return Err(CoreError::bad("failed to parse certificate"));
        }
        if let Some(display_name) = p.str("display_name")? {
            self.display_name = display_name;
        }
        if self.display_name.is_empty() {
            self.display_name = name.to_owned();
        }
        if let Some(names) = p.str_list("allowed_common_names")? {
            self.allowed_common_names = names;
        }
        if let Some(names) = p.str_list("allowed_dns_sans")? {
            self.allowed_dns_sans = names;
        }
        if let Some(policies) = p.token_policies()? {
            self.token_policies = policies;
        }
        if let Some(ttl) = p.duration("token_ttl")?.or(p.duration("ttl")?) {
            self.token_ttl = ttl;
        }
        if let Some(max) = p.duration("token_max_ttl")?.or(p.duration("max_ttl")?) {
            self.token_max_ttl = max;
        }
        if self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(CoreError::bad(
                "\"token_ttl\" value must be less than \"token_max_ttl\" value",
            ));
        }
        if let Some(cidrs) = p.str_list("token_bound_cidrs")? {
            validate_cidrs(&cidrs)?;
            self.token_bound_cidrs = cidrs;
        }
        Ok(self)
    }

    /// OpenBao's answer to a read of the role (the settings Ward does not have at their
    /// defaults).
    fn to_json(&self) -> serde_json::Value {
        let list = |names: &[String]| (!names.is_empty()).then(|| names.to_vec());
        json!({
            "allowed_common_names": list(&self.allowed_common_names),
            "allowed_dns_sans": list(&self.allowed_dns_sans),
            "allowed_email_sans": null,
            "allowed_metadata_extensions": null,
            "allowed_names": null,
            "allowed_organizational_units": null,
            "allowed_uri_sans": null,
            "certificate": self.certificate,
            "display_name": self.display_name,
            "ocsp_ca_certificates": "",
            "ocsp_enabled": false,
            "ocsp_fail_open": false,
            "ocsp_query_all_servers": false,
            "ocsp_servers_override": null,
            "policies": self.token_policies,
            "required_extensions": null,
            "token_bound_cidrs": self.token_bound_cidrs,
            "token_explicit_max_ttl": 0,
            "token_max_ttl": self.token_max_ttl,
            "token_no_default_policy": false,
            "token_num_uses": 0,
            "token_period": 0,
            "token_policies": self.token_policies,
            "token_strictly_bind_ip": false,
            "token_ttl": self.token_ttl,
            "token_type": "default",
        })
    }

    /// Whether the client's certificate has a name this role admits: a common name
    /// matching one of `allowed_common_names` and a DNS name matching one of
    /// `allowed_dns_sans`, each when the list is not empty.
    fn admits(&self, client: &ClientCertificate) -> bool {
        let any = |patterns: &[String], names: &[&str]| {
            patterns.is_empty()
                || patterns
                    .iter()
                    .any(|pattern| names.iter().any(|name| glob(pattern, name)))
        };
        any(&self.allowed_common_names, &[client.common_name.as_str()])
            && any(&self.allowed_dns_sans, &client.dns_names)
    }
}

/// The certificates of a role's PEM, each parsed; an error if there is none or one does not
/// parse (Vault's "failed to parse certificate").
fn trusted_certificates(pem: &str) -> CoreResult<Vec<CertificateDer<'static>>> {
    let unparsed = || CoreError::bad("failed to parse certificate");
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| unparsed())?;
    if certificates.is_empty()
        || certificates
            .iter()
            .any(|der| X509Certificate::from_der(der).is_err())
    {
        return Err(unparsed());
    }
    Ok(certificates)
}

/// Vault's glob (go-glob): `*` matches any run of characters, every other character itself.
fn glob(pattern: &str, subject: &str) -> bool {
    let mut parts: Vec<&str> = pattern.split('*').collect();
    let last = parts.pop().unwrap_or_default();
    if parts.is_empty() {
        return pattern == subject;
    }
    let Some(mut rest) = subject.strip_prefix(parts[0]) else {
        return false;
    };
    for middle in &parts[1..] {
        let Some(at) = rest.find(middle) else {
            return false;
        };
        rest = &rest[at + middle.len()..];
    }
    rest.ends_with(last)
}

/// What a login reads from the client's certificate (Vault's token metadata).
struct ClientCertificate<'a> {
    common_name: String,
    dns_names: Vec<&'a str>,
    /// Decimal, as Vault shows it.
    serial_number: String,
    /// Hex bytes separated by `:`, empty when the certificate has none.
    subject_key_id: String,
    authority_key_id: String,
}

impl<'a> ClientCertificate<'a> {
    fn parse(der: &'a [u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let colon_hex = |bytes: &[u8]| {
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        let mut parsed = Self {
            common_name: cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or_default()
                .to_owned(),
            dns_names: Vec::new(),
            serial_number: cert.serial.to_string(),
            subject_key_id: String::new(),
            authority_key_id: String::new(),
        };
        for extension in cert.extensions() {
            match extension.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => {
                    parsed.subject_key_id = colon_hex(id.0);
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    if let Some(id) = &aki.key_identifier {
                        parsed.authority_key_id = colon_hex(id.0);
                    }
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        if let GeneralName::DNSName(dns) = name {
                            parsed.dns_names.push(dns);
                        }
                    }
                }
                _ => {}
            }
        }
        Some(parsed)
    }
}

/// Whether `chain` (the client's certificate first) leads to a certificate of `role`:
/// `Ok(false)` when it does not reach the role's CAs, an error when it does not verify for
/// another reason (expired, not for client authentication...).
fn verifies(role: &CertRole, chain: &[CertificateDer<'_>], now: UnixTime) -> CoreResult<bool> {
    let trusted = trusted_certificates(&role.certificate)?;
    let first = X509Certificate::from_der(&trusted[0])
        .map_err(|_| CoreError::corrupt("cert role"))?
        .1;
    // A role whose certificate is no CA pins that one certificate, as Vault's.
    if !first.is_ca() {
        return Ok(trusted[0] == chain[0] && first.validity().is_valid());
    }
    let anchors = trusted
        .iter()
        .map(webpki::anchor_from_trusted_cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CoreError::corrupt("cert role"))?;
    let leaf = EndEntityCert::try_from(&chain[0]).map_err(verify_error)?;
    let verified = leaf.verify_for_usage(
        // aws-lc-rs only: rustls-webpki is built without its `ring` feature.
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain[1..],
        now,
        KeyUsage::client_auth(),
        None,
        None,
    );
    match verified {
        Ok(_) => Ok(true),
        Err(webpki::Error::UnknownIssuer) => Ok(false),
        Err(error) => Err(verify_error(error)),
    }
}

/// Vault's message for a chain that reaches a trusted CA but does not verify.
fn verify_error(error: webpki::Error) -> CoreError {
    let reason = match error {
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            "certificate has expired or is not yet valid".to_owned()
        }
        webpki::Error::RequiredEkuNotFoundContext(_) => {
            "certificate specifies an incompatible key usage".to_owned()
        }
        other => other.to_string(),
    };
    CoreError::bad(format!("failed to verify client's certificate: {reason}"))
}

impl Core {
    /// `auth/<mount>/login`: a token for a client whose certificate chain verifies against a
    /// role's certificates (only role `name`'s, when given) and meets its name constraints,
    /// asking from inside the role's `token_bound_cidrs` if it has any (403 otherwise).
    async fn cert_login(
        &self,
        mount: &MountEntry,
        p: &Params<'_>,
        chain: &[Vec<u8>],
        remote: Option<std::net::IpAddr>,
    ) -> CoreResult<Response> {
        if chain.is_empty() {
            return Err(CoreError::bad("no client certificate found"));
        }
        let names = match p.str("name")?.filter(|n| !n.is_empty()) {
            Some(name) => vec![role_name(&name)],
            None => list_roles(self, mount).await?,
        };
        let chain: Vec<CertificateDer<'_>> =
            chain.iter().map(|c| CertificateDer::from(&c[..])).collect();
        let client = ClientCertificate::parse(&chain[0])
            .ok_or_else(|| CoreError::bad("failed to verify client's certificate: BadDer"))?;
        let now = UnixTime::now();
        let mut reached_a_role = false;
        let mut matched = None;
        for name in names {
            let Some(role) = read_role(self, mount, &name).await? else {
                continue;
            };
            if !verifies(&role, &chain, now)? {
                continue;
            }
            reached_a_role = true;
            if role.admits(&client) {
                matched = Some((name, role));
                break;
            }
        }
        let Some((name, role)) = matched else {
            return Err(CoreError::bad(if reached_a_role {
                "no chain matching all constraints could be found for this login certificate"
            } else {
                "invalid certificate or no client certificate supplied"
            }));
        };
        let admitted = |ip| role.token_bound_cidrs.iter().any(|c| cidr_contains(c, ip));
        if !role.token_bound_cidrs.is_empty() && !remote.is_some_and(admitted) {
            return Err(CoreError::PermissionDenied);
        }
        let mut meta = serde_json::Map::new();
        meta.insert("authority_key_id".into(), json!(client.authority_key_id));
        meta.insert("cert_name".into(), json!(name));
        meta.insert("common_name".into(), json!(client.common_name));
        meta.insert("serial_number".into(), json!(client.serial_number));
        meta.insert("subject_key_id".into(), json!(client.subject_key_id));
        let login = LoginToken {
            policies: role.token_policies,
            meta,
            name: role.display_name,
            ttl: role.token_ttl,
            max_ttl: role.token_max_ttl,
            bound_cidrs: role.token_bound_cidrs,
            num_uses: 0,
            explicit_max_ttl: 0,
        };
        self.issue_login_token(mount, login).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_vaults() {
        for (pattern, subject) in [
            ("app", "app"),
            ("*", ""),
            ("*", "anything"),
            ("ap*", "app"),
            ("*.example.com", "a.example.com"),
            ("a*c*e", "abcde"),
            ("a*a", "aa"),
            ("**", "x"),
        ] {
            assert!(glob(pattern, subject), "{pattern} {subject}");
        }
        for (pattern, subject) in [
            ("app", "apps"),
            ("app", "App"),
            ("ap*", "xapp"),
            ("*.example.com", "example.com"),
            ("a*c*e", "abde"),
            ("a*a", "a"),
            ("", "x"),
        ] {
            assert!(!glob(pattern, subject), "{pattern} {subject}");
        }
    }
}
