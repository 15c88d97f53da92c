//! The `patchbay-local` binary's subcommands (declared by `main.rs`, not in the library) and their environment helpers.

pub(crate) mod bench;
pub(crate) mod ops;
pub(crate) mod up;

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

pub(crate) fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

pub(crate) fn parse_env<T: std::str::FromStr>(name: &str, default: T) -> Result<T, Error> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().map_err(|_| format!("{name}={v:?} is not valid").into()),
        _ => Ok(default),
    }
}
