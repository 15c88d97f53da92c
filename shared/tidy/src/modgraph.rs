//! The module graph of a crate's sources, read as text: which module file uses which, each edge with
//! the first place it is made.
//!
//! Every path in code is followed when it starts with `crate::`, `$crate::`, `self::`, `super::`
//! (relative to where it is written, inline `mod x { … }` blocks counted), the name of a child module
//! (`mod voice;` then `voice::X`), or a name the same scope brings in with `use` (`use crate::kernel;`
//! then `kernel::sync::X`). Grouped and multi-line use trees are expanded leaf by leaf. A resolved path
//! then goes through the names modules import on its way: `crate::E164` through lib.rs's
//! `pub use kernel::phone::E164;` to `kernel::phone::E164`, `super::ApiError` through a `mod.rs`'s
//! `pub use problem::ApiError;`, `crate::calls::StatsRow` through `pub use ports::*;` when `calls/ports.rs`
//! defines `StatsRow`. What it names is the longest prefix of the result that is a module file.
//!
//! Limits, on purpose: names defined by macros, `#[path]` modules and paths a macro generates (other
//! than through `$crate`) are not seen; a `use` inside a function body counts for its whole module.

use std::collections::{BTreeMap, BTreeSet};

use crate::cycles::Edge;
use crate::lex::{tokens, Tok, Token};
use crate::paths::group_items;

/// A module path, one segment per module below the crate root (`["kernel", "phone"]`); empty for the root.
type ModPath = Vec<String>;

/// How many re-exports, aliases or globs one resolution may go through (a loop of aliases ends here).
const FUEL: usize = 8;

/// Keywords whose next identifier names an item of the module they are written in.
const ITEM_KEYWORDS: [&str; 9] = ["struct", "enum", "union", "trait", "fn", "type", "const", "static", "mod"];

/// What one module declares that paths resolve through: a module file's, or an inline `mod x { … }`'s.
#[derive(Default)]
struct Scope {
    /// The items it defines (`struct X`, `fn x`, `const X`, `mod x`, …).
    items: BTreeSet<String>,
    /// The names its `use` declarations bring in (`use a::b as c;` → `c`), each with its path as written.
    names: BTreeMap<String, Vec<String>>,
    /// Its glob imports (`use a::*;`), as written.
    globs: Vec<Vec<String>>,
}

/// A path written in a file: the scope it is written in, its segments as written, its line ([`line_of`]).
struct Written {
    scope: ModPath,
    segs: Vec<String>,
    line: usize,
}

/// Every scope of the crate (module files and inline modules) and every module file.
#[derive(Default)]
struct Crate {
    scopes: BTreeMap<ModPath, Scope>,
    files: BTreeSet<ModPath>,
}

/// Every edge between two different module files of `files` (`(path relative to src/, source)`),
/// sorted by importer then imported module, each with the first place it is made. The crate root
/// (`lib.rs`, else `main.rs`) is read for what it imports but is no importer, and is never a target;
/// `bin/` is skipped. Edges between a module and its ancestors are kept: the caller decides.
pub(crate) fn module_edges<P: AsRef<str>, S: AsRef<str>>(files: &[(P, S)]) -> Vec<Edge> {
    let root = ["lib.rs", "main.rs"].into_iter().find(|r| files.iter().any(|(f, _)| f.as_ref() == *r));
    let mut krate = Crate::default();
    let mut written = Vec::new();
    for (file, source) in files {
        let (file, source) = (file.as_ref(), source.as_ref());
        let Some(module) = module_of(file, root) else { continue };
        krate.files.insert(module.clone());
        let paths = scan(&module, source, &mut krate.scopes);
        if !module.is_empty() {
            written.push((module, file, source, paths));
        }
    }
    let mut edges = BTreeMap::new();
    for (module, file, source, paths) in written {
        let lines: Vec<&str> = source.lines().collect();
        for w in paths {
            let Some(path) = krate.absolute(&w.segs, &w.scope, FUEL) else { continue };
            let target = krate.file_prefix(krate.resolve(path, FUEL));
            if target.is_empty() || target == module {
                continue;
            }
            edges.entry((module.join("::"), target.join("::"))).or_insert_with(|| Edge {
                from: module.join("::"),
                to: target.join("::"),
                file: file.to_string(),
                line: w.line,
                text: lines.get(w.line - 1).map_or("", |l| l.trim()).to_string(),
            });
        }
    }
    edges.into_values().collect()
}

/// The module a file relative to `src/` holds: `a/b.rs` and `a/b/mod.rs` → `a::b`, the crate root → the
/// empty path. `None` for what is not a module of this crate: `bin/`, a second root, a non-`.rs` file.
fn module_of(file: &str, root: Option<&str>) -> Option<ModPath> {
    let parts: Vec<&str> = file.strip_suffix(".rs")?.split('/').collect();
    match parts.as_slice() {
        [name] if root == Some(file) && (*name == "lib" || *name == "main") => Some(Vec::new()),
        ["lib" | "main"] | ["bin", ..] => None,
        [dirs @ .., "mod"] => Some(dirs.iter().map(|s| s.to_string()).collect()),
        _ => Some(parts.iter().map(|s| s.to_string()).collect()),
    }
}

/// Reads one file of module `module`: records what each of its scopes declares into `scopes`, and
/// answers every path written in it, use tree leaves included, in source order.
fn scan(module: &ModPath, source: &str, scopes: &mut BTreeMap<ModPath, Scope>) -> Vec<Written> {
    let toks = tokens(source);
    let mut out = Vec::new();
    let mut scope = module.clone();
    scopes.entry(scope.clone()).or_default();
    let mut inline: Vec<usize> = Vec::new(); // the brace depth inside each open `mod x { … }`
    let mut braces = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let at_top = braces == inline.last().copied().unwrap_or(0);
        match &t.tok {
            Tok::Punct('{') => {
                braces += 1;
                let name = if i >= 2 && toks[i - 2].is_ident("mod") { ident(&toks[i - 1]) } else { None };
                if let Some(name) = name {
                    scope.push(name.to_string());
                    inline.push(braces);
                    scopes.entry(scope.clone()).or_default();
                }
            }
            Tok::Punct('}') => {
                if inline.last() == Some(&braces) {
                    inline.pop();
                    scope.pop();
                }
                braces = braces.saturating_sub(1);
            }
            Tok::Ident(w) if w == "use" => {
                let end = toks[i..].iter().position(|t| t.is_punct(';')).map_or(toks.len(), |p| i + p);
                let mut leaves = Vec::new();
                use_tree(&toks[..end], i + 1, Vec::new(), &mut leaves);
                let declared = scopes.entry(scope.clone()).or_default();
                for (segs, brings, line) in leaves {
                    match brings {
                        Brings::Name(name) => {
                            declared.names.entry(name).or_insert_with(|| segs.clone());
                        }
                        Brings::Glob => declared.globs.push(segs.clone()),
                        Brings::Nothing => {}
                    }
                    out.push(Written { scope: scope.clone(), segs, line });
                }
                i = end;
                continue;
            }
            // `extern crate self as me;` makes `me` a name of the crate root.
            Tok::Ident(_) if is_words(&toks[i..], &["extern", "crate", "self", "as"]) => {
                if let Some(alias) = toks.get(i + 4).and_then(ident) {
                    scopes.entry(scope.clone()).or_default().names.insert(alias.to_string(), vec!["crate".to_string()]);
                }
            }
            Tok::Ident(w) if at_top && ITEM_KEYWORDS.contains(&w.as_str()) => {
                if let Some(name) = toks[i + 1..].iter().find(|t| !t.is_ident("mut")).and_then(ident) {
                    scopes.entry(scope.clone()).or_default().items.insert(name.to_string());
                }
            }
            Tok::Ident(first) if toks.get(i + 1).is_some_and(|n| n.tok == Tok::PathSep) && (i == 0 || toks[i - 1].tok != Tok::PathSep) => {
                let mut segs = vec![(first.clone(), t.line)];
                i += 1;
                while let (Some(Tok::PathSep), Some(seg)) = (toks.get(i).map(|t| &t.tok), toks.get(i + 1).and_then(ident)) {
                    segs.push((seg.to_string(), toks[i + 1].line));
                    i += 2;
                }
                let line = line_of(&segs);
                out.push(Written { scope: scope.clone(), segs: segs.into_iter().map(|(s, _)| s).collect(), line });
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// What a leaf of a use tree brings into its scope.
enum Brings {
    /// A name: the last segment, or its `as` alias.
    Name(String),
    /// Everything public of the module its path names (`use a::*;`).
    Glob,
    /// Nothing (`use a::Trait as _;`), though the path is still used.
    Nothing,
}

/// Expands the use tree at `toks[i]` below `prefix` (segments with their lines) into its leaves:
/// `(path, what it brings in, line)`. `use ::x` (an extern crate, by its leading `::`) yields none.
fn use_tree(toks: &[Token], i: usize, prefix: Vec<(String, usize)>, out: &mut Vec<(Vec<String>, Brings, usize)>) {
    let Some(t) = toks.get(i) else { return };
    let mut leaf = |segs: Vec<(String, usize)>, brings| {
        let line = line_of(&segs);
        out.push((segs.into_iter().map(|(s, _)| s).collect(), brings, line));
    };
    match &t.tok {
        Tok::Punct('{') => {
            for item in group_items(toks, i) {
                use_tree(toks, item, prefix.clone(), out);
            }
        }
        Tok::Punct('*') if !prefix.is_empty() => leaf(prefix, Brings::Glob),
        Tok::Ident(w) => {
            let next = toks.get(i + 1).map(|n| &n.tok);
            // `a::{self}` is the path `a` itself, bringing in `a`.
            let mut segs = prefix;
            if w != "self" || segs.is_empty() || next == Some(&Tok::PathSep) {
                segs.push((w.clone(), t.line));
            }
            let Some((last, _)) = segs.last().cloned() else { return };
            match next {
                Some(Tok::PathSep) => use_tree(toks, i + 2, segs, out),
                Some(Tok::Ident(a)) if a == "as" => {
                    let alias = toks.get(i + 2).and_then(ident).filter(|a| *a != "_");
                    leaf(segs, alias.map_or(Brings::Nothing, |a| Brings::Name(a.to_string())));
                }
                _ => leaf(segs, Brings::Name(last)),
            }
        }
        _ => {}
    }
}

/// The line a path is reported at: its next-to-last segment's when that names a module (so a leaf of
/// `use crate::a::model::{` on a later line is reported at `model`), else its last segment's.
fn line_of(segs: &[(String, usize)]) -> usize {
    match segs {
        [.., (parent, line), _] if !matches!(parent.as_str(), "crate" | "$crate" | "self" | "super") => *line,
        [.., (_, line)] => *line,
        [] => 0,
    }
}

/// The identifier a token is, if it is one.
fn ident(t: &Token) -> Option<&str> {
    match &t.tok {
        Tok::Ident(w) => Some(w),
        _ => None,
    }
}

/// Whether `toks` starts with the identifiers `words`.
fn is_words(toks: &[Token], words: &[&str]) -> bool {
    words.len() <= toks.len() && words.iter().zip(toks).all(|(w, t)| t.is_ident(w))
}

impl Crate {
    /// The absolute module path a path written in `scope` starts from, followed by the rest of its
    /// segments; `None` when it does not start in this crate (an extern crate, a local item or type).
    fn absolute(&self, segs: &[String], scope: &[String], fuel: usize) -> Option<ModPath> {
        let (first, rest) = segs.split_first()?;
        let mut path = match first.as_str() {
            "crate" | "$crate" => Vec::new(),
            "self" => scope.to_vec(),
            "super" => scope.split_last()?.1.to_vec(),
            name => {
                let mut child = scope.to_vec();
                child.push(name.to_string());
                if self.scopes.contains_key(&child) {
                    child
                } else {
                    let target = self.scopes.get(scope)?.names.get(name)?;
                    self.absolute(target, scope, fuel.checked_sub(1)?)?
                }
            }
        };
        for seg in rest {
            match seg.as_str() {
                "super" => {
                    path.pop()?;
                }
                "self" => {}
                _ => path.push(seg.clone()),
            }
        }
        Some(path)
    }

    /// Follows an absolute path through the modules it names and the names they import (re-exports,
    /// aliases, globs), as far as the text tells.
    fn resolve(&self, mut path: ModPath, mut fuel: usize) -> ModPath {
        let mut i = 0;
        while i < path.len() {
            if self.scopes.contains_key(&path[..=i]) {
                i += 1;
                continue;
            }
            let Some(scope) = self.scopes.get(&path[..i]) else { break };
            let Some(left) = fuel.checked_sub(1) else { break };
            fuel = left;
            let name = &path[i];
            let via = if let Some(target) = scope.names.get(name) {
                self.absolute(target, &path[..i], fuel)
            } else if scope.items.contains(name) {
                None
            } else {
                scope.globs.iter().filter_map(|g| self.absolute(g, &path[..i], fuel)).map(|g| self.resolve(g, fuel)).find_map(|mut g| {
                    let found = self.defines(&g, name, &mut BTreeSet::new());
                    g.push(name.clone());
                    found.then_some(g)
                })
            };
            let Some(mut via) = via else { break };
            via.extend_from_slice(&path[i + 1..]);
            path = via;
            i = 0;
        }
        path
    }

    /// Whether the scope `module` has `name`: a child module, an item, a name it imports, or one of
    /// its globs' (each scope looked into once).
    fn defines(&self, module: &ModPath, name: &str, seen: &mut BTreeSet<ModPath>) -> bool {
        let Some(scope) = self.scopes.get(module) else { return false };
        if !seen.insert(module.clone()) {
            return false;
        }
        let mut child = module.clone();
        child.push(name.to_string());
        self.scopes.contains_key(&child)
            || scope.items.contains(name)
            || scope.names.contains_key(name)
            || scope.globs.iter().filter_map(|g| self.absolute(g, module, FUEL)).any(|g| self.defines(&self.resolve(g, FUEL), name, seen))
    }

    /// The longest prefix of `path` that is a module file (the root, empty, when none is).
    fn file_prefix(&self, mut path: ModPath) -> ModPath {
        while !path.is_empty() && !self.files.contains(&path) {
            path.pop();
        }
        path
    }
}
