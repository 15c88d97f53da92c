//! The cycle check's own tests: each one fails if the rule it names is broken.

use super::*;
use crate::tests::TempSrc;

/// Each cycle as its walk, `a → b → a`.
fn walks(cycles: &[Cycle]) -> Vec<String> {
    cycles.iter().map(|c| c.modules.join(" → ")).collect()
}

/// `(from, to, file, line)` of each edge of a cycle, for compact assertions.
fn steps(cycle: &Cycle) -> Vec<(&str, &str, &str, usize)> {
    cycle.edges.iter().map(|e| (e.from.as_str(), e.to.as_str(), e.file.as_str(), e.line)).collect()
}

/// `from → to` of every edge of the module graph, nested ones included.
fn raw_edges(files: &[(&str, &str)]) -> Vec<String> {
    module_edges(files).iter().map(|e| format!("{} → {}", e.from, e.to)).collect()
}

#[test]
fn a_two_file_cycle_through_a_grouped_use_is_found() {
    let files = [
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        ("a.rs", "use crate::{\n    c::{d::Y, Z},\n    b::X,\n};\npub struct W;\n"),
        ("b.rs", "pub struct X;\nuse crate::a::{\n    W,\n};\n"),
        ("c/mod.rs", "pub mod d;\npub struct Z;\n"),
        ("c/d.rs", "pub struct Y;\n"),
    ];
    let found = module_cycles_in(&files);
    assert_eq!(walks(&found), ["a → b → a"]);
    assert_eq!(steps(&found[0]), [("a", "b", "a.rs", 3), ("b", "a", "b.rs", 2)]);
    // A leaf is reported where its module is named: `b::X,` on its own line, `W` at `crate::a::{`.
    assert_eq!(found[0].to_string(), "a → b → a\n    a → b: a.rs:3 `b::X,`\n    b → a: b.rs:2 `use crate::a::{`");
    assert!(raw_edges(&files).contains(&"a → c::d".to_string()), "{:?}", raw_edges(&files));
}

#[test]
fn a_super_sibling_path_makes_an_edge_and_inline_modules_count() {
    let files = [
        ("x/mod.rs", "pub mod a;\npub mod b;\n"),
        ("x/a.rs", "pub fn f() -> super::b::X {\n    todo!()\n}\n"),
        // From `x::b::tests`, `super::super` is `x`: without counting the inline module it would be the root.
        ("x/b.rs", "pub struct X;\n#[cfg(test)]\nmod tests {\n    fn g() {\n        super::super::a::f();\n    }\n}\n"),
    ];
    let found = module_cycles_in(&files);
    assert_eq!(walks(&found), ["x::a → x::b → x::a"]);
    assert_eq!(steps(&found[0]), [("x::a", "x::b", "x/a.rs", 1), ("x::b", "x::a", "x/b.rs", 5)]);
}

#[test]
fn a_child_module_path_from_mod_rs_is_an_edge_to_the_child_which_is_one_unit_with_it() {
    let dialer = ("dialer/mod.rs", "mod voice;\nuse voice::{voice_of, VoiceMove};\npub struct Store;\nuse voice::Number;\n");
    let voice = ("dialer/voice.rs", "use super::Store;\npub fn voice_of() {}\npub struct VoiceMove;\npub use crate::numbers::Number;\n");
    let alone = [dialer, voice];
    assert_eq!(raw_edges(&alone), ["dialer → dialer::voice", "dialer::voice → dialer"]);
    assert_eq!(module_edges(&alone)[0].line, 2);
    assert_eq!(walks(&module_cycles_in(&alone)), Vec::<String>::new());

    // Through the child's re-export, `voice::Number` is `numbers`: a child path is resolved, not just named.
    let with_numbers = [dialer, voice, ("numbers.rs", "pub struct Number;\nuse crate::dialer::Store;\n")];
    let found = module_cycles_in(&with_numbers);
    assert_eq!(walks(&found), ["dialer → numbers → dialer"]);
    assert_eq!(steps(&found[0])[0], ("dialer", "numbers", "dialer/mod.rs", 4));
}

#[test]
fn use_super_glob_in_a_child_is_no_edge() {
    let files = [
        ("a/mod.rs", "pub mod b;\npub use b::*;\npub struct Shared;\n"),
        ("a/b.rs", "use super::*;\npub struct Item;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::Shared;\n}\n"),
    ];
    assert_eq!(raw_edges(&files), ["a → a::b", "a::b → a"]);
    assert_eq!(walks(&module_cycles_in(&files)), Vec::<String>::new());
    // Nested means a whole segment: `a` and `ab` are two modules, and a cycle.
    let siblings = [("a.rs", "use crate::ab::X;\npub struct Y;\n"), ("ab.rs", "use crate::a::Y;\npub struct X;\n")];
    assert_eq!(walks(&module_cycles_in(&siblings)), ["a → ab → a"]);
}

#[test]
fn an_edge_through_a_root_re_export_resolves_to_the_module_it_names() {
    let files = [
        ("lib.rs", "pub mod kernel;\npub use kernel::phone::{CountryCode, E164 as Phone};\npub use kernel::{sync::{self}};\n"),
        ("kernel/mod.rs", "pub mod phone;\npub mod sync;\n"),
        ("kernel/phone.rs", "pub struct E164;\npub fn f(e: crate::sync::SyncError) {}\n"),
        ("kernel/sync.rs", "pub struct SyncError;\npub fn g(x: crate::Phone) {}\n"),
    ];
    let found = module_cycles_in(&files);
    assert_eq!(walks(&found), ["kernel::phone → kernel::sync → kernel::phone"]);
    assert_eq!(
        steps(&found[0]),
        [("kernel::phone", "kernel::sync", "kernel/phone.rs", 2), ("kernel::sync", "kernel::phone", "kernel/sync.rs", 2)]
    );
}

#[test]
fn re_exports_and_globs_of_a_mod_rs_are_looked_through() {
    let files = [
        ("calls/mod.rs", "pub mod model;\npub mod ports;\npub use model::*;\npub use ports::{self as p, *};\n"),
        ("calls/model.rs", "pub struct Call;\npub fn f(r: crate::calls::StatsRow) {}\n"),
        ("calls/ports.rs", "use super::Call;\npub struct StatsRow;\n"),
    ];
    let found = module_cycles_in(&files);
    assert_eq!(walks(&found), ["calls::model → calls::ports → calls::model"]);
    assert_eq!(
        steps(&found[0]),
        [("calls::model", "calls::ports", "calls/model.rs", 2), ("calls::ports", "calls::model", "calls/ports.rs", 1)]
    );
    // A name the module defines itself is not looked for behind its globs.
    let own = [
        ("calls/mod.rs", "pub mod model;\npub mod ports;\npub use model::*;\npub struct Call;\n"),
        ("calls/model.rs", "pub struct Call;\n"),
        ("calls/ports.rs", "use super::Call;\n"),
    ];
    assert_eq!(raw_edges(&own), ["calls → calls::model", "calls::ports → calls"]);
}

#[test]
fn a_module_alias_brought_in_by_use_is_followed() {
    let files = [
        ("k/mod.rs", "pub mod p;\npub mod s;\n"),
        ("k/p.rs", "use crate::k;\npub struct X;\npub fn f() -> k::s::E {\n    todo!()\n}\n"),
        ("k/s.rs", "use crate::k::{p as provider};\npub struct E;\nfn g() -> provider::X {\n    todo!()\n}\n"),
    ];
    let found = module_cycles_in(&files);
    assert_eq!(walks(&found), ["k::p → k::s → k::p"]);
    assert_eq!(steps(&found[0]), [("k::p", "k::s", "k/p.rs", 3), ("k::s", "k::p", "k/s.rs", 1)]);
}

#[test]
fn comments_and_literals_make_no_edge() {
    let quiet = r####"//! See [`crate::b::X`].
/// crate::b::X
// use crate::b::X;
/* use crate::b::X; /* nested */ crate::b::Y */
pub fn f() {
    let s = "use crate::b::X; \" still crate::b::X";
    let r = r#"use crate::b::X;"#;
    let c = '"';
}
"####;
    let b = ("b.rs", "use crate::a::f;\npub struct X;\n");
    assert_eq!(walks(&module_cycles_in(&[("a.rs", quiet), b])), Vec::<String>::new());
    let loud = format!("{quiet}pub fn g() -> crate::b::X {{\n    todo!()\n}}\n");
    let found = module_cycles_in(&[("a.rs", loud.as_str()), b]);
    assert_eq!(walks(&found), ["a → b → a"]);
    assert_eq!(steps(&found[0])[0], ("a", "b", "a.rs", 10));
}

#[test]
fn a_three_module_cycle_is_reported_once() {
    let three = [
        ("a.rs", "use crate::b::X;\npub struct Z;\n"),
        ("b.rs", "use crate::c::Y;\npub struct X;\n"),
        ("c.rs", "use crate::a::Z;\npub struct Y;\n"),
    ];
    let found = module_cycles_in(&three);
    assert_eq!(walks(&found), ["a → b → c → a"]);
    assert_eq!(steps(&found[0]), [("a", "b", "a.rs", 1), ("b", "c", "b.rs", 1), ("c", "a", "c.rs", 1)]);

    // Two circles through one module are one component, walked through every module; a separate
    // circle is a second cycle, after it.
    let shared = [
        ("a.rs", "use crate::b::X;\n"),
        ("b.rs", "use crate::{a::Z, c::Y};\n"),
        ("c.rs", "use crate::b::X;\n"),
        ("x.rs", "use crate::y::Q;\n"),
        ("y.rs", "use crate::x::P;\n"),
    ];
    assert_eq!(walks(&module_cycles_in(&shared)), ["a → b → c → b → a", "x → y → x"]);
}

#[test]
fn the_root_and_bin_are_no_importers_and_loops_of_names_end() {
    let files = [
        ("lib.rs", "pub mod a;\npub use self::l1 as l2;\npub use self::l2 as l1;\nuse crate::a::X;\n"),
        ("main.rs", "use patchbay::a::X;\n"),
        ("bin/tool.rs", "use crate::a::X;\n"),
        ("a.rs", "use crate::l1::Z;\nuse serde;\nfn f() -> serde::X {}\nuse self::x as y;\nuse self::y as x;\nfn g() -> x::Z {}\n"),
        ("g1.rs", "pub use crate::g2::*;\n"),
        ("g2.rs", "pub use crate::g1::*;\nfn h() -> crate::g1::Nothing {}\n"),
    ];
    assert_eq!(raw_edges(&files), ["g1 → g2", "g2 → g1"]);
    assert_eq!(walks(&module_cycles_in(&files)), ["g1 → g2 → g1"]);
}

#[test]
fn the_real_tree_path_reads_files_and_asserts() {
    let clean = TempSrc::new("cycles-clean", &[("lib.rs", "pub mod a;\n"), ("a.rs", "pub struct X;\n"), ("b.rs", "use crate::a::X;\n")]);
    assert_eq!(module_cycles(&clean.0).unwrap(), Vec::new());
    assert_no_module_cycles(&clean.0, "demo");
    assert!(module_cycles(Path::new("/nonexistent/patchbay-tidy/src")).is_err());
    let empty = TempSrc::new("cycles-empty", &[("README.md", "no sources")]);
    assert!(module_cycles(&empty.0).is_err());

    let caught = assert_cycle_caught(&clean.0, "a.rs", "use crate::b::Y;", &["a", "b", "a"]);
    assert_eq!(steps(&caught), [("a", "b", "a.rs", 3), ("b", "a", "b.rs", 1)]);
}

#[test]
#[should_panic(expected = "demo: 1 import cycle(s) among the modules under")]
fn assert_no_module_cycles_panics_with_each_cycle_and_its_edges() {
    let bad = TempSrc::new("cycles-bad", &[("a.rs", "use crate::b::X;\n"), ("b.rs", "\nuse crate::a::Y;\n")]);
    let message = std::panic::catch_unwind(|| assert_no_module_cycles(&bad.0, "demo")).unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    for part in ["  a → b → a\n", "    a → b: a.rs:1 `use crate::b::X;`\n", "    b → a: b.rs:2 `use crate::a::Y;`\n", "How to fix"]
    {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    panic!("{message}");
}

#[test]
#[should_panic(expected = "should have no module cycle")]
fn assert_cycle_caught_wants_a_clean_tree_first() {
    let bad = TempSrc::new("cycles-caught", &[("a.rs", "use crate::b::X;\n"), ("b.rs", "use crate::a::Y;\n")]);
    assert_cycle_caught(&bad.0, "a.rs", "use crate::b::Z;", &["a", "b", "a"]);
}
