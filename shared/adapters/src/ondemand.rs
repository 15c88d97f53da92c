//! Ports built from the carrier secret on the first request that needs them (`OnDemand`), and the
//! secret itself, read once per container (`SecretSource`). The API functions and the webhook
//! receiver take their carrier ports this way, so a cold start reads no secret and a list never
//! waits for it; `http::problem` answers an `Unavailable` port with a 503.

use std::sync::Arc;

use aws_types::SdkConfig;

use crate::secrets::CarrierSecrets;
use crate::Config;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The carrier secret of a configuration, read once: the first caller reads it, concurrent callers
/// wait for that read, and a failed read is not kept (the next caller tries again).
pub(crate) struct SecretSource {
    sdk: SdkConfig,
    config: Config,
    cell: tokio::sync::OnceCell<Arc<CarrierSecrets>>,
}

impl SecretSource {
    pub(crate) fn new(sdk: &SdkConfig, config: &Config) -> Self {
        Self { sdk: sdk.clone(), config: config.clone(), cell: tokio::sync::OnceCell::new() }
    }

    /// The secret, if a caller has read it already.
    pub(crate) fn loaded(&self) -> Option<&CarrierSecrets> {
        self.cell.get().map(|s| s.as_ref())
    }

    pub(crate) async fn get(&self) -> Result<Arc<CarrierSecrets>, BoxError> {
        let secrets =
            self.cell.get_or_try_init(|| async { CarrierSecrets::load_configured(&self.sdk, &self.config).await.map(Arc::new) }).await?;
        Ok(secrets.clone())
    }
}

pub(crate) type Build<T> = fn(&Config, &CarrierSecrets) -> Result<T, BoxError>;

/// A port built from the carrier secret on the first request that needs it, then kept for the
/// container's life. A failure (the secret unreadable, a credential malformed) is answered as
/// `Unavailable` (503) and not kept: the next request tries again.
pub struct OnDemand<T> {
    cell: Arc<tokio::sync::OnceCell<T>>,
    source: Option<(Arc<SecretSource>, Build<T>)>,
}

impl<T> Clone for OnDemand<T> {
    fn clone(&self) -> Self {
        Self { cell: self.cell.clone(), source: self.source.clone() }
    }
}

/// An on-demand port could not be built.
#[derive(Debug, thiserror::Error)]
#[error("carrier credentials unavailable: {0}")]
pub struct Unavailable(BoxError);

impl<T> OnDemand<T> {
    /// A port built already.
    pub fn ready(port: T) -> Self {
        Self { cell: Arc::new(tokio::sync::OnceCell::new_with(Some(port))), source: None }
    }

    pub(crate) fn from_secret(source: &Arc<SecretSource>, build: Build<T>) -> Self {
        Self { cell: Arc::new(tokio::sync::OnceCell::new()), source: Some((source.clone(), build)) }
    }

    /// The port, built now if this is the first request that needs it.
    pub async fn get(&self) -> Result<&T, Unavailable> {
        self.cell
            .get_or_try_init(|| async {
                let (source, build) = self.source.as_ref().ok_or("an on-demand port with neither a value nor a source")?;
                let secrets = source.get().await?;
                build(&source.config, &secrets)
            })
            .await
            .map_err(Unavailable)
    }
}
