//! Reads an nginx configuration into a tree of directives, the way nginx
//! tokenizes it: words, `'…'` and `"…"` strings (with `\` escapes), `;`
//! ending a directive, `{ … }` blocks, `#` comments to the end of the line.
//! Every directive keeps its line so that what is reported (an error, a
//! directive not carried over) names the line to look at.
//!
//! Invariants: the input is untrusted text (an upload): the tokenizer is a
//! single pass without recursion, block nesting is bounded
//! ([`MAX_DEPTH`]), and nothing here panics on any input. `include` is
//! never followed (the caller lists it).

use std::fmt;

/// Deeper nesting is refused (real files nest 3 or 4 levels).
pub const MAX_DEPTH: usize = 32;

/// One directive: `name arg…;` or `name arg… { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    /// 1-based line of the directive's name.
    pub line: usize,
    /// The block's directives, for `name … { … }`.
    pub block: Option<Vec<Directive>>,
}

/// Why the file cannot be read; the text names the line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("nginx.conf line {line}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Semicolon,
    Open,
    Close,
}

fn err(line: usize, what: impl fmt::Display) -> ParseError {
    ParseError {
        line,
        what: what.to_string(),
    }
}

/// The tokens with their lines.
fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            ';' => out.push((Token::Semicolon, line)),
            '{' => out.push((Token::Open, line)),
            '}' => out.push((Token::Close, line)),
            '"' | '\'' => {
                let start = line;
                let mut word = String::new();
                let mut closed = false;
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => match chars.next() {
                            Some(e) => {
                                if e == '\n' {
                                    line += 1;
                                }
                                if e != c && e != '\\' {
                                    word.push('\\');
                                }
                                word.push(e);
                            }
                            None => break,
                        },
                        d if d == c => {
                            closed = true;
                            break;
                        }
                        d => {
                            if d == '\n' {
                                line += 1;
                            }
                            word.push(d);
                        }
                    }
                }
                if !closed {
                    return Err(err(
                        start,
                        format!("the string opened with {c} is never closed"),
                    ));
                }
                out.push((Token::Word(word), start));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&d) = chars.peek() {
                    if d.is_whitespace() || matches!(d, ';' | '{' | '}') {
                        break;
                    }
                    if d == '\\' {
                        chars.next();
                        if let Some(e) = chars.next() {
                            word.push(e);
                        }
                        continue;
                    }
                    word.push(d);
                    chars.next();
                }
                out.push((Token::Word(word), line));
            }
        }
    }
    Ok(out)
}

/// The directives of a whole file.
pub fn parse(text: &str) -> Result<Vec<Directive>, ParseError> {
    let tokens = tokenize(text)?;
    // A stack of open blocks: (directive waiting for its block, directives
    // read so far inside it). The bottom is the file itself.
    let mut stack: Vec<(Option<Directive>, Vec<Directive>)> = vec![(None, Vec::new())];
    let mut current: Option<Directive> = None;
    for (token, line) in tokens {
        match token {
            Token::Word(w) => match &mut current {
                Some(d) => d.args.push(w),
                None => {
                    current = Some(Directive {
                        name: w,
                        args: Vec::new(),
                        line,
                        block: None,
                    })
                }
            },
            Token::Semicolon => match current.take() {
                Some(d) => stack
                    .last_mut()
                    .map(|(_, list)| list.push(d))
                    .unwrap_or_default(),
                None => return Err(err(line, "unexpected \";\"")),
            },
            Token::Open => {
                let Some(d) = current.take() else {
                    return Err(err(line, "unexpected \"{\" (a block needs a name)"));
                };
                if stack.len() > MAX_DEPTH {
                    return Err(err(line, "blocks nested too deeply"));
                }
                stack.push((Some(d), Vec::new()));
            }
            Token::Close => {
                if let Some(d) = current.take() {
                    return Err(err(
                        d.line,
                        format!("directive \"{}\" is not terminated by \";\"", d.name),
                    ));
                }
                if stack.len() == 1 {
                    return Err(err(line, "unexpected \"}\""));
                }
                if let Some((Some(mut d), list)) = stack.pop() {
                    d.block = Some(list);
                    if let Some((_, parent)) = stack.last_mut() {
                        parent.push(d);
                    }
                }
            }
        }
    }
    if let Some(d) = current {
        return Err(err(
            d.line,
            format!("directive \"{}\" is not terminated by \";\"", d.name),
        ));
    }
    if stack.len() > 1 {
        let line = stack
            .last()
            .and_then(|(d, _)| d.as_ref().map(|d| d.line))
            .unwrap_or(0);
        return Err(err(
            line,
            "this block is never closed: \"}\" missing at the end of the file",
        ));
    }
    Ok(stack.pop().map(|(_, list)| list).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_comments_and_quotes_with_their_lines() {
        let text = "# top\nrtmp {\n  server { listen 1935; # port\n    application \"live\" {\n      push 'rtmp://h/app/k;ey' ;\n    }\n  }\n}\n";
        let tree = parse(text).expect("parses");
        let rtmp = &tree[0];
        assert_eq!((rtmp.name.as_str(), rtmp.line), ("rtmp", 2));
        let server = &rtmp.block.as_ref().expect("block")[0];
        let list = server.block.as_ref().expect("block");
        assert_eq!(list[0].args, ["1935"]);
        assert_eq!(list[1].args, ["live"]);
        let push = &list[1].block.as_ref().expect("block")[0];
        assert_eq!((push.args[0].as_str(), push.line), ("rtmp://h/app/k;ey", 5));
    }

    #[test]
    fn names_the_line_of_each_mistake() {
        let cases = [
            (
                "rtmp {\n  server {\n    listen 1935\n  }\n}\n",
                3,
                "not terminated",
            ),
            ("rtmp {\n  server {\n", 2, "never closed"),
            ("events {}\n}\n", 2, "unexpected \"}\""),
            ("a 'b;\n", 1, "never closed"),
            ("a;\n;\n", 2, "unexpected \";\""),
            ("worker_processes 1", 1, "not terminated"),
        ];
        for (text, line, what) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(what), "{text:?}: {e}");
        }
    }

    /// Arbitrary text made of nginx's syntax characters never panics
    /// (a cheap stand-in for a fuzz target: a fixed-seed generator).
    #[test]
    fn any_text_is_parsed_or_refused_without_panicking() {
        const PIECES: [&str; 12] = [
            "{", "}", ";", "'", "\"", "\\", "#", "\n", " ", "rtmp", "push", "é",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(PIECES[(seed % PIECES.len() as u64) as usize]);
            }
            let _ = parse(&text);
            seed = seed.wrapping_add(1);
        }
    }

    #[test]
    fn refuses_deep_nesting_without_recursing() {
        let text = "a {".repeat(100_000);
        assert!(parse(&text).is_err());
    }
}
