//! The layering of herarxd's modules, checked on its source (std only; nothing is compiled).
//!
//! Rules:
//! 1. No import cycle among siblings, at any level. For each module with children (and the
//!    crate root), its direct children form a graph: an edge a → b when any code inside a
//!    (a itself or anything below it) references anything inside b. That graph must have no
//!    cycle. A module may always use its own children and its ancestors: those are not
//!    sibling edges.
//! 2. The top level follows `LAYERS`: each top-level module has a rank, lower ranks are lower
//!    layers, and a module may reference modules of a lower rank or of its own rank, never of
//!    a higher one. Peers of one rank may use one another because rule 1 already forbids them
//!    a cycle; to forbid two modules any contact, give them different ranks. Every top-level
//!    module must be in `LAYERS`, and every name in `LAYERS` must be a module.
//!
//! What counts as a reference (non-test code only): every `crate::…`, `super::…` and
//! `self::…` path, in `use` items (grouped ones too) or inline in code (`crate::fido2::x()`),
//! reduced to the longest prefix that is a module. Names bound by a `use` are followed: a
//! re-export (`pub use audit::AuditCtx` in `store`) counts as the module that defines it,
//! and a name a child gets through `use super::*` counts as where the parent got it. Comments,
//! doc comments and string literals are not code.
//!
//! Files: `src/a.rs` and `src/a/mod.rs` are `a`; `src/a/b.rs` is `a::b`; `lib.rs` and
//! `main.rs` are the crate root. `#[path = "x.rs"] mod y;` is honoured (relative to the
//! declaring file's directory); `#[path]` inside an inline `mod m { … }` is refused with a
//! message. A file no `mod` declares is refused. Test code is left out, since tests may reach
//! across layers: files named `*tests.rs`, files starting `#![cfg(test)]`, and any item under
//! `#[cfg(test)]` (a `mod tests { … }`, a `mod tests;` and the file it names, a test-only fn).
//!
//! Reading a failure:
//!     import cycle among the children of `store` (store::enrollments, store::factors):
//!       store::enrollments → store::factors → store::enrollments
//!           store::enrollments → store::factors  at src/store/enrollments.rs:13 (+4 more)
//!           store::factors → store::enrollments  at src/store/factors.rs:250
//! Each edge names its first reference and how many more lines make it. Break the cycle by moving
//! what one side needs (down into a shared lower sibling, or up into the parent) until one
//! edge has no references left. A layer failure names both modules, their ranks and the
//! line; a missing or stale entry says what to add to or remove from `LAYERS` below.
//!
//! Limits, on purpose: only the exact attribute `#[cfg(test)]` marks test code (a
//! `#[cfg(all(test, …))]` item counts as real code); a lone name (no `::`) outside `use` counts
//! only when a `use` in its scope, or in the module it glob-imports, binds it; paths that
//! macros build are not seen.
//!
//! Run: `cargo test -p herarxd --test layers` (while the real-tree checks are `#[ignore]`d,
//! add `-- --include-ignored` to see today's findings).

#[path = "layers/crate_map.rs"]
mod crate_map;
#[path = "layers/graph.rs"]
mod graph;
#[path = "layers/lex.rs"]
mod lex;
#[path = "layers/scan.rs"]
mod scan;

use std::path::Path;

/// Top-level module → rank (lower is lower). Today's modules with a first guess at where they
/// go: 0 leaves and crypto, 1 store, 2 factors, 3 the state they share, 4 login /
/// self-service / admin, 5 the bus, 6 the daemon. Refill this after the layered move.
const LAYERS: &[(&str, u32)] = &[
    // Below the store: cryptography, and what needs nothing of the daemon.
    ("crypto", 0),
    ("lock", 0),
    ("config", 1),
    ("users", 1),
    ("fido2", 1),
    ("delivery", 1),
    // Persistence: verifies and consumes, never hands a secret out.
    ("store", 2),
    ("logger", 3),
    ("alerts", 3),
    // Rules shared by the layers above.
    ("factors", 4),
    // What every request shares: the store handle, the configuration, session trust.
    ("state", 5),
    // The three services (a login may not reach into self-service or admin, nor they into
    // each other, except through a lower layer).
    ("login", 6),
    ("selfservice", 6),
    ("admin", 6),
    // The D-Bus adapter, then the process.
    ("bus", 7),
    ("daemon", 8),
];

fn real_crate() -> crate_map::CrateMap {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    match crate_map::build(&src) {
        Ok(map) => map,
        Err(e) => panic!("herarxd/tests/layers.rs cannot read herarxd/src: {e}"),
    }
}

fn fail_on(what: &str, problems: &[String]) {
    if !problems.is_empty() {
        panic!(
            "{what}: {} problem(s)\n\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// Stays on while the layout moves: the map itself (every file a declared module, every
/// `#[path]` readable) must hold at every step.
#[test]
fn every_source_file_is_a_module() {
    let map = real_crate();
    let store = vec!["store".to_string()];
    assert!(
        map.modules.contains(&store),
        "no `store` in {:?}",
        map.modules
    );
    for r in &map.references {
        assert!(
            map.modules.contains(&r.to),
            "{}:{} lands in no module",
            r.file,
            r.line
        );
    }
    assert!(!map.references.is_empty());
}

#[test]
fn no_cycle_among_sibling_modules() {
    fail_on(
        "sibling modules of herarxd import each other in a cycle",
        &graph::cycles(&real_crate()),
    );
}

#[test]
fn top_level_follows_layers() {
    fail_on(
        "herarxd's top level breaks LAYERS",
        &graph::layers(&real_crate(), LAYERS),
    );
}
