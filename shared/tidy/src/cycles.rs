//! The second check: no import cycle among a crate's module files.
//!
//! The nodes are module files (`calls/model.rs` and `calls/model/mod.rs` are `calls::model`; the crate
//! root and `src/bin/` are not nodes). There is an edge `m → n` when `m`'s file holds a path into `n` or
//! into an item of `n` (how paths are read and resolved is told in the crate's docs), except
//! between a module and its own ancestors or descendants: a module and its submodules are one unit, so
//! `use super::*;` in a child or a `mod.rs` re-exporting its children is no edge. Every strongly
//! connected component of more than one module is a [`Cycle`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::{self, Write as _};
use std::fs;
use std::path::Path;

use crate::modgraph::module_edges;

/// One edge of the module graph: `from` uses `to`, first at `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The importing module (`calls::model`).
    pub from: String,
    /// The imported module (`calls::ports`).
    pub to: String,
    /// The importer's file, relative to `src/` with `/` separators (`calls/model.rs`).
    pub file: String,
    /// The 1-based line where the first path from `from` into `to` ends.
    pub line: usize,
    /// That source line, trimmed.
    pub text: String,
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}: {}:{} `{}`", self.from, self.to, self.file, self.line, self.text)
    }
}

/// One strongly connected component of the module graph, as a closed walk through all its modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The walk: it starts and ends at the component's first module in name order, and visits every
    /// module of the component (`["a", "b", "a"]`; `["a", "b", "c", "a"]`; when no single circle holds
    /// them all, some module comes back: `["a", "b", "a", "c", "a"]`).
    pub modules: Vec<String>,
    /// For each step of the walk, the edge that makes it: `edges[i]` is `modules[i] → modules[i + 1]`.
    pub edges: Vec<Edge>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.modules.join(" → "))?;
        for edge in &self.edges {
            write!(f, "\n    {edge}")?;
        }
        Ok(())
    }
}

/// What [`assert_no_module_cycles`] says after the list of cycles.
const HINT: &str = "\
How to fix: break one edge of each cycle. Move what both sides need into a lower module that both may \
import (a sibling of its own, or the kernel), or let one side define a trait the other implements and let \
the composition root hand the implementation in. A module and its own submodules are one unit: a \
`mod.rs` re-exporting its children, or `use super::*;` in a child, is no edge.";

/// Every import cycle among the module files under `src`, in the order of their first module. Fails
/// when `src` cannot be read or holds no `.rs` file.
pub fn module_cycles(src: &Path) -> Result<Vec<Cycle>, String> {
    Ok(module_cycles_in(&read_sources(src)?))
}

/// [`module_cycles`] of sources in memory: `(path relative to src/ with / separators, source)` pairs,
/// the crate root (`lib.rs`) among them for the names it re-exports.
pub fn module_cycles_in<P: AsRef<str>, S: AsRef<str>>(files: &[(P, S)]) -> Vec<Cycle> {
    let mut next: BTreeMap<&str, BTreeMap<&str, &Edge>> = BTreeMap::new();
    let edges = module_edges(files);
    for e in edges.iter().filter(|e| !nested(&e.from, &e.to)) {
        next.entry(&e.from).or_default().insert(&e.to, e);
        next.entry(&e.to).or_default();
    }
    let reach: BTreeMap<&str, BTreeSet<&str>> = next.keys().map(|&m| (m, reachable(&next, m))).collect();
    let mut placed = BTreeSet::new();
    let mut out = Vec::new();
    for (&m, from_m) in &reach {
        if placed.contains(m) {
            continue;
        }
        let component: BTreeSet<&str> = from_m.iter().copied().filter(|n| reach[n].contains(m)).collect();
        placed.extend(component.iter().copied());
        if component.len() > 1 {
            out.push(walk(&next, &component));
        }
    }
    out
}

/// Panics, listing every cycle of [`module_cycles`] with the edges that make it and a hint how to
/// break them, unless there is none. The body of a test: `assert_no_module_cycles(&src, "patchbay-domain")`.
pub fn assert_no_module_cycles(src: &Path, crate_name: &str) {
    let cycles = match module_cycles(src) {
        Ok(c) => c,
        Err(e) => panic!("{crate_name}: the module cycle check cannot read the sources: {e}"),
    };
    if !cycles.is_empty() {
        panic!("{crate_name}: {} import cycle(s) among the modules under {}:\n{}\n{HINT}", cycles.len(), src.display(), list(&cycles));
    }
}

/// Proof that the check can fail on a crate's real layout: the sources under `src` as they are must
/// have no cycle, and with `line` appended to `file` they must have exactly one, the walk `cycle`
/// (`["calls::model", "calls::ports", "calls::model"]`), one of whose edges is the appended line.
/// Panics with what was found otherwise; answers the cycle for further checks.
pub fn assert_cycle_caught(src: &Path, file: &str, line: &str, cycle: &[&str]) -> Cycle {
    let mut files = read_sources(src).unwrap_or_else(|e| panic!("{e}"));
    let as_is = module_cycles_in(&files);
    assert!(as_is.is_empty(), "{} as it is should have no module cycle:\n{}", src.display(), list(&as_is));
    let Some((_, source)) = files.iter_mut().find(|(f, _)| f == file) else { panic!("no {file} under {}", src.display()) };
    let appended = format!("{source}\n{line}\n");
    let at = appended.lines().count();
    *source = appended;
    let mut found = module_cycles_in(&files);
    assert_eq!(found.len(), 1, "{file} with `{line}` appended:\n{}", list(&found));
    let c = found.remove(0);
    assert_eq!(c.modules, cycle, "{c}");
    assert!(c.edges.iter().any(|e| (e.file.as_str(), e.line, e.text.as_str()) == (file, at, line.trim())), "no edge at {file}:{at}: {c}");
    c
}

/// One cycle a line, its edges below it.
fn list(cycles: &[Cycle]) -> String {
    let mut out = String::new();
    for c in cycles {
        let _ = writeln!(out, "  {c}");
    }
    out
}

/// Every `.rs` file under `src` with its text, in path order (paths relative to `src/`, `/` separators).
fn read_sources(src: &Path) -> Result<Vec<(String, String)>, String> {
    let files = crate::rs_files(src)?;
    let read = |f: String| match fs::read_to_string(src.join(&f)) {
        Ok(text) => Ok((f, text)),
        Err(e) => Err(format!("{}: {e}", src.join(&f).display())),
    };
    files.into_iter().map(read).collect()
}

/// Whether one module is the other or contains it (`a` and `a::b::c`; not `a` and `ab`).
fn nested(a: &str, b: &str) -> bool {
    let within = |inner: &str, outer: &str| inner.strip_prefix(outer).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
    within(a, b) || within(b, a)
}

type Graph<'a> = BTreeMap<&'a str, BTreeMap<&'a str, &'a Edge>>;

/// The modules reachable from `from` in one or more steps.
fn reachable<'a>(next: &Graph<'a>, from: &'a str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from];
    while let Some(m) = todo.pop() {
        for &n in next.get(m).into_iter().flat_map(|to| to.keys()) {
            if seen.insert(n) {
                todo.push(n);
            }
        }
    }
    seen
}

/// The shortest path from `from` to `to` inside `component`, ties broken by name: `[from, …, to]`.
fn shortest<'a>(next: &Graph<'a>, component: &BTreeSet<&'a str>, from: &'a str, to: &'a str) -> Vec<&'a str> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(m) = queue.pop_front() {
        if m == to {
            break;
        }
        for &n in next[m].keys().filter(|n| component.contains(*n)) {
            if n != from && !parent.contains_key(n) {
                parent.insert(n, m);
                queue.push_back(n);
            }
        }
    }
    let mut path = vec![to];
    while let Some(&p) = parent.get(path[path.len() - 1]) {
        path.push(p);
    }
    path.reverse();
    path
}

/// A closed walk through every module of a strongly connected `component`: from its first module,
/// the shortest way to each module not yet passed, in name order, then the shortest way back.
fn walk<'a>(next: &Graph<'a>, component: &BTreeSet<&'a str>) -> Cycle {
    let start = *component.first().expect("a component has a module");
    let mut modules = vec![start];
    for &m in component {
        if !modules.contains(&m) {
            let here = modules[modules.len() - 1];
            modules.extend(shortest(next, component, here, m).into_iter().skip(1));
        }
    }
    let here = modules[modules.len() - 1];
    modules.extend(shortest(next, component, here, start).into_iter().skip(1));
    let edges = modules.windows(2).map(|w| next[w[0]][w[1]].clone()).collect();
    Cycle { modules: modules.into_iter().map(str::to_string).collect(), edges }
}

#[cfg(test)]
mod tests;
