//! Paths that start at the crate root (`crate::`, `$crate::`, `super::` chains that climb to it),
//! and the names a `use` tree brings in.

use std::collections::HashMap;

use crate::lex::{Tok, Token};

/// A path that starts at the crate root: its first segment (`None` for the root itself, an alias),
/// and the line of that segment.
pub(crate) struct RootPath {
    pub(crate) first: Option<String>,
    pub(crate) line: usize,
}

/// Every path in a file (its module `depth` below the root) that starts at the crate root.
pub(crate) fn root_paths(toks: &[Token], depth: usize) -> Vec<RootPath> {
    let mut out = Vec::new();
    let mut braces = 0usize;
    let mut inline_mods: Vec<usize> = Vec::new(); // the brace depth inside each open `mod x { … }`
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct('{') {
            braces += 1;
            if i >= 2 && toks[i - 2].is_ident("mod") && matches!(toks[i - 1].tok, Tok::Ident(_)) {
                inline_mods.push(braces);
            }
        } else if t.is_punct('}') {
            if inline_mods.last() == Some(&braces) {
                inline_mods.pop();
            }
            braces = braces.saturating_sub(1);
        }
        if i > 0 && toks[i - 1].tok == Tok::PathSep {
            continue; // inside a path that started earlier
        }
        if t.is_ident("crate") || t.is_ident("$crate") {
            match toks.get(i + 1).map(|n| &n.tok) {
                Some(Tok::PathSep) => walk(toks, i + 2, 0, &mut out),
                Some(Tok::Ident(w)) if w == "as" || w == "self" => out.push(RootPath { first: None, line: t.line }),
                _ => {} // `pub(crate)`, `extern crate serde`
            }
        } else if t.is_ident("super") && toks.get(i + 1).is_some_and(|n| n.tok == Tok::PathSep) {
            walk(toks, i, depth + inline_mods.len(), &mut out); // not `pub(super)`
        }
    }
    out
}

/// Follows the path or use tree at `toks[i]`, `level` modules below the crate root, and records the
/// first segment of every branch that reaches the root.
fn walk(toks: &[Token], i: usize, level: usize, out: &mut Vec<RootPath>) {
    let Some(t) = toks.get(i) else { return };
    match &t.tok {
        Tok::Ident(w) if w == "super" || w == "self" => {
            let level = if w == "super" { level.saturating_sub(1) } else { level };
            if toks.get(i + 1).is_some_and(|n| n.tok == Tok::PathSep) {
                walk(toks, i + 2, level, out);
            } else if level == 0 {
                out.push(RootPath { first: None, line: t.line });
            }
        }
        Tok::Ident(w) if level == 0 => out.push(RootPath { first: Some(w.clone()), line: t.line }),
        Tok::Punct('*') if level == 0 => out.push(RootPath { first: Some("*".to_string()), line: t.line }),
        Tok::Punct('{') => {
            for item in group_items(toks, i) {
                walk(toks, item, level, out);
            }
        }
        _ => {}
    }
}

/// Records `name → first segment` for every name the use tree at `toks[i]` brings in.
pub(crate) fn use_leaves(toks: &[Token], i: usize, first: Option<&str>, last: Option<&str>, out: &mut HashMap<String, String>) {
    let Some(t) = toks.get(i) else { return };
    match &t.tok {
        Tok::PathSep => use_leaves(toks, i + 1, first, last, out), // `use ::x`
        Tok::Punct('{') => {
            for item in group_items(toks, i) {
                use_leaves(toks, item, first, last, out);
            }
        }
        Tok::Ident(w) => {
            // `crate::` and `self::` at the start of a path in lib.rs both mean the root.
            let root = first.is_none() && (w == "crate" || w == "self");
            let (first, name) = if w == "self" { (first, last) } else { (first.or(Some(w)), Some(w.as_str())) };
            match toks.get(i + 1).map(|n| &n.tok) {
                Some(Tok::PathSep) if root => use_leaves(toks, i + 2, None, None, out),
                Some(Tok::PathSep) => use_leaves(toks, i + 2, first, name, out),
                Some(Tok::Ident(a)) if a == "as" => {
                    if let (Some(first), Some(Tok::Ident(alias))) = (first, toks.get(i + 2).map(|n| &n.tok)) {
                        if alias != "_" {
                            out.insert(alias.clone(), first.to_string());
                        }
                    }
                }
                _ => {
                    if let (false, Some(first), Some(name)) = (root, first, name) {
                        out.insert(name.to_string(), first.to_string());
                    }
                }
            }
        }
        _ => {}
    }
}

/// The first token of each item of the `{ … }` group that opens at `toks[open]`.
pub(crate) fn group_items(toks: &[Token], open: usize) -> Vec<usize> {
    let mut items = vec![open + 1];
    let mut nest = 0usize;
    for (j, t) in toks.iter().enumerate().skip(open + 1) {
        match t.tok {
            Tok::Punct('{') => nest += 1,
            Tok::Punct('}') if nest == 0 => break,
            Tok::Punct('}') => nest -= 1,
            Tok::Punct(',') if nest == 0 => items.push(j + 1),
            _ => {}
        }
    }
    items
}
