//! `patchbay-local`: the whole stack on loopback.
//!
//!   patchbay-local up                 emulator + resources from the SAM template + API on :3000 + worker
//!   patchbay-local token --sub alice  a development token for user `alice` (24 h)
//!   patchbay-local reconcile          one reconciliation pass on the running stack; prints its report
//!   patchbay-local dlq list           what waits in the running stack's dead-letter queue
//!   patchbay-local dlq redrive        every dead letter back onto the work queue
//!   patchbay-local bench-webhooks [--n N] [--concurrency C]
//!                                     signed inbound webhooks through a fresh stack: throughput, latency
//!   patchbay-local bench-cold [--dir DIR] [--rounds R] [--warm W]
//!                                     cold starts of the release binaries (`scripts/bench cold`)
//!   patchbay-local bench-calls        the AWS requests each operation makes, counted at the emulator
//!
//! This file parses the arguments and dispatches; the subcommands live in `cli/`.
//!
//! Environment: PATCHBAY_PORT (3000), PATCHBAY_MOTO_PORT (0: any free port), PATCHBAY_DEV_JWT_SECRET,
//! PATCHBAY_CARRIER (sandbox), TELNYX_BASE_URL, TELNYX_API_KEY (stored in the local carrier secret),
//! PATCHBAY_LOCAL_VISIBILITY_TIMEOUT (seconds before a failed work message is retried; default: the
//! queue's), PATCHBAY_FAULTS (the contention fault layer in front of the functions' DynamoDB calls,
//! e.g. `conflict=0.25,throttle=0.1`; default off), RUST_LOG.

mod cli;

use cli::{bench, ops, up, Error};
use patchbay_local::devauth::DevAuth;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("up") => up::up().await,
        Some("bench-webhooks") => {
            let mut n: usize = 2000;
            let mut concurrency: usize = 32;
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--n" => n = it.next().and_then(|v| v.parse().ok()).ok_or("--n takes a count")?,
                    "--concurrency" => concurrency = it.next().and_then(|v| v.parse().ok()).ok_or("--concurrency takes a count")?,
                    other => return Err(format!("unknown argument {other}").into()),
                }
            }
            bench::bench_webhooks(n, concurrency).await
        }
        Some("token") => {
            let mut sub = None;
            let mut ttl: i64 = 86_400;
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--sub" => sub = it.next().cloned(),
                    "--ttl" => ttl = it.next().and_then(|t| t.parse().ok()).ok_or("--ttl takes seconds")?,
                    other => return Err(format!("unknown argument {other}").into()),
                }
            }
            let sub = sub.ok_or("usage: patchbay-local token --sub USER [--ttl SECONDS]")?;
            println!("{}", DevAuth::from_env().mint(&sub, ttl)?);
            Ok(())
        }
        Some("bench-cold") => {
            let (mut dir, mut rounds, mut warm) = (String::from("target/release"), 5usize, 20usize);
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--dir" => dir = it.next().cloned().ok_or("--dir takes a directory")?,
                    "--rounds" => rounds = it.next().and_then(|v| v.parse().ok()).ok_or("--rounds takes a count")?,
                    "--warm" => warm = it.next().and_then(|v| v.parse().ok()).ok_or("--warm takes a count")?,
                    other => return Err(format!("unknown argument {other}").into()),
                }
            }
            bench::bench_cold(&dir, rounds, warm).await
        }
        Some("bench-calls") => bench::bench_calls().await,
        Some("reconcile") => ops::ops_call(reqwest::Method::POST, "/local/reconcile").await,
        Some("events") => match args.get(1).map(String::as_str) {
            Some("tail") => ops::events_tail().await,
            _ => Err("usage: patchbay-local events tail".into()),
        },
        Some("dlq") => match args.get(1).map(String::as_str) {
            Some("list") => ops::ops_call(reqwest::Method::GET, "/local/dlq").await,
            Some("redrive") => ops::ops_call(reqwest::Method::POST, "/local/dlq/redrive").await,
            _ => Err("usage: patchbay-local dlq list | dlq redrive".into()),
        },
        Some(other) => Err(format!("unknown command {other}; use up, token --sub USER, reconcile, dlq list|redrive").into()),
    }
}
