//! The man pages in `packaging/man/`: each renders without a warning, and each documents exactly
//! what the code accepts. Adding a command, an option, a module argument, a return code or a
//! configuration key without documenting it fails here.
//!
//! Also the bash completion that `herarxctl completions bash` prints, run in a real bash.
//!
//! Needs `man` (man-db), `groff` (groff-base) and bash; the built herarxd and herarxctl. No
//! root, no bus, no daemon.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use herarx_tests::paths;

const PAGES: [&str; 4] = ["herarxd.8", "herarxctl.1", "pam_herarx.8", "herarx.toml.5"];

fn man_dir() -> PathBuf {
    paths::workspace_root().join("packaging/man")
}

fn page(name: &str) -> String {
    let path = man_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(mut command: Command, what: &str) -> Output {
    command.output().unwrap_or_else(|e| {
        panic!("cannot run {what}: {e} (install man-db and groff-base: the tests need them)")
    })
}

fn stdout_of(program: PathBuf, args: &[&str]) -> String {
    let out = run(
        {
            let mut c = Command::new(&program);
            c.args(args);
            c
        },
        &program.display().to_string(),
    );
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

// ---- roff, read the simple way these hand-written pages are written ----

/// Text with the escapes these pages use turned into what they print.
fn unescape(s: &str) -> String {
    let mut out = s.to_owned();
    for (from, to) in [
        ("\\fB", ""),
        ("\\fI", ""),
        ("\\fR", ""),
        ("\\fP", ""),
        ("\\(dq", "\""),
        ("\\(aq", "'"),
        ("\\(lq", "\""),
        ("\\(rq", "\""),
        ("\\(bu", "*"),
        ("\\-", "-"),
        ("\\~", " "),
        ("\\ ", " "),
        ("\\&", ""),
        ("\\%", ""),
        ("\\c", ""),
        ("\\e", "\\"),
    ] {
        out = out.replace(from, to);
    }
    out
}

/// The arguments of a macro line, quotes respected.
fn macro_args(rest: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = rest.trim().chars().peekable();
    while chars.peek().is_some() {
        let mut arg = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                arg.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                arg.push(c);
                chars.next();
            }
        }
        args.push(arg);
        while chars.peek() == Some(&' ') {
            chars.next();
        }
    }
    args
}

/// What one source line prints: text lines as they are, font macros with their arguments
/// (joined as troff joins them), other requests nothing.
fn line_text(line: &str) -> String {
    let Some(request) = line.strip_prefix('.') else {
        return unescape(line);
    };
    let (name, rest) = request.split_once(' ').unwrap_or((request, ""));
    let args = macro_args(rest);
    let joined = match name {
        "B" | "I" | "SS" | "SH" => args.join(" "),
        "BR" | "RB" | "BI" | "IB" | "IR" | "RI" => args.concat(),
        _ => String::new(),
    };
    unescape(&joined)
}

/// The source lines of a page, comments left out.
fn lines(source: &str) -> Vec<&str> {
    source
        .lines()
        .filter(|l| !l.starts_with(".\\\"") && !l.starts_with("'\\\""))
        .collect()
}

/// The source lines of section `.SH name` (up to the next `.SH`).
fn section<'a>(source: &'a str, name: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in lines(source) {
        if line.starts_with(".SH") {
            inside = line_text(line) == name;
            continue;
        }
        if inside {
            out.push(line);
        }
    }
    assert!(!out.is_empty(), "no section {name:?} in the page");
    out
}

/// `.SS` subsections of some lines: (heading, lines).
fn subsections<'a>(lines: &[&'a str]) -> Vec<(String, Vec<&'a str>)> {
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    for line in lines {
        if line.starts_with(".SS") {
            out.push((line_text(line), Vec::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push(line);
        }
    }
    out
}

/// `.TP` items of some lines: (tag as printed, body as printed).
fn items(lines: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut expecting_tag = false;
    let mut open = false;
    for line in lines {
        if *line == ".TP" {
            expecting_tag = true;
            continue;
        }
        if expecting_tag {
            out.push((line_text(line), String::new()));
            expecting_tag = false;
            open = true;
            continue;
        }
        if line.starts_with(".SS") || line.starts_with(".PP") || line.starts_with(".SH") {
            open = false;
        }
        if open && let Some((_, body)) = out.last_mut() {
            let text = line_text(line);
            if !text.is_empty() {
                body.push(' ');
                body.push_str(&text);
            }
        }
    }
    out
}

/// Every `--option` in some text.
fn long_options(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        let before = rest[..at].chars().last();
        let name: String = rest[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if !name.is_empty() && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-') {
            out.insert(format!("--{name}"));
        }
        rest = &rest[at + 2..];
    }
    out
}

/// Everything a page prints, roughly: for searching words in it.
fn page_text(source: &str) -> String {
    lines(source)
        .iter()
        .map(|l| line_text(l))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- what the programs say about themselves ----

/// The entries of a clap help section such as `Commands:` or `Options:`: each line's leading
/// column (up to the description).
fn help_section(help: &str, heading: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != heading)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  "))
        .map(|l| {
            let l = l.trim_start();
            // The entry ends where clap's two-space gap before the description starts.
            l.split("  ").next().unwrap_or(l).trim().to_owned()
        })
        .collect()
}

/// Options (`--long` and `-s`) of one clap help text.
fn help_options(help: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in help_section(help, "Options:") {
        for token in entry.split([' ', ',']) {
            let is_long = token.starts_with("--") && token.len() > 2;
            let is_short = token.len() == 2 && token.starts_with('-');
            if is_long || is_short {
                out.insert(token.to_owned());
            }
        }
    }
    out
}

struct CtlCommands {
    /// Every command path clap knows, `help` included: "status", "totp", "totp add", ...
    all: BTreeSet<String>,
    /// The commands that do something (no subcommands of their own), `help` left out.
    leaves: BTreeSet<String>,
    /// Every option of herarxctl and of its commands.
    options: BTreeSet<String>,
    /// `herarxctl <path> --help` for each path, "" for the top.
    helps: Vec<(String, String)>,
}

/// Walks `herarxctl --help` and each command's `--help`.
fn herarxctl_commands() -> CtlCommands {
    let mut found = CtlCommands {
        all: BTreeSet::new(),
        leaves: BTreeSet::new(),
        options: BTreeSet::new(),
        helps: Vec::new(),
    };
    let mut pending = vec![String::new()];
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.split_whitespace().collect();
        args.push("--help");
        let help = stdout_of(paths::herarxctl(), &args);
        found.options.extend(help_options(&help));
        let subcommands = help_section(&help, "Commands:");
        if subcommands.is_empty() {
            assert!(
                !path.is_empty(),
                "no Commands: in herarxctl --help:\n{help}"
            );
            found.leaves.insert(path.clone());
        }
        for sub in subcommands {
            let sub_path = format!("{path} {sub}").trim().to_owned();
            found.all.insert(sub_path.clone());
            if sub != "help" {
                pending.push(sub_path);
            }
        }
        found.helps.push((path, help));
    }
    found
}

// ---- the tests ----

#[test]
fn every_page_renders_without_warnings() {
    for name in PAGES {
        let path = man_dir().join(name);
        let mut man = Command::new("man");
        man.args(["--warnings", "-E", "UTF-8", "-l"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .env("MAN_DISABLE_SECCOMP", "1")
            .env_remove("MANPAGER")
            .env_remove("PAGER");
        let out = run(man, "man");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "man --warnings -l {name}: {}\n{stderr}",
            out.status
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SEE ALSO"] {
            assert!(
                text.lines().any(|l| l == heading),
                "{name} has no {heading} section:\n{text}"
            );
        }

        let mut groff = Command::new("groff");
        groff.args(["-man", "-ww", "-z"]).arg(&path);
        let out = run(groff, "groff");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "groff -man -ww -z {name}: {}\n{stderr}",
            out.status
        );
    }
}

#[test]
fn pages_are_lintian_clean_and_carry_the_release_version() {
    let version = format!("\"Herarx {}\"", env!("CARGO_PKG_VERSION"));
    for name in PAGES {
        let source = page(name);
        let (title, section_number) = name.rsplit_once('.').unwrap();
        let th = source
            .lines()
            .find(|l| l.starts_with(".TH "))
            .unwrap_or_else(|| panic!("{name}: no .TH"));
        let th_args = macro_args(&th[4..]);
        assert_eq!(th_args[0], title.to_uppercase(), "{name}: {th}");
        assert_eq!(th_args[1], section_number, "{name}: {th}");
        assert!(th.contains(&version), "{name}: {th} should say {version}");

        for (n, line) in source.lines().enumerate() {
            if line.starts_with(".\\\"") {
                continue;
            }
            // lintian's hyphen-used-as-minus-sign: an option's dash must be written \-.
            let bytes = line.as_bytes();
            for (i, &b) in bytes.iter().enumerate() {
                let starts_word = i == 0 || b" [|(\"".contains(&bytes[i - 1]);
                let escaped = i > 0 && bytes[i - 1] == b'\\';
                assert!(
                    !(b == b'-' && starts_word && !escaped),
                    "{name}:{}: write an option's dash as \\-: {line}",
                    n + 1
                );
            }
            assert!(
                !line.trim().is_empty() || in_no_fill(&source, n),
                "{name}:{}: blank line outside .nf (use .PP)",
                n + 1
            );
        }
    }
}

/// Whether source line `n` is between `.nf` and `.fi`.
fn in_no_fill(source: &str, n: usize) -> bool {
    let mut nofill = false;
    for line in source.lines().take(n) {
        match line {
            ".nf" => nofill = true,
            ".fi" => nofill = false,
            _ => {}
        }
    }
    nofill
}

#[test]
fn herarxctl_page_documents_exactly_the_commands_and_options_of_the_help() {
    let clap = herarxctl_commands();
    assert!(
        clap.leaves.contains("status") && clap.leaves.contains("totp add"),
        "the help walk found too little: {:?}",
        clap.leaves
    );
    let source = page("herarxctl.1");
    let documented: BTreeSet<String> = subsections(&section(&source, "COMMANDS"))
        .into_iter()
        .map(|(heading, _)| heading)
        .collect();

    let undocumented: Vec<_> = clap.leaves.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "commands in herarxctl --help without a `.SS` under COMMANDS in herarxctl.1: \
         {undocumented:?}"
    );
    let unknown: Vec<_> = documented.difference(&clap.all).collect();
    assert!(
        unknown.is_empty(),
        "herarxctl.1 documents commands that herarxctl --help does not know: {unknown:?}"
    );

    // Options: every one the help shows is in the page, and the page names no other.
    let page_options: BTreeSet<String> = long_options(&page_text(&source));
    let text = page_text(&source);
    for option in &clap.options {
        let present = if option.starts_with("--") {
            page_options.contains(option)
        } else {
            text.contains(&format!("{option},")) || text.contains(&format!("{option} "))
        };
        assert!(present, "herarxctl.1 does not document {option}");
    }
    let clap_long: BTreeSet<String> = clap
        .options
        .iter()
        .filter(|o| o.starts_with("--"))
        .cloned()
        .collect();
    let unknown: Vec<_> = page_options.difference(&clap_long).collect();
    assert!(
        unknown.is_empty(),
        "herarxctl.1 names options that herarxctl does not have: {unknown:?}"
    );

    // The completions command's shells, from clap's "[possible values: ...]".
    let (_, completions_help) = clap
        .helps
        .iter()
        .find(|(path, _)| path == "completions")
        .expect("herarxctl completions --help");
    let values = completions_help
        .split("[possible values: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no possible values in:\n{completions_help}"));
    let completions_section = subsections(&section(&source, "COMMANDS"))
        .into_iter()
        .find(|(heading, _)| heading == "completions")
        .map(|(_, body)| {
            body.iter()
                .map(|l| line_text(l))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap();
    for shell in values.split(", ") {
        assert!(
            completions_section.contains(shell),
            "herarxctl.1 does not list the shell {shell} under completions"
        );
    }
}

#[test]
fn herarxctl_page_lists_the_exit_codes_of_the_help() {
    let help = stdout_of(paths::herarxctl(), &["--help"]);
    let from_help: BTreeSet<String> = help
        .lines()
        .skip_while(|l| l.trim_end() != "Exit codes:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let first = l.split_whitespace().next()?;
            first.parse::<u8>().ok().map(|n| n.to_string())
        })
        .collect();
    assert!(from_help.len() >= 5, "{help}");
    let source = page("herarxctl.1");
    let from_page: BTreeSet<String> = items(&section(&source, "EXIT STATUS"))
        .into_iter()
        .map(|(tag, _)| tag)
        .collect();
    assert_eq!(from_page, from_help, "EXIT STATUS of herarxctl.1 vs --help");
}

#[test]
fn herarxd_page_documents_every_option_of_the_help() {
    let help = stdout_of(paths::herarxd(), &["--help"]);
    let from_help = help_options(&help);
    assert!(from_help.contains("--state-dir"), "{help}");
    let source = page("herarxd.8");
    let options_section = items(&section(&source, "OPTIONS"));
    let tags = options_section
        .iter()
        .map(|(tag, _)| tag.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for option in &from_help {
        let documented = tags.split([' ', ',']).any(|word| word == option.as_str());
        assert!(documented, "herarxd.8 has no OPTIONS entry for {option}");
    }
    let in_synopsis = long_options(&page_text(&section(&source, "SYNOPSIS").join("\n")));
    let help_long: BTreeSet<String> = from_help
        .iter()
        .filter(|o| o.starts_with("--"))
        .cloned()
        .collect();
    let unknown: Vec<_> = long_options(&page_text(&source))
        .difference(&help_long)
        .cloned()
        .collect();
    assert!(
        unknown.is_empty(),
        "herarxd.8 names options herarxd does not have: {unknown:?}"
    );
    for option in help_long {
        if option != "--help" && option != "--version" {
            assert!(
                in_synopsis.contains(&option),
                "herarxd.8's SYNOPSIS lacks {option}"
            );
        }
    }
}

/// The argument names `pam_herarx/src/args.rs` matches: `Some(("name", ...))` for `name=VALUE`
/// and `arg == "name"` for flags.
fn module_arguments() -> (BTreeSet<String>, BTreeSet<String>) {
    let path = paths::workspace_root().join("pam_herarx/src/args.rs");
    let source = std::fs::read_to_string(&path).unwrap();
    let code = source.split("#[cfg(test)]").next().unwrap();
    let names_after = |marker: &str| -> BTreeSet<String> {
        code.split(marker)
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect()
    };
    (names_after("Some((\""), names_after("arg == \""))
}

#[test]
fn pam_page_documents_every_module_argument_and_return_code() {
    let (valued, flags) = module_arguments();
    // Guards the reading of args.rs itself: these four exist today.
    for known in ["bus", "timeout", "failmode"] {
        assert!(valued.contains(known), "{known}= not found in args.rs");
    }
    assert!(flags.contains("debug"), "debug not found in args.rs");

    let source = page("pam_herarx.8");
    let tags: Vec<String> = items(&section(&source, "OPTIONS"))
        .into_iter()
        .map(|(tag, _)| tag)
        .collect();
    let synopsis = page_text(&section(&source, "SYNOPSIS").join("\n"));
    for name in &valued {
        let arg = format!("{name}=");
        assert!(
            tags.iter().any(|t| t.starts_with(&arg)),
            "pam_herarx.8 has no OPTIONS entry for {arg}: {tags:?}"
        );
        assert!(
            synopsis.contains(&arg),
            "pam_herarx.8's SYNOPSIS lacks {arg}"
        );
    }
    for name in &flags {
        assert!(
            tags.iter().any(|t| t == name),
            "pam_herarx.8 has no OPTIONS entry for {name}: {tags:?}"
        );
        assert!(synopsis.contains(name.as_str()), "SYNOPSIS lacks {name}");
    }
    let documented: BTreeSet<String> = tags
        .iter()
        .map(|t| t.split('=').next().unwrap_or(t).to_owned())
        .collect();
    let known: BTreeSet<String> = valued.union(&flags).cloned().collect();
    assert_eq!(documented, known, "OPTIONS of pam_herarx.8 vs args.rs");

    // Every code codes.rs can return, and no other.
    let codes_rs =
        std::fs::read_to_string(paths::workspace_root().join("pam_herarx/src/codes.rs")).unwrap();
    let code = codes_rs.split("#[cfg(test)]").next().unwrap();
    let returned: BTreeSet<String> = code
        .split("PamResultCode::")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| name.starts_with("PAM_"))
        .collect();
    assert!(returned.len() >= 7, "{returned:?}");
    let documented: BTreeSet<String> = items(&section(&source, "RETURN VALUES"))
        .into_iter()
        .map(|(tag, _)| tag)
        .collect();
    assert_eq!(
        documented, returned,
        "RETURN VALUES of pam_herarx.8 vs codes.rs"
    );
}

/// `(section, key, default as written)` of every key in the shipped config; "" is the top level.
fn shipped_keys() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(paths::shipped_config()).unwrap();
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = strip_comment(line).trim().to_owned();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
        } else if let Some((key, value)) = line.split_once('=') {
            out.push((
                section.clone(),
                key.trim().to_owned(),
                value.trim().to_owned(),
            ));
        } else {
            panic!("packaging/herarx.toml: cannot read the line {line:?}");
        }
    }
    out
}

/// A TOML line without its `# comment` (a `#` inside a string stays).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

#[test]
fn config_page_documents_every_shipped_key_with_its_default() {
    let keys = shipped_keys();
    assert!(keys.len() >= 10, "{keys:?}");
    let source = page("herarx.toml.5");
    let subs = subsections(&section(&source, "KEYS"));
    let mut documented = BTreeSet::new();
    for (heading, body) in &subs {
        for (tag, _) in items(body) {
            documented.insert((heading.clone(), tag));
        }
    }
    let mut shipped = BTreeSet::new();
    for (table, key, default) in &keys {
        let heading = if table.is_empty() {
            "Top level".to_owned()
        } else {
            format!("[{table}]")
        };
        shipped.insert((heading.clone(), key.clone()));
        let (_, body) = subs
            .iter()
            .find(|(h, _)| *h == heading)
            .unwrap_or_else(|| panic!("herarx.toml.5 has no `.SS \"{heading}\"` under KEYS"));
        let (_, text) = items(body)
            .into_iter()
            .find(|(tag, _)| tag == key)
            .unwrap_or_else(|| panic!("herarx.toml.5 does not document {heading} {key}"));
        assert!(
            text.contains(&format!("Default: {default}")),
            "herarx.toml.5: {heading} {key} should say `Default: {default}`, it says:{text}"
        );
    }
    let unknown: Vec<_> = documented.difference(&shipped).collect();
    assert!(
        unknown.is_empty(),
        "herarx.toml.5 documents keys that packaging/herarx.toml does not have: {unknown:?}"
    );
}

#[test]
fn pages_name_the_files_and_each_other() {
    let all: Vec<(&str, String)> = PAGES.iter().map(|n| (*n, page(n))).collect();
    for (name, source) in &all {
        let text = page_text(source);
        for file in ["/etc/herarx/herarx.toml", "/var/lib/herarx/herarx.db"] {
            assert!(text.contains(file), "{name} does not name {file}");
        }
        let see_also = page_text(&section(source, "SEE ALSO").join("\n"));
        for (other, _) in &all {
            if other == name {
                continue;
            }
            let (title, number) = other.rsplit_once('.').unwrap();
            let reference = format!("{title}({number})");
            assert!(
                see_also.contains(&reference),
                "{name}'s SEE ALSO lacks {reference}"
            );
        }
    }
    let pam = page_text(&page("pam_herarx.8"));
    for must in [
        "store.key",
        "org.herarx.Herarx1.conf",
        "/etc/pam.d/sudo",
        "/etc/pam.d/sshd",
        "auth    required    pam_herarx.so",
        "root shell",
        "never read",
        "0600",
    ] {
        assert!(pam.contains(must), "pam_herarx.8 does not say {must:?}");
    }
}

/// What the bash completion of the built herarxctl offers after `herarxctl WORDS... ""`.
fn bash_completes(words: &[&str]) -> BTreeSet<String> {
    let script = r#"
        source <("$HX" completions bash) || exit 1
        shift
        COMP_WORDS=(herarxctl "$@" "")
        COMP_CWORD=${#COMP_WORDS[@]}
        COMP_CWORD=$((COMP_CWORD - 1))
        COMP_LINE="${COMP_WORDS[*]}"
        COMP_POINT=${#COMP_LINE}
        _herarxctl herarxctl "" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let mut bash = Command::new("bash");
    bash.args(["-c", script, "bash", "_"])
        .args(words)
        .env("HX", paths::herarxctl());
    let out = run(bash, "bash");
    assert!(
        out.status.success(),
        "bash completion for {words:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_offers_the_commands_of_the_help() {
    let clap = herarxctl_commands();
    let top: BTreeSet<String> = clap
        .all
        .iter()
        .filter(|path| !path.contains(' '))
        .cloned()
        .collect();
    let offered = bash_completes(&[]);
    assert!(
        top.is_subset(&offered),
        "bash completes {offered:?}, the help has {top:?}"
    );
    assert!(
        offered.contains("--bus") && offered.contains("--json"),
        "{offered:?}"
    );
    assert!(bash_completes(&["totp"]).contains("add"));
    let shells = bash_completes(&["completions"]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.contains(shell), "{shells:?}");
    }
}
