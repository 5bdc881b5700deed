//! One file's tokens → its `mod` declarations and every path it writes, each with the module
//! (scope) it is written in. Items under `#[cfg(test)]` are skipped whole: tests may reach across
//! layers. Paths are kept raw here; `crate_map` resolves them once all modules are known.

use super::lex::{Kind, Token};

/// A module path inside the crate: `["store", "factors"]`; the crate root is `[]`.
pub type ModPath = Vec<String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModDecl {
    /// The module the declaration is written in (the file's module, or an inline one in it).
    pub scope: ModPath,
    pub name: String,
    /// The value of a `#[path = "…"]` attribute on it.
    pub path_attr: Option<String>,
    /// Under `#[cfg(test)]`.
    pub test: bool,
    /// `mod x { … }` rather than `mod x;`.
    pub inline: bool,
    /// Written inside an inline module (where `#[path]` means something else: refused).
    pub in_inline: bool,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// Began with `crate`, `super` or `self`: `segs` is already crate-relative.
    Absolute,
    /// Began with a plain name (`table::Table`, `Table`, `std::fs`): a child module, a name
    /// brought in by a `use`, or something outside the crate; `crate_map` decides.
    Bare,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRef {
    pub scope: ModPath,
    pub anchor: Anchor,
    pub segs: Vec<String>,
    pub line: usize,
    /// Part of a `use` item.
    pub is_use: bool,
    /// A `use …::*`.
    pub glob: bool,
    /// The name a `use` leaf binds in `scope` (`use a::B as C` binds `C`).
    pub binds: Option<String>,
}

#[derive(Debug, Default)]
pub struct FileScan {
    pub decls: Vec<ModDecl>,
    pub paths: Vec<PathRef>,
    /// Inline, non-test modules (`mod x { … }`), as full paths.
    pub inline_mods: Vec<ModPath>,
    /// The file starts with `#![cfg(test)]`.
    pub test_file: bool,
}

struct Leaf {
    segs: Vec<String>,
    glob: bool,
    binds: Option<String>,
}

#[derive(Default)]
struct Attrs {
    test: bool,
    path: Option<String>,
    any: bool,
}

struct Scanner<'a> {
    t: &'a [Token],
    file: &'a str,
}

impl Scanner<'_> {
    fn is(&self, i: usize, text: &str) -> bool {
        self.t.get(i).is_some_and(|t| t.is(text))
    }

    fn ident_at(&self, i: usize) -> bool {
        self.t.get(i).is_some_and(Token::is_ident)
    }

    fn line(&self, i: usize) -> usize {
        self.t.get(i).map_or(0, |t| t.line)
    }

    /// At `[` of an attribute: its meaning for us, and the index after its `]`.
    fn attr(&self, i: usize, attrs: &mut Attrs) -> usize {
        let mut depth = 0;
        let mut j = i;
        while j < self.t.len() {
            if self.t[j].is("[") {
                depth += 1;
            } else if self.t[j].is("]") {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            j += 1;
        }
        let body: Vec<&Token> = self.t[i + 1..j.min(self.t.len())].iter().collect();
        let texts: Vec<&str> = body.iter().map(|t| t.text.as_str()).collect();
        if texts == ["cfg", "(", "test", ")"] {
            attrs.test = true;
        }
        if texts.len() == 3
            && texts[0] == "path"
            && texts[1] == "="
            && body[2].kind == Kind::Literal
        {
            attrs.path = Some(body[2].text.clone());
        }
        attrs.any = true;
        j + 1
    }

    /// `[pub[(…)]] mod NAME ;|{` at `i`: the name, whether inline, and the index after `;`/`{`.
    fn mod_head(&self, i: usize) -> Option<(String, bool, usize)> {
        let mut j = i;
        if self.is(j, "pub") {
            j += 1;
            if self.is(j, "(") {
                while j < self.t.len() && !self.is(j, ")") {
                    j += 1;
                }
                j += 1;
            }
        }
        if self.is(j, "mod") && self.ident_at(j + 1) && (self.is(j + 2, ";") || self.is(j + 2, "{"))
        {
            return Some((self.t[j + 1].text.clone(), self.is(j + 2, "{"), j + 3));
        }
        None
    }

    /// Skips one item (or statement) from `i`: to a `;` or the `}` closing its first block,
    /// never past the closer of the block around it.
    fn skip_item(&self, i: usize) -> usize {
        let mut depth = 0usize;
        let mut j = i;
        while j < self.t.len() {
            let tok = &self.t[j];
            if tok.is("(") || tok.is("[") || tok.is("{") {
                depth += 1;
            } else if tok.is(")") || tok.is("]") || tok.is("}") {
                if depth == 0 {
                    return j;
                }
                depth -= 1;
                if depth == 0 && tok.is("}") {
                    return j + 1;
                }
            } else if tok.is(";") && depth == 0 {
                return j + 1;
            }
            j += 1;
        }
        j
    }

    /// A use tree (or a plain path) at `i`, below `prefix`: its leaves and the index after it.
    fn tree(&self, mut i: usize, prefix: Vec<String>) -> (Vec<Leaf>, usize) {
        let mut segs = prefix;
        if self.is(i, "::") {
            // `::std::…`: an extern crate, never ours.
            segs.push("::".into());
            i += 1;
        }
        loop {
            if self.is(i, "{") {
                i += 1;
                let mut leaves = Vec::new();
                while i < self.t.len() && !self.is(i, "}") {
                    if self.is(i, ",") {
                        i += 1;
                        continue;
                    }
                    let (sub, j) = self.tree(i, segs.clone());
                    leaves.extend(sub);
                    i = if j == i { i + 1 } else { j };
                }
                return (leaves, i + 1);
            }
            if self.is(i, "*") {
                let leaf = Leaf {
                    segs,
                    glob: true,
                    binds: None,
                };
                return (vec![leaf], i + 1);
            }
            if !self.ident_at(i) {
                return (Vec::new(), i);
            }
            segs.push(self.t[i].text.clone());
            i += 1;
            if self.is(i, "::")
                && (self.ident_at(i + 1) || self.is(i + 1, "{") || self.is(i + 1, "*"))
            {
                i += 1;
                continue;
            }
            let mut binds = match segs.last().map(String::as_str) {
                Some("self") => segs.iter().rev().nth(1).cloned(),
                other => other.map(str::to_string),
            };
            if self.is(i, "as") && self.ident_at(i + 1) {
                let name = &self.t[i + 1].text;
                binds = (name != "_").then(|| name.clone());
                i += 2;
            }
            return (
                vec![Leaf {
                    segs,
                    glob: false,
                    binds,
                }],
                i,
            );
        }
    }

    /// `crate`/`super`/`self` prefixes made crate-relative; `None` for a bare path.
    fn absolute(
        &self,
        scope: &[String],
        segs: &[String],
        line: usize,
    ) -> Result<Option<Vec<String>>, String> {
        let mut out: Vec<String> = match segs.first().map(String::as_str) {
            Some("crate") => Vec::new(),
            Some("super") | Some("self") => scope.to_vec(),
            _ => return Ok(None),
        };
        for (k, s) in segs.iter().enumerate() {
            match s.as_str() {
                "crate" if k == 0 => {}
                "self" => {}
                "super" => {
                    if out.pop().is_none() {
                        return Err(format!(
                            "{}:{line}: `super` above the crate root",
                            self.file
                        ));
                    }
                }
                other => out.push(other.to_string()),
            }
        }
        Ok(Some(out))
    }

    fn add(
        &self,
        out: &mut FileScan,
        scope: &[String],
        leaves: Vec<Leaf>,
        line: usize,
        is_use: bool,
    ) -> Result<(), String> {
        for leaf in leaves {
            let (anchor, segs) = match self.absolute(scope, &leaf.segs, line)? {
                Some(abs) => (Anchor::Absolute, abs),
                None => (Anchor::Bare, leaf.segs),
            };
            out.paths.push(PathRef {
                scope: scope.to_vec(),
                anchor,
                segs,
                line,
                is_use,
                glob: leaf.glob,
                binds: leaf.binds,
            });
        }
        Ok(())
    }

    fn run(&self, module: &[String]) -> Result<FileScan, String> {
        let t = self.t;
        let mut out = FileScan::default();
        // (module path, brace depth inside it) for the file and each inline module.
        let mut scopes: Vec<(ModPath, usize)> = vec![(module.to_vec(), 0)];
        let mut depth = 0usize;
        let mut attrs = Attrs::default();
        let mut i = 0;
        while i < t.len() {
            let scope = scopes.last().map(|s| s.0.clone()).unwrap_or_default();
            let in_inline = scopes.len() > 1;
            if self.is(i, "#") && self.is(i + 1, "!") && self.is(i + 2, "[") {
                let mut inner = Attrs::default();
                i = self.attr(i + 2, &mut inner);
                if inner.test && !in_inline && depth == 0 {
                    out.test_file = true;
                    return Ok(out);
                }
                continue;
            }
            if self.is(i, "#") && self.is(i + 1, "[") {
                i = self.attr(i + 1, &mut attrs);
                continue;
            }
            let head = self.mod_head(i);
            if let Some((name, inline, _)) = &head {
                out.decls.push(ModDecl {
                    scope: scope.clone(),
                    name: name.clone(),
                    path_attr: attrs.path.clone(),
                    test: attrs.test,
                    inline: *inline,
                    in_inline,
                    line: self.line(i),
                });
            }
            if attrs.test {
                attrs = Attrs::default();
                i = self.skip_item(i);
                continue;
            }
            attrs = Attrs::default();
            if let Some((_, false, next)) = head {
                i = next;
                continue;
            }
            if let Some((name, true, next)) = head {
                depth += 1;
                let mut inner = scope.clone();
                inner.push(name);
                out.inline_mods.push(inner.clone());
                scopes.push((inner, depth));
                i = next;
                continue;
            }
            let tok = &t[i];
            let prev = i.checked_sub(1).map(|p| &t[p]);
            let after_path_sep = prev.is_some_and(|p| p.is("::") || p.is("."));
            if tok.is("{") {
                depth += 1;
            } else if tok.is("}") {
                if scopes.len() > 1 && scopes.last().is_some_and(|s| s.1 == depth) {
                    scopes.pop();
                }
                depth = depth.saturating_sub(1);
            } else if tok.is("use") {
                let (leaves, next) = self.tree(i + 1, Vec::new());
                self.add(&mut out, &scope, leaves, tok.line, true)?;
                i = next.max(i + 1);
                continue;
            } else if tok.is_ident() && !after_path_sep && tok.text != "Self" {
                let anchored = matches!(tok.text.as_str(), "crate" | "super" | "self");
                // `pub(in crate::x)` names a visibility, not a dependency.
                let visibility = prev.is_some_and(|p| p.is("in"));
                // `name:` names a field or a binding, never a path.
                let field = self.is(i + 1, ":");
                if (!anchored || self.is(i + 1, "::")) && !visibility && !field {
                    let (leaves, next) = self.tree(i, Vec::new());
                    self.add(&mut out, &scope, leaves, tok.line, false)?;
                    i = next.max(i + 1);
                    continue;
                }
            }
            i += 1;
        }
        Ok(out)
    }
}

/// Scans one file whose module is `module`; `file` names it in messages.
pub fn scan(tokens: &[Token], module: &[String], file: &str) -> Result<FileScan, String> {
    Scanner { t: tokens, file }.run(module)
}

#[cfg(test)]
mod tests {
    use super::super::lex::tokens;
    use super::*;

    fn m(path: &str) -> ModPath {
        path.split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The crate-relative paths a source written in module `module` names, as `a::b@line`.
    fn absolute(src: &str, module: &str) -> Vec<String> {
        let s = scan(&tokens(src), &m(module), "x.rs").unwrap();
        s.paths
            .iter()
            .filter(|p| p.anchor == Anchor::Absolute)
            .map(|p| {
                format!(
                    "{}{}@{}",
                    p.segs.join("::"),
                    if p.glob { "::*" } else { "" },
                    p.line
                )
            })
            .collect()
    }

    #[test]
    fn grouped_use_gives_every_leaf() {
        let src = "use crate::{a, b::{c, d::E}, f::{self, G as H}};";
        assert_eq!(
            absolute(src, "x"),
            ["a@1", "b::c@1", "b::d::E@1", "f@1", "f::G@1"]
        );
        let s = scan(&tokens(src), &m("x"), "x.rs").unwrap();
        let binds: Vec<_> = s.paths.iter().filter_map(|p| p.binds.clone()).collect();
        assert_eq!(binds, ["a", "c", "E", "f", "H"]);
    }

    #[test]
    fn super_and_self_resolve_from_the_module() {
        let src = "use super::audit::{self, Entry};\nfn f() { super::super::state::x(); self::inner::y(); }\nuse super::*;";
        assert_eq!(
            absolute(src, "store::factors"),
            [
                "store::audit@1",
                "store::audit::Entry@1",
                "state::x@2",
                "store::factors::inner::y@2",
                "store::*@3"
            ]
        );
        let err = scan(&tokens("use super::super::x;"), &m("a"), "src/a.rs").unwrap_err();
        assert!(
            err.contains("src/a.rs:1") && err.contains("above the crate root"),
            "{err}"
        );
    }

    #[test]
    fn inline_crate_paths_count() {
        let src = "fn f() {\n    let c = crate::fido2::Challenges::new();\n    crate::store::Store::<u8>::open();\n}";
        assert_eq!(
            absolute(src, "auth"),
            ["fido2::Challenges::new@2", "store::Store@3"]
        );
    }

    #[test]
    fn comments_strings_and_visibility_are_not_references() {
        let src = "// use crate::a;\n/// [`crate::b`]\n//! crate::c\nlet s = \"crate::d\";\npub(in crate::e) fn f() {}\npub(crate) fn g() {}";
        assert_eq!(absolute(src, "x"), Vec::<String>::new());
    }

    #[test]
    fn cfg_test_items_are_skipped_and_their_mods_marked() {
        let src = "use crate::a;\n#[cfg(test)]\nuse crate::t1;\n#[cfg(test)]\n#[path = \"x_tests.rs\"]\nmod tests;\n#[cfg(test)]\nmod more {\n    use crate::t2;\n}\nimpl S {\n    #[cfg(test)]\n    fn only_for_tests() { crate::t3::f() }\n    fn real() { crate::b::f() }\n}";
        assert_eq!(absolute(src, "x"), ["a@1", "b::f@14"]);
        let s = scan(&tokens(src), &m("x"), "x.rs").unwrap();
        let decls: Vec<_> = s
            .decls
            .iter()
            .map(|d| (d.name.as_str(), d.test, d.path_attr.as_deref()))
            .collect();
        assert_eq!(
            decls,
            [("tests", true, Some("x_tests.rs")), ("more", true, None)]
        );
        assert!(s.inline_mods.is_empty());
    }

    #[test]
    fn inline_modules_are_scopes() {
        let src = "mod inner {\n    use super::sibling;\n}\nuse super::after;";
        assert_eq!(absolute(src, "a::b"), ["a::b::sibling@2", "a::after@4"]);
        let s = scan(&tokens(src), &m("a::b"), "x.rs").unwrap();
        assert_eq!(s.inline_mods, [m("a::b::inner")]);
    }

    #[test]
    fn bare_paths_are_kept_for_later() {
        let s = scan(
            &tokens("use table::Table;\nfn f() { sent::go(); x.y::<u8>(); }"),
            &m("auth"),
            "x.rs",
        )
        .unwrap();
        let bare: Vec<_> = s
            .paths
            .iter()
            .filter(|p| p.anchor == Anchor::Bare)
            .map(|p| p.segs.join("::"))
            .collect();
        assert!(bare.contains(&"table::Table".to_string()), "{bare:?}");
        assert!(bare.contains(&"sent::go".to_string()), "{bare:?}");
        assert!(
            !bare.iter().any(|b| b == "y"),
            "a method after `.` is no path: {bare:?}"
        );
    }
}
