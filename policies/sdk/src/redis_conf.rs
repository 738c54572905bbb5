//! A small redis.conf reader: directives, their arguments and their line numbers.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased directive name.
    pub name: String,
    pub args: Vec<String>,
    /// 1-based line in the file.
    pub line: usize,
}

impl Directive {
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }
}

/// Splits redis.conf into directives the way Redis does: `#` comments, whitespace-separated
/// arguments, double or single quotes for arguments with spaces (and `""` for an empty one).
pub fn parse(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            let mut word = String::new();
            if c == '"' || c == '\'' {
                chars.next();
                for ch in chars.by_ref() {
                    if ch == c {
                        break;
                    }
                    word.push(ch);
                }
            } else {
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() {
                        break;
                    }
                    word.push(ch);
                    chars.next();
                }
            }
            words.push(word);
        }
        if let Some((name, args)) = words.split_first() {
            out.push(Directive {
                name: name.to_ascii_lowercase(),
                args: args.to_vec(),
                line: i + 1,
            });
        }
    }
    out
}

/// The last occurrence of a directive wins, as in Redis.
pub fn last<'a>(directives: &'a [Directive], name: &str) -> Option<&'a Directive> {
    directives.iter().rev().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_and_comments() {
        let d = parse("# c\ncluster-enabled yes\nsave \"\"\nDIR '/data x'\n");
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].name, "cluster-enabled");
        assert_eq!(d[1].args, vec![String::new()]);
        assert_eq!(d[2].name, "dir");
        assert_eq!(d[2].arg(0), Some("/data x"));
        assert_eq!(d[2].line, 4);
    }
}
