//! TLS on the API listener: rustls over aws-lc-rs, with a configuration that SIGHUP rebuilds
//! from the files (a renewed certificate is served to new connections; open ones keep theirs).

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use crate::ServerError;
use crate::config::{ListenerConfig, TlsVersion};

/// The listener's TLS settings and the rustls configuration last built from them.
pub(crate) struct TlsListener {
    settings: ListenerConfig,
    config: ArcSwap<ServerConfig>,
}

/// The certificate chain a client presented (DER, end-entity certificate first), whose key
/// the handshake proved it holds; verified against `tls_client_ca_file` when that is set,
/// otherwise only by the `cert` auth method, against its roles' CAs. The accept loop puts it
/// in the extensions of every request of that connection, for what authenticates by
/// certificate.
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Arc<[Vec<u8>]>);

impl TlsListener {
    /// Reads the files `settings` names; any problem with them is a startup error.
    pub(crate) fn new(settings: ListenerConfig) -> Result<Self, ServerError> {
        let config = server_config(&settings)?;
        Ok(Self {
            settings,
            config: ArcSwap::from_pointee(config),
        })
    }

    /// The configuration new connections are accepted with.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.load_full())
    }

    /// Reads the files again; if they no longer make a valid configuration, the one in use
    /// stays and the error is logged.
    pub(crate) fn reload(&self) {
        match server_config(&self.settings) {
            Ok(config) => {
                self.config.store(Arc::new(config));
                tracing::info!("SIGHUP: reloaded the TLS certificate and key");
            }
            Err(error) => {
                tracing::error!(%error, "SIGHUP: keeping the TLS certificate in use");
            }
        }
    }
}

/// The rustls configuration for `settings`.
fn server_config(settings: &ListenerConfig) -> Result<ServerConfig, ServerError> {
    let (Some(cert_file), Some(key_file)) = (&settings.tls_cert_file, &settings.tls_key_file)
    else {
        return Err(ServerError::Config(
            "listener: tls_cert_file and tls_key_file are required (or tls_disable = true)".into(),
        ));
    };
    let chain = certificates(cert_file, "listener.tls_cert_file")?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        ServerError::Config(format!(
            "listener.tls_key_file {}: no usable private key ({e})",
            key_file.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match settings.tls_min_version {
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| ServerError::Config(format!("listener: {e}")))?;
    let builder = match &settings.tls_client_ca_file {
        // As Vault's listener, every client is asked for a certificate, which it may leave
        // out. Which CA issued it is for the `cert` auth method to judge, against its
        // roles; nothing else reads the chain, so a self-made certificate gains nothing
        // here (a token-authenticated request ignores it). The handshake signature is still
        // verified: it is what proves the client holds the certificate's key.
        None => builder.with_client_cert_verifier(Arc::new(AnyClientCertificate {
            algorithms: provider.signature_verification_algorithms,
        })),
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates(ca_file, "listener.tls_client_ca_file")? {
                roots.add(ca).map_err(|e| {
                    ServerError::Config(format!(
                        "listener.tls_client_ca_file {}: {e}",
                        ca_file.display()
                    ))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            // Without `tls_require_client_cert` a client may come without a certificate
            // (and use a token); one it does present must still chain to the CA.
            let verifier = if settings.tls_require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| ServerError::Config(format!("listener.tls_client_ca_file: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        ServerError::Config(format!(
            "listener: the certificate in {} and the key in {} do not make a usable pair ({e})",
            cert_file.display(),
            key_file.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any client certificate chain at the TLS layer (optional, never required), but
/// verifies the handshake signature with the provider's algorithms, as any verifier must.
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The PEM certificates in `path` (at least one).
fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let error = |detail: String| ServerError::Config(format!("{key} {}: {detail}", path.display()));
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if chain.is_empty() {
        return Err(error("no PEM certificate in it".into()));
    }
    Ok(chain)
}

/// `--dev-tls`: a new CA, and a certificate it signs for this machine's loopback names, each
/// as PEM. The CA's key is dropped here: nothing else is ever signed with it.
pub(crate) struct DevCertificates {
    /// The CA certificate clients trust (`WARD_CACERT`).
    pub(crate) ca_pem: String,
    /// The server's certificate.
    pub(crate) cert_pem: String,
    /// The server's private key.
    pub(crate) key_pem: String,
}

impl DevCertificates {
    /// A CA valid for ten years and a server certificate for `localhost`, `127.0.0.1` and
    /// `::1` valid for one, both ECDSA P-256, as `vault server -dev-tls` makes.
    pub(crate) fn generate() -> Result<Self, rcgen::Error> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let start = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let day = std::time::Duration::from_secs(24 * 3600);
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "Ward Dev CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = start.into();
        ca.not_after = (start + 3650 * day).into();
        let ca = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

        let mut server = CertificateParams::new(vec!["localhost".to_owned()])?;
        server.subject_alt_names.extend([
            rcgen::SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            rcgen::SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
        ]);
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.not_before = start.into();
        server.not_after = (start + 365 * day).into();
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &ca)?;
        Ok(Self {
            ca_pem: ca.pem(),
            cert_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
        })
    }
}
