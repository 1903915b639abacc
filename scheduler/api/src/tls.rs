//! TLS for the API, through rustls with ring (no OpenSSL): the server's
//! configuration (certificate and key, optionally client certificates
//! signed by a CA, ALPN `h2` for gRPC and `http/1.1` for REST) and the
//! client configuration a standby uses to forward to the leader (and the
//! CLI to reach the API).
//!
//! Handshakes run in their own tasks with a timeout ([`crate::conn`]), so
//! a slow client never holds up accepting others.

use std::sync::Arc;

pub use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS setting that cannot be used. Messages name the file's role, never
/// key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file holds nothing usable.
    #[error("{what}: {reason}")]
    Pem {
        /// Which file (`the certificate`, `the key`, `the client CA`).
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the combination.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM bundle (at least one).
pub fn certificates(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { what, reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { what, reason: "no PEM certificate".into() });
    }
    Ok(certs)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|_| TlsError::Pem { what: "the key", reason: "no PEM private key".into() })
}

fn roots(pem: &[u8], what: &'static str) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(pem, what)? {
        roots.add(cert).map_err(|e| TlsError::Pem { what, reason: e.to_string() })?;
    }
    Ok(roots)
}

/// The API server's TLS configuration: `cert_pem` (chain) and `key_pem`;
/// with `client_ca_pem`, clients must present a certificate it signed.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = certificates(cert_pem, "the certificate")?;
    let key = private_key(key_pem)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca_pem {
        Some(pem) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(pem, "the client CA")?),
                provider(),
            )
            .build()
            .map_err(|e| TlsError::Pem { what: "the client CA", reason: e.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration: servers verified against `ca_pem` (or the
/// system's trust store), presenting `identity` (certificate and key PEM)
/// when given.
pub fn client_config(
    ca_pem: Option<&[u8]>,
    identity: Option<(&[u8], &[u8])>,
) -> Result<rustls::ClientConfig, TlsError> {
    let roots = match ca_pem {
        Some(pem) => roots(pem, "the CA")?,
        None => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                // Skip what the system holds but rustls cannot use.
                let _ = roots.add(cert);
            }
            roots
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates(cert, "the certificate")?, private_key(key)?)?,
        None => builder.with_no_client_auth(),
    })
}

#[cfg(test)]
mod tests;
