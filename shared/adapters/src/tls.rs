//! One TLS stack for every client a function makes: rustls on ring, for the AWS SDK's clients and for
//! the carriers' and Vapi's (`outbound`, on the SDK's connector). The SDK's default HTTPS client would
//! bring aws-lc, a C library that is most of a TLS stack's size; `scripts/bench cold` measures the
//! difference. reqwest (the `reqwest` feature) is for the local stack and the tests, never a function.

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Makes ring the process's rustls provider, which reqwest's `rustls-no-provider` build uses. Safe to
/// call more than once: a provider already installed stays.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder on the installed provider: every reqwest client (the local stack's, the
/// tests') starts here, since a `rustls-no-provider` build panics without one.
#[cfg(feature = "reqwest")]
pub fn reqwest_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// The HTTPS client the AWS SDK's clients share.
pub fn aws_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

#[cfg(all(test, feature = "reqwest"))]
mod tests {
    #[test]
    fn reqwest_builds_on_the_installed_provider() {
        super::reqwest_builder().build().expect("a reqwest client on ring");
        super::install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
