//! TLS for PostgreSQL connections, through rustls with the ring provider.
//!
//! `prefer` and `require` encrypt without verifying the server's certificate (as libpq does
//! without a root certificate): they protect against eavesdropping, not against a server
//! that impersonates the database. `verify-full` checks the certificate against the CA
//! certificates of `sslrootcert` and that it names the host connected to.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::url::{PgUrl, SslMode};
use crate::{Error, StorageKind};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any certificate, but still checks the handshake's signatures with it (an
/// encrypted channel to whoever answers: libpq's `sslmode=require`).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_error(display: &str, why: impl std::fmt::Display) -> Error {
    Error::storage(
        StorageKind::Unavailable,
        format!("{display}: cannot set up TLS: {why}"),
    )
}

/// The rustls connector, accepting the empty host name the driver gives for a unix socket:
/// TLS is off there (see [`super::url`]), so the name is never used, but the driver asks for
/// a connector first and rustls refuses an empty name.
#[derive(Clone)]
pub(crate) struct Connector(MakeRustlsConnect);

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for Connector
where
    MakeRustlsConnect: tokio_postgres::tls::MakeTlsConnect<S>,
{
    type Stream = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        let domain = if domain.is_empty() {
            "localhost"
        } else {
            domain
        };
        self.0.make_tls_connect(domain)
    }
}

/// The TLS connector for `url` (unused with `sslmode=disable`), and the driver's mode set.
///
/// # Errors
/// [`Error::Storage`] (`unavailable`) when `sslrootcert` cannot be read or holds no
/// certificate.
pub(crate) fn connector(url: &mut PgUrl) -> Result<Connector, Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&url.display, e))?;
    let config = match url.ssl {
        SslMode::VerifyFull => {
            let path = url.root_cert.as_deref().unwrap_or(std::path::Path::new(""));
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| tls_error(&url.display, format!("{}: {e}", path.display())))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| tls_error(&url.display, format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| tls_error(&url.display, format!("{}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(tls_error(
                    &url.display,
                    format!("{} holds no certificate", path.display()),
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth(),
    };
    url.config.ssl_mode(match url.ssl {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
    });
    Ok(Connector(MakeRustlsConnect::new(config)))
}
