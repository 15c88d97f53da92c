//! The domain's module picture, held: each top-level module of `src/` may import only the modules
//! its row of [`LAYERS`] lists (the table of ARCHITECTURE.md, "The layer rule"), and the table is
//! acyclic. `patchbay-tidy` reads the sources as text (standard library only) and follows every
//! `crate::` / `$crate::` path, grouped and multi-line use trees included, tests included; a name
//! re-exported at the crate root (`crate::E164`) counts as the module lib.rs takes it from.
//!
//! Reading a failure: each line is `file:line: `from` imports `to` (`the source line`); from may
//! import: its row`. Fix the code, not the table: move the item down into a module the importer may
//! use (what two capabilities share goes to the kernel), or invert the edge with a trait in the lower
//! module that the higher one implements (as `numbers::ports::CallRoute` is implemented by `dialer` and
//! `voice_ai`, composed by the worker). A new top-level module fails until it gets a row here, and a
//! row whose module is gone fails too. Change a row only when the picture itself changes, and change
//! ARCHITECTURE.md with it.
//!
//! No module circle at any depth either: no module file imports itself through others, inside a
//! capability's rooms too (`calls::model ⇄ calls::ports` and `kernel::provider ⇄ kernel::sync` were the
//! last two). A failure lists each cycle as `a → b → a` with one `file:line` per edge; break one edge by
//! moving the shared item into the lower module (a record into `model`, the sync protocol's mapping into
//! `kernel::sync`), or by a trait one side defines and the other implements. A module and its own
//! submodules are one unit: a `mod.rs` re-exporting its rooms is no edge.

use std::path::PathBuf;

use patchbay_tidy::{assert_caught, assert_cycle_caught, assert_layers, assert_no_module_cycles, Layers};

/// Who may import whom, row by row (a module may always use itself; edges are direct only).
const LAYERS: Layers<'static> = Layers {
    crate_name: "patchbay-domain",
    allowed: &[
        // The shared vocabulary (ids, phone, page, errors, provider, sync protocol, work queue): below everything.
        ("kernel", &[]),
        // Messaging profiles: ids, names, sync state and the work queue are all kernel vocabulary.
        ("profiles", &["kernel"]),
        // Numbers → profiles: a number's profile side reads its profile's carrier id (`ProfileReader`).
        ("numbers", &["kernel", "profiles"]),
        // Dialer → numbers: a SIP connection assigns numbers and is one of a number's call routes.
        ("dialer", &["kernel", "numbers"]),
        // Voice AI → numbers: an assistant buys its number through the number purchase and is a call route.
        ("voice_ai", &["kernel", "numbers"]),
        // Messaging → profiles, numbers: sending reads the from-number and its messaging profile.
        ("messaging", &["kernel", "profiles", "numbers"]),
        // Calls: records keyed by ids and numbers; needs only the kernel.
        ("calls", &["kernel"]),
        // The event log (and its webhooks): events are kernel vocabulary every capability builds.
        ("events", &["kernel"]),
        // Reconciliation compares every capability's records with the providers: on top, nothing imports it.
        ("reconcile", &["kernel", "profiles", "numbers", "dialer", "voice_ai", "messaging", "calls"]),
    ],
};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn modules_import_only_down_the_table() {
    assert_layers(&src(), &LAYERS);
}

/// The check can fail on this crate's real layout: the real `numbers/sync.rs` passes, and with one
/// upward import appended it is exactly one violation, numbers → dialer.
#[test]
fn an_upward_import_in_the_real_numbers_sync_is_caught() {
    assert_caught(&src(), "numbers/sync.rs", "use crate::dialer::SipRoute;", &LAYERS, ("numbers", "dialer"));
}

#[test]
fn no_module_imports_itself_through_others() {
    assert_no_module_cycles(&src(), "patchbay-domain");
}

/// The cycle check can fail on this crate's real layout: the real `calls/model.rs` and `calls/ports.rs`
/// are one way (ports uses model), and with model importing a port again it is exactly that circle.
#[test]
fn the_calls_model_ports_circle_is_caught() {
    let cycle = assert_cycle_caught(
        &src(),
        "calls/model.rs",
        "use crate::calls::ports::CallReader;",
        &["calls::model", "calls::ports", "calls::model"],
    );
    assert_eq!(cycle.edges[1].file, "calls/ports.rs", "{cycle}");
}

/// The same through a name lib.rs re-exports: `crate::SyncError` is `kernel::sync`, so the provider
/// module importing it closes the old `kernel::provider ⇄ kernel::sync` circle.
#[test]
fn the_kernel_provider_sync_circle_is_caught_through_a_root_re_export() {
    assert_cycle_caught(&src(), "kernel/provider.rs", "use crate::SyncError;", &["kernel::provider", "kernel::sync", "kernel::provider"]);
}
