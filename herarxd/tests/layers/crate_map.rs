//! The crate as modules and references: walks `src/`, gives each file its module (honouring
//! `#[path]`), drops test code, and resolves every path a file writes to the module it lands
//! in (following `use` bindings, so `super::AuditCtx` re-exported by `store` from `store::audit`
//! counts as `store::audit`, and names a child gets from its parent's `use super::*` count
//! where they come from).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::lex::tokens;
use super::scan::{Anchor, FileScan, ModPath, PathRef, scan};

/// One reference from code in module `from` to module `to`, written at `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub from: ModPath,
    pub to: ModPath,
    pub file: String,
    pub line: usize,
}

#[derive(Debug, Default)]
pub struct CrateMap {
    /// Every non-test module, the root (`[]`) and inline modules included.
    pub modules: BTreeSet<ModPath>,
    pub references: Vec<Reference>,
}

pub fn show(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("reading {}: {e}", d.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("reading {}: {e}", d.display()))?
                .path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `a/b.rs` and `a/b/mod.rs` → `a::b`; `lib.rs` and `main.rs` (the crate roots) → `[]`.
fn default_module(rel: &Path) -> ModPath {
    let mut parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        let root_file = parts.is_empty() && (stem == "lib" || stem == "main");
        if stem != "mod" && !root_file {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

struct Resolver<'a> {
    modules: &'a BTreeSet<ModPath>,
    /// scope → name → the `use` leaf that binds it there.
    bindings: BTreeMap<ModPath, BTreeMap<String, &'a PathRef>>,
    /// scope → modules it glob-imports (`use x::*`).
    globs: BTreeMap<ModPath, Vec<&'a PathRef>>,
}

const HOPS: usize = 8;

impl Resolver<'_> {
    /// The crate-relative path a written path means, or `None` if it leaves the crate.
    fn absolute(&self, p: &PathRef, hops: usize) -> Option<Vec<String>> {
        match p.anchor {
            Anchor::Absolute => Some(p.segs.clone()),
            Anchor::Bare => {
                let found = self.bare(&p.scope, &p.segs, hops)?;
                // A lone name outside `use` (`remember: Vec::new()`, `let table = …`) is a
                // value, a type or a field, never a module: a module is named by a path.
                let lone = !p.is_use && p.segs.len() == 1;
                (!(lone && self.modules.contains(&found))).then_some(found)
            }
        }
    }

    fn bare(&self, scope: &ModPath, segs: &[String], hops: usize) -> Option<Vec<String>> {
        let (first, rest) = segs.split_first()?;
        if hops == 0 {
            return None;
        }
        let mut child = scope.clone();
        child.push(first.clone());
        if self.modules.contains(&child) {
            child.extend(rest.iter().cloned());
            return Some(child);
        }
        if let Some(b) = self.bindings.get(scope).and_then(|m| m.get(first)) {
            // A `use` leaf binding `first` is itself a path; `use x as first` resolves to x.
            if !(b.anchor == Anchor::Bare && b.scope == *scope && b.segs.first() == Some(first)) {
                let mut target = self.absolute(b, hops - 1)?;
                target.extend(rest.iter().cloned());
                return Some(target);
            }
        }
        for g in self.globs.get(scope).into_iter().flatten() {
            let Some(base) = self.absolute(g, hops - 1) else {
                continue;
            };
            let mut candidate = base.clone();
            candidate.push(first.clone());
            if self.modules.contains(&candidate) {
                candidate.extend(rest.iter().cloned());
                return Some(candidate);
            }
            if self
                .bindings
                .get(&base)
                .is_some_and(|m| m.contains_key(first))
            {
                return self.bare(&base, segs, hops - 1);
            }
        }
        None
    }

    /// The module a crate-relative path lands in: its longest prefix that is a module, after
    /// following any name that module binds with a `use` (a re-export, or a private import).
    fn module_of(&self, path: Vec<String>) -> ModPath {
        let mut path = path;
        for _ in 0..HOPS {
            let k = (0..=path.len())
                .rev()
                .find(|k| self.modules.contains(&path[..*k]))
                .unwrap_or(0);
            let module = path[..k].to_vec();
            let Some(name) = path.get(k) else {
                return module;
            };
            let Some(b) = self.bindings.get(&module).and_then(|m| m.get(name)) else {
                return module;
            };
            let Some(mut target) = self.absolute(b, HOPS) else {
                return module;
            };
            if target == path[..=k] {
                return module;
            }
            target.extend(path[k + 1..].iter().cloned());
            path = target;
        }
        let k = (0..=path.len())
            .rev()
            .find(|k| self.modules.contains(&path[..*k]))
            .unwrap_or(0);
        path[..k].to_vec()
    }
}

struct FileInfo {
    rel: String,
    scan: FileScan,
}

/// Builds the map of the crate whose sources are in `src`.
pub fn build(src: &Path) -> Result<CrateMap, String> {
    let files = rust_files(src)?;
    let mut texts = Vec::new();
    for f in &files {
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("reading {}: {e}", f.display()))?;
        let rel = f.strip_prefix(src).unwrap_or(f).to_path_buf();
        texts.push((rel, tokens(&text)));
    }
    let shown = |rel: &Path| format!("src/{}", rel.display());

    // File → module, then `#[path]` declarations move their targets (to a fixpoint, since the
    // declaring file may itself have been moved).
    let mut module_of: BTreeMap<PathBuf, ModPath> = texts
        .iter()
        .map(|(r, _)| (r.clone(), default_module(r)))
        .collect();
    let mut scans = BTreeMap::new();
    for _ in 0..HOPS {
        let mut changed = false;
        for (rel, toks) in &texts {
            let s = scan(toks, &module_of[rel], &shown(rel))?;
            for d in s.decls.iter().filter(|d| d.path_attr.is_some()) {
                let where_ = format!("{}:{}", shown(rel), d.line);
                if d.in_inline {
                    return Err(format!(
                        "{where_}: `#[path]` inside an inline module is not supported by herarxd/tests/layers.rs: \
                         declare the file with a plain `mod {};` (or teach the checker)",
                        d.name
                    ));
                }
                let attr = d.path_attr.clone().unwrap_or_default();
                let target = normalise(&rel.parent().unwrap_or(Path::new("")).join(&attr));
                let Some(current) = module_of.get(&target) else {
                    return Err(format!(
                        "{where_}: `#[path = \"{attr}\"]` names no file under src/"
                    ));
                };
                let mut wanted = d.scope.clone();
                wanted.push(d.name.clone());
                if *current != wanted {
                    module_of.insert(target, wanted);
                    changed = true;
                }
            }
            scans.insert(rel.clone(), s);
        }
        if !changed {
            break;
        }
    }

    // Test code: `*tests.rs`, a file starting `#![cfg(test)]`, anything declared under
    // `#[cfg(test)]`, and everything below those.
    let mut declared: BTreeSet<ModPath> = BTreeSet::new();
    let mut test_mods: BTreeSet<ModPath> = BTreeSet::new();
    for s in scans.values() {
        for d in &s.decls {
            let mut m = d.scope.clone();
            m.push(d.name.clone());
            if d.test {
                test_mods.insert(m.clone());
            }
            declared.insert(m);
        }
    }
    for (rel, s) in &scans {
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with("tests.rs") || s.test_file {
            test_mods.insert(module_of[rel].clone());
        }
    }
    let is_test = |m: &ModPath| (0..=m.len()).any(|k| test_mods.contains(&m[..k]));

    let mut infos = Vec::new();
    let mut map = CrateMap::default();
    for (rel, s) in scans {
        let module = module_of[&rel].clone();
        if is_test(&module) {
            continue;
        }
        if !module.is_empty() && !declared.contains(&module) {
            return Err(format!(
                "{}: no `mod` declares this file (it would be `{}`): declare it, delete it, or add \
                 a `#[path]` the checker can read",
                shown(&rel),
                show(&module)
            ));
        }
        map.modules.insert(module.clone());
        map.modules.extend(s.inline_mods.iter().cloned());
        infos.push(FileInfo {
            rel: shown(&rel),
            scan: s,
        });
    }
    map.modules.insert(Vec::new());

    let mut resolver = Resolver {
        modules: &map.modules,
        bindings: BTreeMap::new(),
        globs: BTreeMap::new(),
    };
    for info in &infos {
        for p in info.scan.paths.iter().filter(|p| p.is_use) {
            if p.glob {
                resolver.globs.entry(p.scope.clone()).or_default().push(p);
            } else if let Some(name) = &p.binds {
                resolver
                    .bindings
                    .entry(p.scope.clone())
                    .or_default()
                    .insert(name.clone(), p);
            }
        }
    }
    let mut refs = BTreeSet::new();
    for info in &infos {
        for p in &info.scan.paths {
            let Some(abs) = resolver.absolute(p, HOPS) else {
                continue;
            };
            let to = resolver.module_of(abs);
            refs.insert(Reference {
                from: p.scope.clone(),
                to,
                file: info.rel.clone(),
                line: p.line,
            });
        }
    }
    map.references = refs.into_iter().collect();
    Ok(map)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Writes `files` (path, text) under a fresh `src/` and builds its map.
    pub fn map_of(files: &[(&str, &str)]) -> Result<CrateMap, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        for (path, text) in files {
            let p = dir.path().join("src").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        build(&dir.path().join("src"))
    }

    fn edges(map: &CrateMap) -> Vec<String> {
        let mut out: Vec<String> = map
            .references
            .iter()
            .filter(|r| r.from != r.to)
            .map(|r| format!("{} -> {}", show(&r.from), show(&r.to)))
            .collect();
        out.dedup();
        out
    }

    #[test]
    fn files_become_modules_and_path_attributes_are_honoured() {
        let map = map_of(&[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            ("a.rs", "#[path = \"a_inner.rs\"]\nmod inner;\n#[cfg(test)]\n#[path = \"a_check.rs\"]\nmod check;\n"),
            ("a_inner.rs", "use super::super::b::X;\n"),
            ("a_check.rs", "use crate::b::Y;\n"),
            ("b/mod.rs", "pub mod c;\npub use c::X;\n#[cfg(test)]\nmod tests;\n"),
            ("b/c.rs", "pub struct X;\n"),
            ("b/tests.rs", "use crate::a::Z;\n"),
        ])
        .unwrap();
        let mods: Vec<String> = map.modules.iter().map(|m| show(m)).collect();
        assert_eq!(mods, ["crate", "a", "a::inner", "b", "b::c"]);
        // `b::X` is `b::c::X` re-exported; test files reference nothing.
        assert_eq!(edges(&map), ["a::inner -> b::c", "b -> b::c"]);
    }

    #[test]
    fn glob_imports_of_the_parent_count_where_the_names_come_from() {
        let map = map_of(&[
            ("lib.rs", "pub mod p;\n"),
            ("p.rs", "#[path = \"p_one.rs\"]\nmod one;\n#[path = \"p_two.rs\"]\nmod two;\nuse two::Thing;\n"),
            ("p_one.rs", "use super::*;\nfn f() -> Thing { two::make() }\n"),
            ("p_two.rs", "pub struct Thing;\n"),
        ])
        .unwrap();
        let from_one: Vec<String> = edges(&map)
            .into_iter()
            .filter(|e| e.starts_with("p::one "))
            .collect();
        assert_eq!(from_one, ["p::one -> p", "p::one -> p::two"]);
        let lines: Vec<usize> = map
            .references
            .iter()
            .filter(|r| show(&r.from) == "p::one" && show(&r.to) == "p::two")
            .map(|r| r.line)
            .collect();
        assert_eq!(lines, [2]);
    }

    #[test]
    fn undeclared_files_and_bad_path_attributes_are_refused() {
        let err =
            map_of(&[("lib.rs", "pub mod a;\n"), ("a.rs", ""), ("stray.rs", "")]).unwrap_err();
        assert!(
            err.contains("src/stray.rs") && err.contains("no `mod` declares"),
            "{err}"
        );
        let err = map_of(&[("lib.rs", "#[path = \"gone.rs\"]\nmod a;\n")]).unwrap_err();
        assert!(
            err.contains("src/lib.rs:2") && err.contains("names no file"),
            "{err}"
        );
        let err = map_of(&[
            ("lib.rs", "mod a {\n    #[path = \"x.rs\"]\n    mod b;\n}\n"),
            ("x.rs", ""),
        ])
        .unwrap_err();
        assert!(
            err.contains("src/lib.rs:3") && err.contains("inline module"),
            "{err}"
        );
    }
}
