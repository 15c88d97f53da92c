//! Just enough lexing to find paths in Rust source: comments (doc comments too) and string, raw
//! string, byte string and char literals are blanked out, then what is left is cut into identifiers,
//! `::` and single punctuation characters, each with its 1-based line.

/// One token of blanked source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier, keyword or number; `$crate` (and any `$name`) is one identifier.
    Ident(String),
    /// `::`
    PathSep,
    /// Any other non-blank character.
    Punct(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: usize,
}

impl Token {
    pub(crate) fn is_ident(&self, name: &str) -> bool {
        matches!(&self.tok, Tok::Ident(s) if s == name)
    }

    pub(crate) fn is_punct(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The source with every comment and literal replaced by spaces; newlines are kept, so lines and
/// columns stay where they were.
pub(crate) fn blank(source: &str) -> String {
    let c: Vec<char> = source.chars().collect();
    let at = |i: usize| c.get(i).copied();
    let mut out = c.clone();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        // Where the comment or literal starting at `i` ends (exclusive), if one does.
        let end = if ch == '/' && at(i + 1) == Some('/') {
            c[i..].iter().position(|&x| x == '\n').map_or(c.len(), |p| i + p)
        } else if ch == '/' && at(i + 1) == Some('*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && at(j + 1) == Some('*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && at(j + 1) == Some('/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            j.min(c.len())
        } else if ch == '"' {
            quoted_end(&c, i + 1)
        } else if ch == '\'' {
            if at(i + 1) == Some('\\') {
                // '\n', '\'', '\u{..}': the closing quote comes after the escaped character.
                c[(i + 3).min(c.len())..].iter().position(|&x| x == '\'').map_or(c.len(), |p| i + 3 + p + 1)
            } else if at(i + 2) == Some('\'') {
                i + 3
            } else {
                // A lifetime or a label: code, not a literal.
                i + 1
            }
        } else if is_ident_char(ch) {
            let len = c[i..].iter().take_while(|&&x| is_ident_char(x)).count();
            let word: String = c[i..i + len].iter().collect();
            match raw_string_end(&c, i + len, &word) {
                Some(end) => end,
                None => {
                    // A whole word is code (so an `r` inside `for` never starts a raw string).
                    i += len;
                    continue;
                }
            }
        } else {
            i += 1;
            continue;
        };
        if ch == '\'' && end == i + 1 {
            i = end;
            continue;
        }
        for x in &mut out[i..end] {
            if *x != '\n' {
                *x = ' ';
            }
        }
        i = end;
    }
    out.into_iter().collect()
}

/// The end (exclusive) of a `"…"` literal whose body starts at `from`, escapes honoured.
fn quoted_end(c: &[char], from: usize) -> usize {
    let mut j = from;
    while j < c.len() {
        match c[j] {
            '\\' => j += 2,
            '"' => return j + 1,
            _ => j += 1,
        }
    }
    c.len()
}

/// If `word` (ending at `after`) is the prefix of a raw string (`r"…"`, `r#"…"#`, `br`, `cr`), the
/// end (exclusive) of that literal.
fn raw_string_end(c: &[char], after: usize, word: &str) -> Option<usize> {
    if !matches!(word, "r" | "br" | "cr") {
        return None;
    }
    let hashes = c[after..].iter().take_while(|&&x| x == '#').count();
    let open = after + hashes;
    if c.get(open) != Some(&'"') {
        return None; // `r#ident`, a raw identifier
    }
    let mut j = open + 1;
    while j < c.len() {
        if c[j] == '"' && c[j + 1..].iter().take(hashes).filter(|&&x| x == '#').count() == hashes {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// The tokens of `source`'s code (comments and literals blanked first).
pub(crate) fn tokens(source: &str) -> Vec<Token> {
    let c: Vec<char> = blank(source).chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if is_ident_char(ch) || (ch == '$' && c.get(i + 1).is_some_and(|&x| is_ident_char(x))) {
            let len = 1 + c[i + 1..].iter().take_while(|&&x| is_ident_char(x)).count();
            out.push(Token { tok: Tok::Ident(c[i..i + len].iter().collect()), line });
            i += len;
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Token { tok: Tok::PathSep, line });
            i += 2;
        } else {
            out.push(Token { tok: Tok::Punct(ch), line });
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_literals_are_blanked_and_lines_kept() {
        let src = "a // crate::x\n/* b /* nested */ crate::y\n */ c \"crate::z\\\"\" d r#\"crate::\"w\"# e '\"' f '\\'' g<'a> b\"q\" h";
        let blanked = blank(src);
        assert_eq!(blanked.lines().count(), src.lines().count());
        let words: Vec<&str> = blanked.split_whitespace().collect();
        assert_eq!(words, ["a", "c", "d", "e", "f", "g<'a>", "b", "h"]);
    }

    #[test]
    fn raw_identifiers_and_words_ending_in_r_are_code() {
        let words: Vec<String> = tokens("r#type for\"x\" br##\"y\"## z")
            .into_iter()
            .filter_map(|t| match t.tok {
                Tok::Ident(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(words, ["r", "type", "for", "z"]);
    }

    #[test]
    fn dollar_crate_is_one_identifier_and_lines_count() {
        let toks = tokens("x\n$crate::kernel");
        assert_eq!(toks[1], Token { tok: Tok::Ident("$crate".into()), line: 2 });
        assert_eq!(toks[2].tok, Tok::PathSep);
    }
}
