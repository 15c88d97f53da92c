//! Every function's logging, set up once at cold start: what `lambda_runtime`'s default subscriber
//! does (Lambda's advanced logging controls: JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`, the level from
//! `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO; no timestamps, CloudWatch adds them), without
//! its `EnvFilter`, whose regex engine was a tenth of a function's binary. A level is all Lambda's
//! controls set; per-module directives in `RUST_LOG` are not supported (its most verbose level is
//! taken, e.g. `patchbay=debug` → DEBUG).

use tracing::level_filters::LevelFilter;

/// The level from Lambda's `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (`TRACE`, `debug`, `warn`, ...).
pub fn level_from(aws_level: Option<&str>, rust_log: Option<&str>) -> LevelFilter {
    let raw = aws_level.filter(|l| !l.trim().is_empty()).or(rust_log).unwrap_or("info");
    // `RUST_LOG` may hold directives (`info,patchbay=debug`): the most verbose level named wins.
    raw.split(',')
        .filter_map(|directive| directive.rsplit('=').next())
        .filter_map(|level| match level.trim() {
            // Lambda's levels go up to FATAL, which tracing calls ERROR.
            l if l.eq_ignore_ascii_case("fatal") => Some(LevelFilter::ERROR),
            l => l.parse::<LevelFilter>().ok(),
        })
        .max()
        .unwrap_or(LevelFilter::INFO)
}

/// Installs the subscriber; a second call (tests) is harmless.
pub fn init() {
    let level = level_from(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(), std::env::var("RUST_LOG").ok().as_deref());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false).without_time();
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_from_lambda_and_rust_log() {
        assert_eq!(level_from(None, None), LevelFilter::INFO);
        assert_eq!(level_from(Some("DEBUG"), Some("error")), LevelFilter::DEBUG);
        assert_eq!(level_from(Some(""), Some("warn")), LevelFilter::WARN);
        assert_eq!(level_from(None, Some("info,patchbay=trace")), LevelFilter::TRACE);
        assert_eq!(level_from(Some("FATAL"), None), LevelFilter::ERROR);
        assert_eq!(level_from(Some("loud"), None), LevelFilter::INFO);
        assert_eq!(level_from(None, Some("off")), LevelFilter::OFF);
    }
}
