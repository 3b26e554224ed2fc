//! The HTTPS listener: ksqlDB's `ssl.*` listener settings on OpenSSL, with ALPN so that
//! clients speak HTTP/2 (`h2`) or HTTP/1.1 over TLS.

use std::path::{Path, PathBuf};

use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::ssl::{AlpnError, SslAcceptor, SslMethod, SslVerifyMode, select_next_proto};
use openssl::x509::X509;

use crate::ServerError;

/// Whether the listener asks clients for certificates (`ssl.client.authentication`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthentication {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for and checked if given.
    Requested,
    /// A certificate signed by the trust store is required.
    Required,
}

/// The HTTPS listener's key material, with ksqlDB's names.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// `ssl.keystore.location`: a PKCS#12 store, or a PEM file with the certificate chain
    /// and the private key.
    pub key_store: PathBuf,
    /// `ssl.keystore.type`: `PKCS12` or `PEM`; read from the file when not given.
    pub key_store_type: Option<String>,
    /// `ssl.keystore.password`.
    pub key_store_password: Option<String>,
    /// `ssl.key.password`: the private key's own password (encrypted PEM keys).
    pub key_password: Option<String>,
    /// `ssl.truststore.location`: the CAs of client certificates (PEM or PKCS#12).
    pub trust_store: Option<PathBuf>,
    /// `ssl.truststore.password`.
    pub trust_store_password: Option<String>,
    /// `ssl.client.authentication`.
    pub client_authentication: ClientAuthentication,
    /// `ssl.cipher.suites`: OpenSSL cipher list for TLS 1.2 and below, if given.
    pub cipher_suites: Option<String>,
}

/// The protocols offered in ALPN, in order of preference (wire format).
const ALPN: &[u8] = b"\x02h2\x08http/1.1";

fn tls_error(path: &Path, reason: impl std::fmt::Display) -> ServerError {
    ServerError::Tls {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn is_pem(bytes: &[u8], declared: Option<&str>) -> bool {
    declared.is_some_and(|t| t.eq_ignore_ascii_case("PEM"))
        || String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).contains("-----BEGIN")
}

fn refuse_jks(path: &Path, bytes: &[u8]) -> Result<(), ServerError> {
    if bytes.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) {
        return Err(tls_error(
            path,
            "a Java KeyStore (JKS) cannot be read; convert it with `keytool -importkeystore \
             -deststoretype PKCS12` or give PEM files with type PEM",
        ));
    }
    Ok(())
}

/// Builds the acceptor of the HTTPS listener.
pub fn acceptor(config: &TlsConfig) -> Result<SslAcceptor, ServerError> {
    let path = &config.key_store;
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| tls_error(path, e))?;
    let bytes = std::fs::read(path).map_err(|e| tls_error(path, e))?;
    refuse_jks(path, &bytes)?;
    if is_pem(&bytes, config.key_store_type.as_deref()) {
        let chain = X509::stack_from_pem(&bytes).map_err(|e| tls_error(path, e))?;
        let mut chain = chain.into_iter();
        let leaf = chain
            .next()
            .ok_or_else(|| tls_error(path, "the PEM file holds no certificate"))?;
        builder
            .set_certificate(&leaf)
            .map_err(|e| tls_error(path, e))?;
        for extra in chain {
            builder
                .add_extra_chain_cert(extra)
                .map_err(|e| tls_error(path, e))?;
        }
        let key = match config.key_password.as_deref() {
            Some(password) => PKey::private_key_from_pem_passphrase(&bytes, password.as_bytes()),
            None => PKey::private_key_from_pem(&bytes),
        }
        .map_err(|e| tls_error(path, format!("no readable private key: {e}")))?;
        builder
            .set_private_key(&key)
            .map_err(|e| tls_error(path, e))?;
    } else {
        let store = Pkcs12::from_der(&bytes)
            .and_then(|p| p.parse2(config.key_store_password.as_deref().unwrap_or("")))
            .map_err(|e| tls_error(path, format!("not a readable PKCS#12 key store: {e}")))?;
        let (Some(cert), Some(key)) = (store.cert, store.pkey) else {
            return Err(tls_error(
                path,
                "the key store holds no certificate and key",
            ));
        };
        builder
            .set_certificate(&cert)
            .map_err(|e| tls_error(path, e))?;
        builder
            .set_private_key(&key)
            .map_err(|e| tls_error(path, e))?;
        for extra in store.ca.into_iter().flatten() {
            builder
                .add_extra_chain_cert(extra)
                .map_err(|e| tls_error(path, e))?;
        }
    }
    builder
        .check_private_key()
        .map_err(|e| tls_error(path, format!("the key does not match the certificate: {e}")))?;
    if let Some(ciphers) = &config.cipher_suites {
        builder
            .set_cipher_list(ciphers)
            .map_err(|e| tls_error(path, format!("ssl.cipher.suites: {e}")))?;
    }
    if config.client_authentication != ClientAuthentication::None {
        let trust = config.trust_store.as_ref().ok_or_else(|| {
            tls_error(
                path,
                "ssl.client.authentication needs ssl.truststore.location",
            )
        })?;
        let store = builder.cert_store_mut();
        for ca in trust_certificates(trust, config.trust_store_password.as_deref())? {
            store.add_cert(ca).map_err(|e| tls_error(trust, e))?;
        }
        let mut mode = SslVerifyMode::PEER;
        if config.client_authentication == ClientAuthentication::Required {
            mode |= SslVerifyMode::FAIL_IF_NO_PEER_CERT;
        }
        builder.set_verify(mode);
    }
    builder.set_alpn_select_callback(|_, offered| {
        select_next_proto(ALPN, offered).ok_or(AlpnError::NOACK)
    });
    Ok(builder.build())
}

/// The certificates of a trust store: PEM, or PKCS#12.
pub fn trust_certificates(path: &Path, password: Option<&str>) -> Result<Vec<X509>, ServerError> {
    let bytes = std::fs::read(path).map_err(|e| tls_error(path, e))?;
    refuse_jks(path, &bytes)?;
    if is_pem(&bytes, None) {
        return X509::stack_from_pem(&bytes).map_err(|e| tls_error(path, e));
    }
    let store = Pkcs12::from_der(&bytes)
        .and_then(|p| p.parse2(password.unwrap_or("")))
        .map_err(|e| tls_error(path, format!("not a readable PKCS#12 trust store: {e}")))?;
    Ok(store.ca.into_iter().flatten().chain(store.cert).collect())
}
