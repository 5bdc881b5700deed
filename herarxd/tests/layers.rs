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
