//! Logging of the local stack: the level from `RUST_LOG` (default info), text unless
//! `AWS_LAMBDA_LOG_FORMAT=json`, with `RUST_LOG`'s full directives (`info,patchbay=debug`). On Lambda
//! the functions use `patchbay_adapters::telemetry`, which takes a level only (no regex engine).

pub fn init() {
    let filter =
        std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".to_owned()).to_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").map(|f| f.eq_ignore_ascii_case("json")).unwrap_or(false);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // A second init (tests, the local stack embedding several functions) is harmless.
    let _ = if json { builder.json().without_time().try_init() } else { builder.try_init() };
}
