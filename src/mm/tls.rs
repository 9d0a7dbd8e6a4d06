//! TLS beyond the platform's trusted roots (rustls): a private CA, or, for tests only, no
//! certificate check at all. One place, so every connection to the server (the REST client
//! and a WebSocket beside it) trusts exactly the same certificates.
//!
//! May import: nothing of the crate (reqwest only).

use super::MmError;

/// TLS beyond the platform's trusted roots (rustls).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM certificates of a private CA to trust in addition to the system's.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// Accept any certificate. Only for testing; the CLI warns loudly.
    pub accept_invalid_certs: bool,
}

impl TlsOptions {
    /// The private CA's certificates; none without `extra_roots_pem`. A file that holds no
    /// PEM certificate is an error, not an empty list: the user meant to trust something.
    pub fn extra_roots(&self) -> Result<Vec<reqwest::Certificate>, MmError> {
        let Some(pem) = &self.extra_roots_pem else {
            return Ok(Vec::new());
        };
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| MmError::Tls(format!("cannot read the CA certificate: {e}")))?;
        if certs.is_empty() {
            return Err(MmError::Tls(
                "the CA certificate file holds no PEM certificate".into(),
            ));
        }
        Ok(certs)
    }

    /// Applies these options to an HTTP client under construction.
    pub fn configure(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, MmError> {
        for cert in self.extra_roots()? {
            builder = builder.add_root_certificate(cert);
        }
        if self.accept_invalid_certs {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        Ok(builder)
    }
}
