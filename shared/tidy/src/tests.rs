//! The checker's own tests: each one fails if the rule it names is broken.

use std::path::PathBuf;

use super::*;

/// A small picture: numbers may import kernel and profiles, not dialer; clock may import nothing.
const LAYERS: Layers<'static> = Layers {
    crate_name: "demo",
    allowed: &[
        ("kernel", &[]),
        ("profiles", &["kernel"]),
        ("numbers", &["kernel", "profiles"]),
        ("dialer", &["kernel", "numbers"]),
        ("clock", &[]),
    ],
};

const LIB_RS: &str = "\
//! The root. `pub use dialer::Nope;` in a comment brings nothing.
pub mod kernel;
pub use kernel::phone::{CountryCode, Destination, E164};
pub use kernel::{
    error::{Conflict as Clash, StoreError},
    ids::UserId,
};
pub use dialer::ops::{self};
pub use self::profiles::model::Profile;
";

fn check(file: &str, source: &str) -> Vec<Violation> {
    check_source(file, source, &root_exports(LIB_RS), &LAYERS)
}

/// `(kind, from, to, line)` of each violation, for compact assertions.
fn summary(v: &[Violation]) -> Vec<(Kind, &str, &str, usize)> {
    v.iter().map(|v| (v.kind, v.from.as_str(), v.to.as_str(), v.line)).collect()
}

/// A throwaway `src/` tree, removed on drop (the cycle check's tests use it too).
pub(crate) struct TempSrc(pub(crate) PathBuf);

impl TempSrc {
    pub(crate) fn new(name: &str, files: &[(&str, &str)]) -> Self {
        let root = std::env::temp_dir().join(format!("patchbay-tidy-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (rel, text) in files {
            let path = root.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        TempSrc(root)
    }
}

impl Drop for TempSrc {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every module of `LAYERS` with a clean file, plus `extra`.
fn layout(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![
        ("lib.rs", LIB_RS),
        ("kernel/mod.rs", "pub mod phone;\n"),
        ("kernel/phone.rs", "pub struct E164;\n"),
        ("profiles/mod.rs", "use crate::kernel::phone::E164;\n"),
        ("numbers/mod.rs", "pub mod sync;\n"),
        ("numbers/sync.rs", "use crate::{kernel::phone::E164, profiles};\n"),
        ("dialer/mod.rs", "use crate::numbers::sync;\nuse crate::UserId;\n"),
        ("clock.rs", "pub fn now() {}\n"),
    ];
    files.extend_from_slice(extra);
    files
}

#[test]
fn a_grouped_multi_line_import_is_one_violation_per_forbidden_module() {
    let multi_line = "//! Numbers sync.\n\nuse crate::{\n    dialer::SipRoute,\n    kernel::ids::UserId,\n};\n";
    let v = check("numbers/sync.rs", multi_line);
    assert_eq!(summary(&v), [(Kind::Upward, "numbers", "dialer", 4)]);
    assert_eq!(v[0].text, "dialer::SipRoute,");
    assert_eq!(v[0].allowed, ["kernel", "profiles"]);

    let one_line = check("numbers/sync.rs", "use crate::{dialer::SipRoute, kernel::ids::UserId};");
    assert_eq!(summary(&one_line), [(Kind::Upward, "numbers", "dialer", 1)]);

    let nested = check("numbers/sync.rs", "use crate::{kernel::{ids::UserId, page::Page}, profiles::X, {dialer::{Y, Z}}, E164};");
    assert_eq!(summary(&nested), [(Kind::Upward, "numbers", "dialer", 1)]);
}

#[test]
fn a_violation_reads_as_file_line_edge_text_and_row() {
    let source = format!("{}use crate::dialer::SipRoute;\n", "\n".repeat(11));
    let v = check("numbers/sync.rs", &source);
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0].to_string(),
        "numbers/sync.rs:12: `numbers` imports `dialer` (`use crate::dialer::SipRoute;`); numbers may import: kernel, profiles"
    );
    let from_kernel = check("kernel/ids.rs", "use crate::numbers::X;");
    assert!(from_kernel[0].to_string().ends_with("kernel may import: nothing"), "{}", from_kernel[0]);
}

#[test]
fn paths_in_comments_and_literals_are_not_imports() {
    let quiet = r####"
//! Module doc: see [`crate::dialer::SipRoute`].
/// Item doc: crate::dialer::x
// use crate::dialer::x;
/* crate::dialer::x /* nested */ crate::dialer::y */
fn f() {
    let q = '"';
    let s = "crate::dialer::x \" still a string crate::dialer::y";
    let r = r#"crate::dialer::x " still raw crate::dialer::y"#;
    let b = b"crate::dialer::x";
    let c = '\'';
    let t = "after the char literals: crate::dialer::z";
}
"####;
    assert_eq!(summary(&check("numbers/sync.rs", quiet)), []);
    // The same file with one real path in it: the scanner does see code.
    let loud = format!("{quiet}fn g() {{ crate::dialer::x(); }}\n");
    assert_eq!(summary(&check("numbers/sync.rs", &loud)), [(Kind::Upward, "numbers", "dialer", 14)]);
}

#[test]
fn a_root_re_export_resolves_to_the_module_it_comes_from() {
    let exports = root_exports(LIB_RS);
    for (name, module) in [
        ("E164", "kernel"),
        ("CountryCode", "kernel"),
        ("Clash", "kernel"),
        ("StoreError", "kernel"),
        ("UserId", "kernel"),
        ("ops", "dialer"),
        ("Profile", "profiles"),
    ] {
        assert_eq!(exports.get(name).map(String::as_str), Some(module), "{name}");
    }
    assert!(!exports.contains_key("Conflict") && !exports.contains_key("Nope"), "{exports:?}");

    assert_eq!(summary(&check("numbers/model.rs", "fn f(x: crate::E164, c: crate::Clash) {}")), []);
    assert_eq!(summary(&check("clock/mod.rs", "use crate::E164;")), [(Kind::Upward, "clock", "kernel", 1)]);
    assert_eq!(summary(&check("numbers/ops.rs", "use crate::ops::Dialers;")), [(Kind::Upward, "numbers", "dialer", 1)]);
    assert_eq!(summary(&check("numbers/ops.rs", "use crate::Nowhere;")), [(Kind::UnknownPath, "numbers", "Nowhere", 1)]);
    assert_eq!(summary(&check("numbers/ops.rs", "use crate::*;")), [(Kind::UnknownPath, "numbers", "*", 1)]);
}

#[test]
fn dollar_crate_in_a_macro_is_seen() {
    let source = "macro_rules! id {\n    () => { $crate::kernel::ids::UserId::new() };\n}\n";
    assert_eq!(summary(&check("clock/macros.rs", source)), [(Kind::Upward, "clock", "kernel", 2)]);
    assert_eq!(summary(&check("profiles/macros.rs", source)), []);
}

#[test]
fn test_code_obeys_the_table_too() {
    let source = "pub fn f() {}\n\n#[cfg(test)]\nmod tests {\n    use crate::dialer::SipRoute;\n}\n";
    assert_eq!(summary(&check("numbers/sync.rs", source)), [(Kind::Upward, "numbers", "dialer", 5)]);
}

#[test]
fn super_is_followed_only_when_it_climbs_to_the_root() {
    let source = "\
use super::model::A;
use super::super::dialer::B;
use super::{ops::C, super::dialer::D};
mod tests {
    use super::super::model::E;
    use super::super::super::dialer::F;
}
use super::super::profiles::G;
";
    let v = check("numbers/sync.rs", source);
    assert_eq!(
        summary(&v),
        [(Kind::Upward, "numbers", "dialer", 2), (Kind::Upward, "numbers", "dialer", 3), (Kind::Upward, "numbers", "dialer", 6)]
    );
    let from_mod_rs = "use super::dialer::X;\nuse self::sync::Y;\npub(super) fn f() {}\n";
    assert_eq!(summary(&check("numbers/mod.rs", from_mod_rs)), [(Kind::Upward, "numbers", "dialer", 1)]);
}

#[test]
fn the_root_itself_is_an_alias_and_visibility_is_not_a_path() {
    let fine = "pub(crate) fn f<'a>(x: &'a str) {}\nextern crate serde;\npub(in crate::numbers) struct S;\n";
    assert_eq!(summary(&check("numbers/x.rs", fine)), []);
    let aliases = "use crate as root;\nextern crate self as demo;\n";
    assert_eq!(
        summary(&check("numbers/x.rs", aliases)),
        [(Kind::RootAlias, "numbers", "crate", 1), (Kind::RootAlias, "numbers", "crate", 2)]
    );
}

#[test]
fn the_composition_root_is_skipped_and_files_map_to_their_top_module() {
    assert_eq!(summary(&check("lib.rs", "use crate::dialer::X;")), []);
    assert_eq!(summary(&check("main.rs", "use crate::dialer::X;")), []);
    assert_eq!(top_module("numbers/sync.rs"), Some("numbers"));
    assert_eq!(top_module("wire.rs"), Some("wire"));
    assert_eq!(top_module("kernel/phone/mod.rs"), Some("kernel"));
    assert_eq!((file_depth("numbers/mod.rs"), file_depth("numbers/sync.rs"), file_depth("kernel/phone/mod.rs")), (1, 2, 2));
}

#[test]
fn a_module_without_a_row_and_a_row_without_a_module_are_reported() {
    let mut files = layout(&[("extra/mod.rs", "pub mod a;\n"), ("extra/a.rs", "use crate::kernel::X;\n")]);
    files.retain(|(path, _)| !path.starts_with("clock"));
    let src = TempSrc::new("unknown", &files);
    let v = check_dir(&src.0, &LAYERS).unwrap();
    assert_eq!(summary(&v), [(Kind::Table, "clock", "", 0), (Kind::UnknownModule, "extra", "", 0)]);
    assert_eq!(v[1].file, "extra/a.rs");
    assert!(v[0].to_string().contains("no module `clock`"), "{}", v[0]);
}

#[test]
fn a_clean_tree_passes_and_one_bad_import_is_found_in_it() {
    let clean = TempSrc::new("clean", &layout(&[]));
    assert_eq!(summary(&check_dir(&clean.0, &LAYERS).unwrap()), []);
    assert_layers(&clean.0, &LAYERS);

    let bad = TempSrc::new("bad", &layout(&[("numbers/extra.rs", "\nuse crate::dialer::X;\n")]));
    let v = check_dir(&bad.0, &LAYERS).unwrap();
    assert_eq!(summary(&v), [(Kind::Upward, "numbers", "dialer", 2)]);
    assert_eq!(v[0].file, "numbers/extra.rs");
}

#[test]
#[should_panic(expected = "numbers/extra.rs:1: `numbers` imports `dialer`")]
fn assert_layers_panics_with_the_list() {
    let bad = TempSrc::new("panics", &layout(&[("numbers/extra.rs", "use crate::dialer::X;\n")]));
    assert_layers(&bad.0, &LAYERS);
}

#[test]
fn a_missing_source_dir_is_an_error_not_a_pass() {
    assert!(check_dir(Path::new("/nonexistent/patchbay-tidy/src"), &LAYERS).is_err());
    let empty = TempSrc::new("empty", &[("README.md", "no sources")]);
    assert!(check_dir(&empty.0, &LAYERS).is_err());
}

#[test]
fn a_cyclic_table_is_reported() {
    let cyclic = Layers { crate_name: "demo", allowed: &[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a", "d"])] };
    let v = table_violations(&cyclic, None);
    assert_eq!(summary(&v), [(Kind::Table, "a", "b", 0)]);
    assert_eq!(v[0].to_string(), "layering table: cycle a → b → c → a; the table must be acyclic, so one of these edges has to go");
    assert_eq!(summary(&table_violations(&LAYERS, None)), []);

    let sloppy = Layers { crate_name: "demo", allowed: &[("a", &["ghost"]), ("a", &[])] };
    assert_eq!(summary(&table_violations(&sloppy, None)), [(Kind::Table, "a", "ghost", 0), (Kind::Table, "a", "", 0)]);
}
