//! The two checks over a `CrateMap`: no cycle among the direct children of any module, and the
//! top level follows the declared layers. Each returns its problems as text for a reader.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::crate_map::{CrateMap, Reference, show};
use super::scan::ModPath;

/// Where an edge is made: its first reference, and on how many lines in all.
#[derive(Debug, Clone)]
pub struct Witness {
    pub first: Reference,
    pub count: usize,
}

impl Witness {
    fn describe(&self) -> String {
        let more = match self.count {
            1 => String::new(),
            n => format!(" (+{} more)", n - 1),
        };
        format!("{}:{}{more}", self.first.file, self.first.line)
    }
}

pub type Edges = BTreeMap<(ModPath, ModPath), Witness>;

/// For each module with children: the edges among its direct children. A reference from `s`
/// to `t` is an edge of their deepest common ancestor, between its children above `s` and `t`
/// (none when one contains the other: a module may use its own children and ancestors).
pub fn sibling_edges(map: &CrateMap) -> BTreeMap<ModPath, Edges> {
    let mut out: BTreeMap<ModPath, Edges> = BTreeMap::new();
    for r in &map.references {
        let common = r.from.iter().zip(&r.to).take_while(|(a, b)| a == b).count();
        if common == r.from.len() || common == r.to.len() {
            continue;
        }
        let parent = r.from[..common].to_vec();
        let key = (r.from[..=common].to_vec(), r.to[..=common].to_vec());
        out.entry(parent)
            .or_default()
            .entry(key)
            .and_modify(|w| w.count += 1)
            .or_insert(Witness {
                first: r.clone(),
                count: 1,
            });
    }
    out
}

/// Strongly connected components with more than one member (Tarjan's algorithm).
fn cyclic_components(nodes: &BTreeSet<ModPath>, edges: &Edges) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        next: BTreeMap<&'a ModPath, Vec<&'a ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.next.get(v).cloned().unwrap_or_default() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for (a, b) in edges.keys() {
        s.next.entry(a).or_default().push(b);
    }
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// The shortest path `from` → … → `to` using only edges inside `members`.
fn shortest(
    from: &ModPath,
    to: &ModPath,
    members: &BTreeSet<&ModPath>,
    edges: &Edges,
) -> Option<Vec<ModPath>> {
    let mut prev: BTreeMap<&ModPath, &ModPath> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(v) = queue.pop_front() {
        if v == to {
            let mut path = vec![to.clone()];
            let mut cur = to;
            while let Some(p) = prev.get(cur) {
                path.push((*p).clone());
                cur = p;
            }
            path.reverse();
            return Some(path);
        }
        for (a, b) in edges.keys() {
            if a == v && members.contains(b) && seen.insert(b) {
                prev.insert(b, a);
                queue.push_back(b);
            }
        }
    }
    None
}

/// Every cycle among siblings, one problem per module whose children form one. Each cyclic
/// group is shown as cycles that, together, use every edge inside it: each of those edges is a
/// candidate to move, and the group is gone only when enough of them are.
pub fn cycles(map: &CrateMap) -> Vec<String> {
    let mut problems = Vec::new();
    for (parent, edges) in sibling_edges(map) {
        let nodes: BTreeSet<ModPath> = edges
            .keys()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        for component in cyclic_components(&nodes, &edges) {
            let members: BTreeSet<&ModPath> = component.iter().collect();
            let names: Vec<String> = component.iter().map(|m| show(m)).collect();
            let mut text = format!(
                "import cycle among the children of `{}` ({}):\n",
                show(&parent),
                names.join(", ")
            );
            let mut covered: BTreeSet<(ModPath, ModPath)> = BTreeSet::new();
            let inside = edges
                .iter()
                .filter(|((a, b), _)| members.contains(a) && members.contains(b));
            for ((a, b), _) in inside {
                if covered.contains(&(a.clone(), b.clone())) {
                    continue;
                }
                let Some(back) = shortest(b, a, &members, &edges) else {
                    continue;
                };
                let mut cycle = vec![a.clone()];
                cycle.extend(back);
                let hops: Vec<String> = cycle.iter().map(|m| show(m)).collect();
                text.push_str(&format!("  {}\n", hops.join(" → ")));
                for pair in cycle.windows(2) {
                    let key = (pair[0].clone(), pair[1].clone());
                    if let Some(w) = edges.get(&key) {
                        text.push_str(&format!(
                            "      {} → {}  at {}\n",
                            show(&pair[0]),
                            show(&pair[1]),
                            w.describe()
                        ));
                    }
                    covered.insert(key);
                }
            }
            problems.push(text);
        }
    }
    problems
}

/// The top level against `layers` (name → rank): every top-level module is ranked, every
/// ranked name is a module, and no module references one of a higher rank.
pub fn layers(map: &CrateMap, layers: &[(&str, u32)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut rank: BTreeMap<&str, u32> = BTreeMap::new();
    for (name, r) in layers {
        if rank.insert(name, *r).is_some() {
            problems.push(format!("`{name}` is in LAYERS twice: keep one entry"));
        }
    }
    let top: BTreeSet<&str> = map
        .modules
        .iter()
        .filter(|m| m.len() == 1)
        .map(|m| m[0].as_str())
        .collect();
    for m in &top {
        if !rank.contains_key(m) {
            problems.push(format!(
                "`{m}` is a top-level module with no layer: add it to LAYERS in herarxd/tests/layers.rs"
            ));
        }
    }
    for name in rank.keys() {
        if !top.contains(name) {
            problems.push(format!(
                "`{name}` is in LAYERS but is no top-level module of herarxd: remove it from LAYERS in \
                 herarxd/tests/layers.rs"
            ));
        }
    }
    let root_edges = sibling_edges(map).remove(&Vec::new()).unwrap_or_default();
    for ((a, b), w) in &root_edges {
        let (Some(ra), Some(rb)) = (rank.get(a[0].as_str()), rank.get(b[0].as_str())) else {
            continue;
        };
        if ra < rb {
            problems.push(format!(
                "`{}` (layer {ra}) references `{}` (layer {rb}), a higher layer, at {}: move the code \
                 it needs down, or pass it in from above",
                a[0],
                b[0],
                w.describe()
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::super::crate_map::tests::map_of;
    use super::*;

    #[test]
    fn a_made_up_cycle_is_found_with_its_lines() {
        let map = map_of(&[
            ("lib.rs", "pub mod s;\n"),
            (
                "s/mod.rs",
                "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n",
            ),
            ("s/a.rs", "use super::b::X;\n"),
            ("s/b.rs", "pub struct X;\nfn f() {\n    super::c::g();\n}\n"),
            (
                "s/c.rs",
                "pub fn g() {}\nfn h() {\n    crate::s::a::k();\n    crate::s::a::k();\n}\n",
            ),
            ("s/d.rs", "use super::a::k;\n"),
        ])
        .unwrap();
        let problems = cycles(&map);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let p = &problems[0];
        assert!(p.contains("children of `s` (s::a, s::b, s::c)"), "{p}");
        assert!(p.contains("s::a → s::b → s::c → s::a"), "{p}");
        assert!(p.contains("s::a → s::b  at src/s/a.rs:1\n"), "{p}");
        assert!(p.contains("s::b → s::c  at src/s/b.rs:3\n"), "{p}");
        assert!(
            p.contains("s::c → s::a  at src/s/c.rs:3 (+1 more)\n"),
            "{p}"
        );
        assert!(!p.contains("s::d"), "d only depends on the cycle: {p}");
    }

    #[test]
    fn an_acyclic_tree_has_no_cycle() {
        let map = map_of(&[
            ("lib.rs", "pub mod s;\npub mod t;\n"),
            ("s/mod.rs", "pub mod a;\npub mod b;\npub use a::X;\n"),
            (
                "s/a.rs",
                "pub struct X;\nuse super::b::Y;\nuse crate::t::Z;\n",
            ),
            ("s/b.rs", "pub struct Y;\n"),
            (
                "t.rs",
                "// use crate::s::a; (a comment: no edge)\npub struct Z;\n",
            ),
        ])
        .unwrap();
        assert_eq!(cycles(&map), Vec::<String>::new());
        // The twin: b reaching `a::X` through its re-export in `s` is still b → a.
        let map = map_of(&[
            ("lib.rs", "pub mod s;\npub mod t;\n"),
            ("s/mod.rs", "pub mod a;\npub mod b;\npub use a::X;\n"),
            (
                "s/a.rs",
                "pub struct X;\nuse super::b::Y;\nuse crate::t::Z;\n",
            ),
            ("s/b.rs", "pub struct Y;\nfn f(_: super::X) {}\n"),
            ("t.rs", "pub struct Z;\n"),
        ])
        .unwrap();
        let problems = cycles(&map);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].contains("s::b → s::a  at src/s/b.rs:2"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn layers_are_enforced_and_complete() {
        let map = map_of(&[
            ("lib.rs", "pub mod low;\npub mod high;\npub mod new;\n"),
            ("low.rs", "use crate::high::X;\n"),
            ("high.rs", "use crate::low::Y;\n"),
            ("new.rs", ""),
        ])
        .unwrap();
        let problems = layers(&map, &[("low", 0), ("high", 1), ("gone", 2)]);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].contains("`new`")
                && problems[0].contains("add it to LAYERS in herarxd/tests/layers.rs")
        );
        assert!(problems[1].contains("`gone`") && problems[1].contains("remove it from LAYERS"));
        assert!(
            problems[2].contains("`low` (layer 0) references `high` (layer 1)")
                && problems[2].contains("src/low.rs:1")
        );
        let fine = map_of(&[
            ("lib.rs", "pub mod low;\npub mod high;\npub mod peer;\n"),
            ("low.rs", ""),
            ("high.rs", "use crate::low::Y;\nuse crate::peer::Z;\n"),
            ("peer.rs", "use crate::low::Y;\n"),
        ])
        .unwrap();
        assert_eq!(
            layers(&fine, &[("low", 0), ("high", 1), ("peer", 1)]),
            Vec::<String>::new()
        );
    }
}
