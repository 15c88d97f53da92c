//! The adapters' module picture, held like the domain's (`shared/domain/tests/layering.rs`): each
//! top-level module of `src/` may import only the modules its row of [`LAYERS`] lists, and the table
//! is acyclic. Three rules are what the rows encode:
//!
//! - The provider clients (`carrier`, `voice_ai`) never import each other, the store or the
//!   composition: they speak HTTP through `outbound` and format through `wire`.
//! - The store (`dynamo`) imports only `wire`; the HTTP glue (`http`) never imports the store.
//! - Composition is on top: only `wiring` imports `providers` (the factories that name the concrete
//!   clients), and nothing imports `wiring`, which builds every port once per cold start.
//!
//! A failure reads `file:line: `from` imports `to` (`the source line`); from may import: its row`.
//! Move the item to a module both may use (a shared helper belongs to `outbound` or `wire`), or
//! build it in `providers`/`wiring` and hand it down; change a row only when the picture changes,
//! and ARCHITECTURE.md with it.
//!
//! No module circle at any depth either (inside the store and the HTTP glue too): no module file
//! imports itself through others. A failure lists each cycle as `a → b → a` with one `file:line` per
//! edge; move what both sides need into a lower module (as `ApiError` sits in `http::problem`, which
//! the other HTTP modules use), or pass it in from the side that builds it. A module and its own
//! submodules are one unit: a `mod.rs` re-exporting its children is no edge.

use std::path::PathBuf;

use patchbay_tidy::{assert_caught, assert_cycle_caught, assert_layers, assert_no_module_cycles, Layers};

/// Who may import whom, row by row (a module may always use itself; edges are direct only).
const LAYERS: Layers<'static> = Layers {
    crate_name: "patchbay-adapters",
    allowed: &[
        // Leaves: the TLS provider, wire formats, logging, the SQS queue, webhook signatures.
        ("tls", &[]),
        ("wire", &[]),
        ("telemetry", &[]),
        ("sqs", &[]),
        ("eventbridge", &[]),
        ("webhooks", &[]),
        // Configuration builds the SDK's HTTP client on the one TLS stack.
        ("config", &["tls"]),
        // Secrets Manager: the carrier secret of a configuration, the SIP passwords.
        ("secrets", &["config"]),
        // The HTTP client every provider calls out with, on the same TLS stack.
        ("outbound", &["tls"]),
        // Webhook deliveries: the outbound client behind a resolver that refuses forbidden addresses.
        ("delivery", &["outbound"]),
        // Provider clients: HTTP and wire formats only; never each other, the store or composition.
        ("carrier", &["outbound", "wire"]),
        ("voice_ai", &["outbound", "wire"]),
        // The store: wire formats only.
        ("dynamo", &["wire"]),
        // Ports built from the carrier secret on first use.
        ("ondemand", &["config", "secrets"]),
        // HTTP glue (auth, problem+json, views): answers an unavailable on-demand port with a 503.
        ("http", &["ondemand", "wire"]),
        // The provider factories: which concrete clients a configuration gets.
        ("providers", &["carrier", "voice_ai", "config", "secrets"]),
        // The composition root: builds every port; nothing imports it.
        (
            "wiring",
            &[
                "carrier",
                "config",
                "delivery",
                "dynamo",
                "eventbridge",
                "ondemand",
                "outbound",
                "providers",
                "secrets",
                "sqs",
                "tls",
                "voice_ai",
                "webhooks",
                "wire",
            ],
        ),
    ],
};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn modules_import_only_down_the_table() {
    assert_layers(&src(), &LAYERS);
}

/// The check can fail on this crate's real layout: the real Vapi client passes, and with the import
/// that made the old `carrier ⇄ voice_ai` circle appended it is exactly one violation.
#[test]
fn a_provider_importing_another_provider_is_caught() {
    assert_caught(&src(), "voice_ai/vapi.rs", "use crate::carrier::TelnyxClient;", &LAYERS, ("voice_ai", "carrier"));
}

#[test]
fn no_module_imports_itself_through_others() {
    assert_no_module_cycles(&src(), "patchbay-adapters");
}

/// The cycle check can fail on this crate's real layout: the real `http/json.rs` uses `ApiError`
/// (`super::ApiError`, which `http/mod.rs` re-exports from `http::problem`), and with `problem.rs`
/// importing a JSON extractor back through the same `mod.rs` it is exactly one circle.
#[test]
fn an_http_json_problem_circle_is_caught() {
    let cycle = assert_cycle_caught(&src(), "http/problem.rs", "use super::JsonBody;", &["http::json", "http::problem", "http::json"]);
    assert_eq!((cycle.edges[0].file.as_str(), cycle.edges[0].text.as_str()), ("http/json.rs", "use super::ApiError;"), "{cycle}");
}
