//! A tokenizer just good enough to find module paths in Rust source: it drops comments (line,
//! doc and nested block comments) and keeps string and char literals as opaque tokens, so a
//! `crate::x` inside a comment, a doc example or a string never counts as a reference.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An identifier or keyword (`r#type` is given as `type`).
    Ident,
    /// `::`, or any other single punctuation character.
    Punct,
    /// A string, byte string, raw string or char literal; `text` holds its contents (used only
    /// for the value of `#[path = "…"]`).
    Literal,
    /// A number or a lifetime / loop label: never part of a module path.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub text: String,
    /// 1-based line of the token's first character.
    pub line: usize,
}

impl Token {
    pub fn is(&self, text: &str) -> bool {
        self.kind != Kind::Literal && self.text == text
    }

    pub fn is_ident(&self) -> bool {
        self.kind == Kind::Ident
    }
}

fn ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    out: Vec<Token>,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    /// Moves one character on, counting lines.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, kind: Kind, text: String, line: usize) {
        self.out.push(Token { kind, text, line });
    }

    fn ident(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek(0).filter(|c| ident_char(*c)) {
            s.push(c);
            self.pos += 1;
        }
        s
    }

    /// After the opening `"`: up to and including the closing one, honouring `\` escapes.
    fn quoted(&mut self, line: usize) {
        let mut s = String::new();
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    if let Some(e) = self.bump() {
                        s.push('\\');
                        s.push(e);
                    }
                }
                '"' => break,
                c => s.push(c),
            }
        }
        self.push(Kind::Literal, s, line);
    }

    /// At the `#`s or `"` after `r` / `br` / `cr`: a raw string up to `"` and as many `#`s.
    fn raw(&mut self, line: usize) {
        let mut hashes = 0;
        while self.peek(0) == Some('#') {
            hashes += 1;
            self.pos += 1;
        }
        self.bump(); // the opening quote
        let mut s = String::new();
        while let Some(c) = self.bump() {
            if c == '"' && (0..hashes).all(|k| self.peek(k) == Some('#')) {
                self.pos += hashes;
                break;
            }
            s.push(c);
        }
        self.push(Kind::Literal, s, line);
    }

    /// At a `'`: a char literal (`'x'`, `'\n'`, `'\''`) or a lifetime / label (`'a`).
    fn quote(&mut self, line: usize) {
        self.pos += 1;
        if self.peek(0) == Some('\\') {
            self.pos += 2;
            while let Some(c) = self.bump() {
                if c == '\'' {
                    break;
                }
            }
            self.push(Kind::Literal, String::new(), line);
        } else if self.peek(1) == Some('\'') {
            self.pos += 2;
            self.push(Kind::Literal, String::new(), line);
        } else {
            let name = self.ident();
            self.push(Kind::Other, format!("'{name}"), line);
        }
    }

    fn block_comment(&mut self) {
        self.pos += 2;
        let mut depth = 1;
        while depth > 0 {
            match (self.peek(0), self.peek(1)) {
                (Some('/'), Some('*')) => {
                    self.pos += 2;
                    depth += 1;
                }
                (Some('*'), Some('/')) => {
                    self.pos += 2;
                    depth -= 1;
                }
                (Some(_), _) => {
                    self.bump();
                }
                (None, _) => break,
            }
        }
    }

    fn run(mut self) -> Vec<Token> {
        while let Some(c) = self.peek(0) {
            let line = self.line;
            match c {
                c if c.is_whitespace() => {
                    self.bump();
                }
                '/' if self.peek(1) == Some('/') => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                '/' if self.peek(1) == Some('*') => self.block_comment(),
                '"' => {
                    self.pos += 1;
                    self.quoted(line);
                }
                '\'' => self.quote(line),
                c if c.is_ascii_digit() => {
                    let n = self.ident();
                    self.push(Kind::Other, n, line);
                }
                c if ident_start(c) => {
                    let word = self.ident();
                    let next = self.peek(0);
                    let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
                    if raw_prefix && (next == Some('"') || next == Some('#')) {
                        if word == "r" && next == Some('#') && self.peek(1).is_some_and(ident_start)
                        {
                            self.pos += 1; // raw identifier r#name
                            let name = self.ident();
                            self.push(Kind::Ident, name, line);
                        } else {
                            self.raw(line);
                        }
                    } else if matches!(word.as_str(), "b" | "c") && next == Some('"') {
                        self.pos += 1;
                        self.quoted(line);
                    } else if word == "b" && next == Some('\'') {
                        self.quote(line);
                    } else {
                        self.push(Kind::Ident, word, line);
                    }
                }
                ':' if self.peek(1) == Some(':') => {
                    self.pos += 2;
                    self.push(Kind::Punct, "::".into(), line);
                }
                c => {
                    self.bump();
                    self.push(Kind::Punct, c.to_string(), line);
                }
            }
        }
        self.out
    }
}

pub fn tokens(src: &str) -> Vec<Token> {
    Lexer {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
        out: Vec::new(),
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        tokens(src)
            .into_iter()
            .filter(|t| t.kind == Kind::Ident)
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn comments_and_strings_hide_paths() {
        let src = "// crate::a\n/// crate::b\n//! crate::c\n/* crate::d /* nested */ crate::e */\n\
                   let s = \"crate::f \\\" crate::g\"; let r = r#\"crate::h\"#; let c = '\"';\n\
                   real";
        assert_eq!(idents(src), ["let", "s", "let", "r", "let", "c", "real"]);
    }

    #[test]
    fn lines_are_counted_through_comments_and_strings() {
        let t = tokens("/*\n\n*/ a \"x\ny\" b\n// c\nd");
        let lines: Vec<(String, usize)> = t.into_iter().map(|t| (t.text, t.line)).collect();
        assert_eq!(
            lines,
            [
                ("a".to_string(), 3),
                ("x\ny".to_string(), 3),
                ("b".to_string(), 4),
                ("d".to_string(), 6)
            ]
        );
    }

    #[test]
    fn lifetimes_are_not_char_literals() {
        assert_eq!(
            idents("fn f<'a>(x: &'a str) -> char { 'x' } crate"),
            ["fn", "f", "x", "str", "char", "crate"]
        );
        assert_eq!(idents("r#type b'x' '\\'' end"), ["type", "end"]);
    }
}
