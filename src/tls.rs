//! TLS set-up. reqwest is built without a bundled crypto provider; the process
//! installs ring's once, at start (and tests do the same before they build a
//! client).

/// Installs ring as the process's rustls crypto provider. Idempotent.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
