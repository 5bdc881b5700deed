//! The shipped authselect auth blocks (`packaging/authselect/*.auth`) made into PAM stacks the
//! way authselect makes them: a small renderer for the template operators the blocks use, a
//! parser for the resulting PAM lines, and module substitution so the stack runs on this
//! machine (Debian: no pam_sss) against a private bus.
//!
//! The renderer knows exactly the operators of authselect-profiles(5) that keep a line's
//! meaning local (`{include if}`, `{exclude if}`, `{if ...:a|b}`) with a single feature or
//! `not` one; anything else in a block makes it fail, so a block edited to use more markup
//! fails the tests instead of being rendered wrongly.

use std::collections::BTreeSet;

/// The shipped block `name` (`sssd` or `local`).
pub fn block(name: &str) -> String {
    let path = crate::paths::workspace_root()
        .join("packaging/authselect")
        .join(format!("{name}.auth"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every feature a template's operators name.
pub fn features_named(template: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for line in template.lines() {
        let mut rest = line;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            let op = &rest[start + 1..start + len];
            let mut quoted = op.split('"').skip(1).step_by(2);
            for name in quoted.by_ref() {
                all.insert(name.to_string());
            }
            rest = &rest[start + len + 1..];
        }
    }
    all
}

/// Every subset of `features` (2^n of them, n small).
pub fn combinations(features: &BTreeSet<String>) -> Vec<BTreeSet<String>> {
    let list: Vec<&String> = features.iter().collect();
    (0..1u32 << list.len())
        .map(|mask| {
            list.iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, f)| (*f).clone())
                .collect()
        })
        .collect()
}

/// `"feature"` or `not "feature"`, evaluated.
fn expr(text: &str, on: &BTreeSet<String>) -> Result<bool, String> {
    let text = text.trim();
    let (negate, name) = match text.strip_prefix("not ") {
        Some(rest) => (true, rest.trim()),
        None => (false, text),
    };
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .filter(|n| !n.contains('"') && !n.is_empty())
        .ok_or_else(|| format!("unsupported condition {text:?}: one \"feature\" or not one"))?;
    Ok(on.contains(name) != negate)
}

/// The template with `on` features, as authselect writes it: lines whose `{include if}` is
/// false or whose `{exclude if}` is true are removed, `{if c:a|b}` becomes `a` or `b`.
pub fn render(template: &str, on: &BTreeSet<String>) -> Result<String, String> {
    let mut out = String::new();
    for (n, line) in template.lines().enumerate() {
        let mut keep = true;
        let mut text = String::new();
        let mut rest = line;
        while let Some(start) = rest.find('{') {
            let len = rest[start..]
                .find('}')
                .ok_or_else(|| format!("line {}: unclosed {{", n + 1))?;
            text.push_str(&rest[..start]);
            let op = &rest[start + 1..start + len];
            if let Some(c) = op.strip_prefix("include if ") {
                keep &= expr(c, on)?;
            } else if let Some(c) = op.strip_prefix("exclude if ") {
                keep &= !expr(c, on)?;
            } else if let Some(body) = op.strip_prefix("if ") {
                let (c, values) = body
                    .split_once(':')
                    .ok_or_else(|| format!("line {}: {{if}} without ':'", n + 1))?;
                let (yes, no) = values.split_once('|').unwrap_or((values, ""));
                text.push_str(if expr(c, on)? { yes } else { no });
            } else {
                return Err(format!("line {}: unsupported operator {{{op}}}", n + 1));
            }
            rest = &rest[start + len + 1..];
        }
        text.push_str(rest);
        if keep {
            out.push_str(text.trim_end());
            out.push('\n');
        }
    }
    Ok(out)
}

/// One module line of a PAM stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamLine {
    /// `auth`, `account`, ... (a leading `-` kept).
    pub kind: String,
    /// `required`, `requisite`, ... or the `[value=action ...]` pairs.
    pub control: Control,
    pub module: String,
    pub args: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Keyword(String),
    Actions(Vec<(String, String)>),
}

impl PamLine {
    /// The module's file name (`pam_unix.so` for `/usr/lib/.../pam_unix.so`).
    pub fn module_name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }

    /// `(value, N)` for every jump action `value=N`.
    pub fn jumps(&self) -> Vec<(String, usize)> {
        match &self.control {
            Control::Keyword(_) => Vec::new(),
            Control::Actions(pairs) => pairs
                .iter()
                .filter_map(|(v, a)| a.parse().ok().map(|n| (v.clone(), n)))
                .collect(),
        }
    }

    pub fn is(&self, keyword: &str, module: &str) -> bool {
        self.control == Control::Keyword(keyword.into()) && self.module_name() == module
    }

    pub fn to_line(&self) -> String {
        let control = match &self.control {
            Control::Keyword(k) => k.clone(),
            Control::Actions(pairs) => {
                let inner: Vec<String> = pairs.iter().map(|(v, a)| format!("{v}={a}")).collect();
                format!("[{}]", inner.join(" "))
            }
        };
        format!("{} {} {} {}", self.kind, control, self.module, self.args)
            .trim_end()
            .to_string()
    }
}

/// The module lines of a rendered stack (comments and blank lines are not modules: PAM does
/// not count them in jumps either).
pub fn parse(stack: &str) -> Result<Vec<PamLine>, String> {
    let mut lines = Vec::new();
    for (n, raw) in stack.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("line {}: not a PAM line: {raw:?}", n + 1);
        let (kind, rest) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let rest = rest.trim_start();
        let (control, rest) = if let Some(inner) = rest.strip_prefix('[') {
            let (inner, rest) = inner.split_once(']').ok_or_else(bad)?;
            let pairs = inner
                .split_whitespace()
                .map(|p| {
                    p.split_once('=')
                        .map(|(v, a)| (v.to_string(), a.to_string()))
                        .ok_or_else(bad)
                })
                .collect::<Result<Vec<_>, _>>()?;
            (Control::Actions(pairs), rest)
        } else {
            let (k, rest) = rest.split_once(char::is_whitespace).ok_or_else(bad)?;
            (Control::Keyword(k.to_string()), rest)
        };
        let rest = rest.trim_start();
        let (module, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if module.is_empty() {
            return Err(bad());
        }
        lines.push(PamLine {
            kind: kind.to_string(),
            control,
            module: module.to_string(),
            args: args.trim().to_string(),
        });
    }
    Ok(lines)
}

/// The stack with modules replaced: `f(name, args)` gives the new `(module, args)` for a line,
/// or None to keep it.
pub fn substitute(lines: &[PamLine], f: impl Fn(&str, &str) -> Option<(String, String)>) -> String {
    let mut out = String::new();
    for l in lines {
        let mut l = l.clone();
        if let Some((module, args)) = f(l.module_name(), &l.args) {
            l.module = module;
            l.args = args;
        }
        out.push_str(&l.to_line());
        out.push('\n');
    }
    out
}

/// Where the password modules' success jumps must land, and the rules that make "Herarx only
/// after the password" true whatever the modules return. Err names the broken rule.
pub fn check_password_first(lines: &[PamLine], herarx_on: bool) -> Result<(), String> {
    let show = |i: usize| {
        lines
            .get(i)
            .map(PamLine::to_line)
            .unwrap_or_else(|| "(past the end of the stack)".into())
    };
    // The target: `required pam_permit.so`, then Herarx when the feature is on, then nothing.
    let target = lines
        .iter()
        .rposition(|l| l.is("required", "pam_permit.so"))
        .ok_or("no `required pam_permit.so` line to land on")?;
    let tail: Vec<&str> = lines[target + 1..]
        .iter()
        .map(PamLine::module_name)
        .collect();
    let want: &[&str] = if herarx_on { &["pam_herarx.so"] } else { &[] };
    if tail != want {
        return Err(format!(
            "after the target {:?} come {tail:?}, not {want:?}",
            show(target)
        ));
    }
    if herarx_on && !lines[target + 1].is("required", "pam_herarx.so") {
        return Err(format!("Herarx is not `required`: {:?}", show(target + 1)));
    }
    // The failure path ends before the target.
    if target == 0 || !lines[target - 1].is("requisite", "pam_deny.so") {
        return Err(format!(
            "the line before the target is not `requisite pam_deny.so`: {:?}",
            target.checked_sub(1).map(show)
        ));
    }
    let mut password_modules = 0;
    for (i, l) in lines[..target].iter().enumerate() {
        // Nothing before Herarx may end the stack with success (`sufficient`, `binding`) or
        // bring in lines this check cannot see (`include`, `substack`).
        match &l.control {
            Control::Keyword(k) if k != "required" && k != "requisite" && k != "optional" => {
                return Err(format!(
                    "{k:?} before Herarx can end the stack: {:?}",
                    show(i)
                ));
            }
            Control::Actions(pairs) => {
                // `done` ends it with the state so far; `reset` forgets an earlier failure.
                if let Some((v, a)) = pairs.iter().find(|(_, a)| a == "done" || a == "reset") {
                    return Err(format!("{v}={a} before Herarx: {:?}", show(i)));
                }
            }
            _ => {}
        }
        let is_password = matches!(l.module_name(), "pam_unix.so" | "pam_sss.so");
        for (value, n) in l.jumps() {
            let lands = i + n + 1;
            if lands > target {
                return Err(format!("{value}={n} jumps past the target: {:?}", show(i)));
            }
            if is_password && value == "success" && lands != target {
                return Err(format!(
                    "success={n} of {:?} lands on {:?}, not on the target {:?}",
                    show(i),
                    show(lands),
                    show(target)
                ));
            }
            if !is_password && lands == target {
                return Err(format!(
                    "{value}={n} of a non-password module lands on the target: {:?}",
                    show(i)
                ));
            }
        }
        if is_password {
            password_modules += 1;
            if !l.jumps().iter().any(|(v, _)| v == "success") {
                return Err(format!(
                    "password module without a success jump: {:?}",
                    show(i)
                ));
            }
        }
    }
    if password_modules == 0 {
        return Err("no password module before the target".into());
    }
    Ok(())
}
