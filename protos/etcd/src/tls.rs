//! TLS for `https://` endpoints: rustls (ring), never OpenSSL.

use std::fmt;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// How to reach etcd over TLS (`https://` endpoints).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM CA certificates that etcd's certificate must chain to; `None`:
    /// the system's trust store.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and key, for etcd's `--client-cert-auth`.
    pub identity: Option<TlsIdentity>,
    /// The name etcd's certificate must carry, instead of the endpoint's
    /// host (e.g. for an IP endpoint whose certificate names a DNS name).
    pub server_name: Option<String>,
}

/// A client certificate (chain) and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsIdentity {
    /// The certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl TlsConfig {
    pub(crate) fn to_tonic(&self, handshake_timeout: std::time::Duration) -> ClientTlsConfig {
        let mut c = ClientTlsConfig::new().timeout(handshake_timeout);
        c = match &self.ca_pem {
            Some(pem) => c.ca_certificate(Certificate::from_pem(pem)),
            None => c.with_native_roots(),
        };
        if let Some(id) = &self.identity {
            c = c.identity(Identity::from_pem(&id.cert_pem, &id.key_pem));
        }
        if let Some(name) = &self.server_name {
            c = c.domain_name(name.clone());
        }
        c
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| format!("<{} bytes>", p.len())))
            .field("identity", &self.identity)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_pem", &format!("<{} bytes>", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}
