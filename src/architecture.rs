//! The layering of `src/`, checked: reads the `crate::…` paths each top-level module's
//! code names (test code excluded), and fails on an import cycle between top-level
//! modules or an arrow docs/architecture.md forbids. Test-only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules that must not depend on any other module of moonauth.
const LEAVES: &[&str] = &["source", "time", "fsx", "exit", "redact", "cli"];

/// `(from, to)`: arrows that are never allowed (from docs/architecture.md). `*` is any module.
const FORBIDDEN: &[(&str, &str)] = &[
    ("*", "commands"),
    ("credentials", "docker"),
    ("state", "docker"),
    ("rotation", "docker"),
    ("checks", "docker"),
    ("lease", "docker"),
    ("renew", "docker"),
    ("agents", "docker"),
    ("config", "docker"),
    ("state", "failover"),
    ("rotation", "failover"),
    ("credentials", "state"),
    ("output", "commands"),
    ("github", "docker"),
    ("failover", "github"),
    ("rotation", "github"),
    ("state", "github"),
    ("config", "github"),
];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The top-level module graph of the crate rooted at `src`.
fn graph(src: &Path) -> Graph {
    let mut g = Graph::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if matches!(top.as_str(), "main" | "lib" | "architecture") || rel.ends_with("tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let deps = g.entry(top.clone()).or_default();
            for dep in crate_paths(&text) {
                if dep != top {
                    deps.insert(dep);
                }
            }
        }
    }
    g
}

/// The first segment of every `crate::` path in the code before its `#[cfg(test)]` part,
/// including each name of a `crate::{a, b}` group; comments are skipped.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    if let Some(name) = ident(item.trim()) {
                        out.insert(name);
                    }
                }
            } else if let Some(name) = ident(rest) {
                out.insert(name);
            }
        }
    }
    out
}

fn ident(s: &str) -> Option<String> {
    let name: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Every strongly connected set of more than one module (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct Walk<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let i = w.index.len();
        w.index.insert(v, i);
        w.low.insert(v, i);
        w.stack.push(v);
        w.on.insert(v);
        for to in w.g.get(v).into_iter().flatten() {
            let Some((to, _)) = w.g.get_key_value(to.as_str()) else {
                continue;
            };
            let to = to.as_str();
            if !w.index.contains_key(to) {
                visit(w, to);
                let l = w.low[v].min(w.low[to]);
                w.low.insert(v, l);
            } else if w.on.contains(to) {
                let l = w.low[v].min(w.index[to]);
                w.low.insert(v, l);
            }
        }
        if w.low[v] == w.index[v] {
            let mut set = Vec::new();
            while let Some(x) = w.stack.pop() {
                w.on.remove(x);
                set.push(x.to_string());
                if x == v {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                w.found.push(set);
            }
        }
    }
    let mut w = Walk {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in g.keys() {
        if !w.index.contains_key(v.as_str()) {
            visit(&mut w, v);
        }
    }
    w.found
}

/// The arrows of `g` that the rules forbid, as `from -> to`.
fn violations(g: &Graph) -> Vec<String> {
    let mut bad = Vec::new();
    for (from, tos) in g {
        for to in tos {
            if !g.contains_key(to) {
                continue; // not a module of this crate (a macro, a type path)
            }
            let forbidden = FORBIDDEN.iter().any(|(f, t)| (*f == "*" || f == from) && t == to);
            if forbidden || LEAVES.contains(&from.as_str()) {
                bad.push(format!("{from} -> {to}"));
            }
        }
    }
    bad
}

#[test]
fn src_has_no_import_cycle_and_no_forbidden_arrow() {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(g.len() > 10, "the walk found the modules: {g:?}");
    let found = cycles(&g);
    assert!(found.is_empty(), "import cycles between top-level modules: {found:?}");
    let bad = violations(&g);
    assert!(bad.is_empty(), "arrows docs/architecture.md forbids: {bad:?}");
}

#[test]
fn the_checker_sees_cycles_groups_and_forbidden_arrows() {
    let text = "use crate::{a, b::C};\nuse crate::d::E; // crate::z\n#[cfg(test)]\nuse crate::t;";
    assert_eq!(
        crate_paths(text),
        ["a", "b", "d"].into_iter().map(String::from).collect()
    );
    let mut g = Graph::new();
    for (f, t) in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a"), ("state", "docker")] {
        g.entry(f.into()).or_default().insert(t.into());
        g.entry(t.into()).or_default();
    }
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    assert_eq!(violations(&g), vec!["state -> docker".to_string()]);
    g.entry("time".into()).or_default().insert("a".into());
    assert!(
        violations(&g).contains(&"time -> a".to_string()),
        "a leaf imports nothing"
    );
}
