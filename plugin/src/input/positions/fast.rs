//! A fast reader for the YAML that Kubernetes manifests are written in: block mappings and
//! sequences, one-line scalars and flow collections, block scalars and comments. It gives the
//! value serde_yaml 0.9 reads, or None for anything else, and then the caller parses the document
//! with the general (and several times slower) YAML parsers. Declining is always safe; every rule
//! below declines where its reading is not certain to be libyaml's (serde_yaml's) and yaml-rust2's
//! (the field lines').

use std::fmt::Write;

use serde_json::{Map, Value};

/// Collections nested deeper than this are left to serde_yaml (which refuses 128), as
/// the ValueBuilder leaves them.
const MAX_DEPTH: usize = 100;

/// libyaml refuses an implicit key longer than 1024 characters; long keys are left to it.
const MAX_KEY_BYTES: usize = 1000;

/// The document's value, exactly as serde_yaml 0.9 reads it, or None when the text uses anything
/// outside the subset this reader knows.
pub(super) fn read(text: &str) -> Option<Value> {
    Reader::new(text, None)?.document()
}

/// Same as [`read`], and calls `line(pointer, line)` for every mapping key and sequence item, in
/// document order, with its JSON pointer and the line yaml-rust2 marks it at (1-based, within
/// `text`), as the LineRecorder records it. What it reported is meaningless when it
/// returns None.
pub(super) fn read_with_lines(text: &str, line: &mut dyn FnMut(&str, usize)) -> Option<Value> {
    Reader::new(text, Some(line))?.document()
}

/// Where [`read_with_lines`] reports the line of each key and item.
type LineSink<'l> = &'l mut dyn FnMut(&str, usize);

/// A scalar or flow collection written on one line.
enum Inline<'t> {
    Plain(&'t str),
    Quoted(String),
    Collection(Value),
}

impl Inline<'_> {
    fn into_value(self) -> Option<Value> {
        match self {
            Inline::Plain(text) => Some(match plain_type(text)? {
                Plain::Null => Value::Null,
                Plain::Bool(value) => Value::Bool(value),
                Plain::Integer(value) => Value::from(value),
                Plain::String => Value::String(text.to_string()),
            }),
            Inline::Quoted(text) => Some(Value::String(text)),
            Inline::Collection(value) => Some(value),
        }
    }

    /// The key this node spells, where it is a string key; `<<` may be a merge key.
    fn into_key(self) -> Option<String> {
        let key = match self {
            Inline::Plain(text) => match plain_type(text)? {
                Plain::String => text.to_string(),
                _ => return None,
            },
            Inline::Quoted(key) => key,
            Inline::Collection(_) => return None,
        };
        (key != "<<").then_some(key)
    }
}

#[derive(PartialEq)]
enum Chomping {
    Strip,
    Clip,
    Keep,
}

/// A cursor over the text. Between nodes it rests on the first character of the next line that
/// holds content (not blank, not a comment), or at the end of the text.
struct Reader<'t, 'l> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    /// The cursor's line, counted from 1 as yaml-rust2's markers are.
    line: usize,
    line_start: usize,
    /// Collections open around the cursor.
    depth: usize,
    lines: Option<LineSink<'l>>,
    /// The JSON pointer of the node being read; kept only when lines are reported.
    pointer: String,
}

impl<'t, 'l> Reader<'t, 'l> {
    fn new(text: &'t str, lines: Option<LineSink<'l>>) -> Option<Self> {
        plain_text(text).then(|| Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            line_start: 0,
            depth: 0,
            lines,
            pointer: String::new(),
        })
    }

    fn document(mut self) -> Option<Value> {
        self.skip_blank_lines()?;
        if self.at_end() {
            return None;
        }
        let value = self.block_node(-1, false)?;
        // Anything after the root node (a second node, a plain scalar continued on the next
        // line) is left to serde_yaml.
        self.at_end().then_some(value)
    }

    /// A node in block context, at the cursor: a sequence, a mapping (when a key follows), a block
    /// scalar or an inline node. `parent` is the indentation of the enclosing block collection
    /// (-1 at the root); `item` says the node is a sequence item, whose line is reported.
    fn block_node(&mut self, parent: isize, item: bool) -> Option<Value> {
        let column = self.column();
        match self.peek() {
            b'-' if self.at_block_entry() => {
                self.report_item(item, self.line);
                self.block_sequence(column, false)
            }
            b'|' | b'>' => self.block_scalar(parent, item),
            _ => {
                let line = self.line;
                self.report_item(item, line);
                let start = self.pos;
                let node = self.inline(false)?;
                self.skip_spaces();
                if self.at_value_indicator() {
                    let key = self.key(node, start)?;
                    return self.block_mapping(column, key, line);
                }
                self.end_line()?;
                self.skip_blank_lines()?;
                node.into_value()
            }
        }
    }

    /// A block mapping at `column` whose first key has been read, the cursor on its `:`.
    fn block_mapping(&mut self, column: usize, mut key: String, mut line: usize) -> Option<Value> {
        self.open()?;
        let mut map = Map::new();
        loop {
            self.pos += 1;
            let parent = self.push_key(&key, line);
            let value = self.mapping_value(column)?;
            self.pointer.truncate(parent);
            if map.insert(key, value).is_some() {
                return None;
            }
            if self.at_end() || self.column() < column {
                break;
            }
            if self.column() > column {
                return None;
            }
            line = self.line;
            key = self.block_key()?;
        }
        self.depth -= 1;
        Some(Value::Object(map))
    }

    /// The key of a block mapping entry after the first, at the cursor; leaves it on the `:`.
    fn block_key(&mut self) -> Option<String> {
        let start = self.pos;
        let node = match self.peek() {
            b'\'' | b'"' => self.inline(false)?,
            _ => Inline::Plain(self.plain(false)?),
        };
        self.skip_spaces();
        if !self.at_value_indicator() {
            return None;
        }
        self.key(node, start)
    }

    fn key(&self, node: Inline<'_>, start: usize) -> Option<String> {
        if self.pos - start > MAX_KEY_BYTES {
            return None;
        }
        node.into_key()
    }

    /// The value of a block mapping entry at `column`, the cursor just after the `:`.
    fn mapping_value(&mut self, column: usize) -> Option<Value> {
        self.skip_spaces();
        match self.peek() {
            b'\n' | b'#' | 0 => {
                self.end_line()?;
                self.skip_blank_lines()?;
                if self.at_end() || self.column() < column {
                    return Some(Value::Null);
                }
                if self.column() > column {
                    return self.block_node(column as isize, false);
                }
                if self.at_block_entry() {
                    // A sequence may sit at its key's indentation.
                    return self.block_sequence(column, true);
                }
                Some(Value::Null)
            }
            b'|' | b'>' => self.block_scalar(column as isize, false),
            _ => {
                let node = self.inline(false)?;
                self.end_line()?;
                self.skip_blank_lines()?;
                node.into_value()
            }
        }
    }

    /// A block sequence at `column`, the cursor on its first `-`. An `indentless` one (at its
    /// key's indentation) ends at the key's next sibling.
    fn block_sequence(&mut self, column: usize, indentless: bool) -> Option<Value> {
        self.open()?;
        let mut items = Vec::new();
        loop {
            self.pos += 1;
            let parent = self.push_index(items.len());
            self.skip_spaces();
            let item = if matches!(self.peek(), b'\n' | b'#' | 0) {
                self.end_line()?;
                self.skip_blank_lines()?;
                if !self.at_end() && self.column() > column {
                    self.block_node(column as isize, true)?
                } else {
                    // An empty item: yaml-rust2 marks it where the next token starts.
                    let line = self.next_token_line(column);
                    self.report(line);
                    Value::Null
                }
            } else {
                self.block_node(column as isize, true)?
            };
            self.pointer.truncate(parent);
            items.push(item);
            if self.at_end() || self.column() < column {
                break;
            }
            if self.column() > column {
                return None;
            }
            if !self.at_block_entry() {
                if indentless {
                    break;
                }
                return None;
            }
        }
        self.depth -= 1;
        Some(Value::Array(items))
    }

    /// A literal or folded block scalar, the cursor on its `|` or `>`, read as libyaml reads it.
    /// `parent` is the indentation of the enclosing block collection (libyaml's `indent`).
    fn block_scalar(&mut self, parent: isize, item: bool) -> Option<Value> {
        let literal = self.peek() == b'|';
        let header_line = self.line;
        self.pos += 1;
        let chomping = match self.peek() {
            b'-' => Chomping::Strip,
            b'+' => Chomping::Keep,
            _ => Chomping::Clip,
        };
        if chomping != Chomping::Clip {
            self.pos += 1;
        }
        // Indentation indicators are left to serde_yaml; end_line declines them with any other
        // text after the header.
        self.end_line()?;

        // Leading empty lines; the most indented of them and the first content line set the
        // indentation.
        let mut trailing_breaks = 0;
        let mut max_indent = 0;
        loop {
            self.skip_spaces();
            max_indent = max_indent.max(self.column());
            if self.peek() != b'\n' {
                break;
            }
            self.newline();
            trailing_breaks += 1;
        }
        let indent = (max_indent as isize).max(parent + 1).max(1) as usize;
        if !self.at_end() && self.column() < indent && self.column() as isize > parent {
            // The first content line is left of the indentation that a longer empty line before
            // it (or the root's minimum of 1) sets: yaml-rust2 refuses it, libyaml ends the
            // scalar there.
            return None;
        }
        // yaml-rust2 marks a block scalar at its first content line, or its header at the end.
        let mark = if self.at_end() {
            header_line
        } else {
            self.line
        };
        self.report_item(item, mark);

        let mut content = String::new();
        let mut leading_break = false;
        let mut leading_blank = false;
        while !self.at_end() && self.column() == indent {
            let trailing_blank = self.peek() == b' ';
            if !literal && leading_break && !leading_blank && !trailing_blank {
                if trailing_breaks == 0 {
                    content.push(' ');
                }
            } else if leading_break {
                content.push('\n');
            }
            push_newlines(&mut content, trailing_breaks);
            trailing_breaks = 0;
            leading_blank = trailing_blank;
            let end = self.line_end();
            content.push_str(self.text.get(self.pos..end)?);
            self.pos = end;
            leading_break = self.peek() == b'\n';
            if leading_break {
                self.newline();
            }
            loop {
                while self.column() < indent && self.peek() == b' ' {
                    self.pos += 1;
                }
                if self.peek() != b'\n' {
                    break;
                }
                self.newline();
                trailing_breaks += 1;
            }
        }
        if chomping != Chomping::Strip && leading_break {
            content.push('\n');
        }
        if chomping == Chomping::Keep {
            push_newlines(&mut content, trailing_breaks);
        }
        self.skip_blank_lines()?;
        Some(Value::String(content))
    }

    /// A scalar or flow collection on one line, at the cursor; in a flow collection if `flow`.
    fn inline(&mut self, flow: bool) -> Option<Inline<'t>> {
        Some(match self.peek() {
            b'[' => Inline::Collection(self.flow_sequence()?),
            b'{' => Inline::Collection(self.flow_mapping()?),
            b'\'' => Inline::Quoted(self.single_quoted()?),
            b'"' => Inline::Quoted(self.double_quoted()?),
            _ => Inline::Plain(self.plain(flow)?),
        })
    }

    fn flow_sequence(&mut self) -> Option<Value> {
        self.open()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_spaces();
        if self.peek() == b']' {
            self.pos += 1;
        } else {
            loop {
                let parent = self.push_index(items.len());
                self.report(self.line);
                let item = self.inline(true)?.into_value()?;
                self.pointer.truncate(parent);
                items.push(item);
                if self.flow_separator(b']')? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Some(Value::Array(items))
    }

    fn flow_mapping(&mut self) -> Option<Value> {
        self.open()?;
        self.pos += 1;
        let mut map = Map::new();
        self.skip_spaces();
        if self.peek() == b'}' {
            self.pos += 1;
        } else {
            loop {
                let start = self.pos;
                let node = match self.peek() {
                    b'\'' | b'"' => self.inline(true)?,
                    _ => Inline::Plain(self.plain(true)?),
                };
                self.skip_spaces();
                // JSON-like `"a":1` and keys without a value are left to serde_yaml.
                if self.peek() != b':' || self.peek_at(1) != b' ' {
                    return None;
                }
                let key = self.key(node, start)?;
                self.pos += 1;
                self.skip_spaces();
                if matches!(self.peek(), b',' | b'}' | b'#') {
                    return None;
                }
                let parent = self.push_key(&key, self.line);
                let value = self.inline(true)?.into_value()?;
                self.pointer.truncate(parent);
                if map.insert(key, value).is_some() {
                    return None;
                }
                if self.flow_separator(b'}')? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Some(Value::Object(map))
    }

    /// After an entry of a flow collection: true at its `close`, false at a `,` and another
    /// entry (a trailing `,` is left to serde_yaml), None at anything else.
    fn flow_separator(&mut self, close: u8) -> Option<bool> {
        self.skip_spaces();
        let byte = self.peek();
        self.pos += 1;
        if byte == close {
            return Some(true);
        }
        self.skip_spaces();
        (byte == b',' && !matches!(self.peek(), b']' | b'}')).then_some(false)
    }

    /// A plain scalar on one line: ends at `: `, ` #`, the line's end, and in flow context at
    /// `,[]{}`. Leaves the cursor after its last non-space character.
    fn plain(&mut self, flow: bool) -> Option<&'t str> {
        let start = self.pos;
        let first = self.peek();
        let next = self.peek_at(1);
        let starts = match first {
            // `-`, `?` and `:` start a plain scalar when a character that ends none follows
            // (libyaml does not let `?` and `:` start one in flow context).
            b'-' => !(blank_or_end(next) || flow && flow_indicator(next)),
            b'?' | b':' => !flow && !blank_or_end(next),
            b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
            | b'"' | b'%' | b'@' | b'`' => false,
            byte => !blank_or_end(byte),
        };
        if !starts {
            return None;
        }
        let rest = self.bytes.get(start..)?;
        let stops = if flow { STOP_IN_FLOW } else { STOP };
        // `at` runs over the scalar, `end` follows it past its last non-space byte.
        let mut at = 0;
        let mut end = 0;
        loop {
            let from = at;
            while rest
                .get(at)
                .is_some_and(|&b| PLAIN_STOPS[usize::from(b)] & stops == 0)
            {
                at += 1;
            }
            if at > from {
                end = at;
            }
            match rest.get(at) {
                None | Some(b'\n') => break,
                Some(b' ') => {
                    while rest.get(at) == Some(&b' ') {
                        at += 1;
                    }
                    if matches!(rest.get(at), None | Some(b'#' | b'\n')) {
                        break;
                    }
                }
                Some(b':') => {
                    let after = rest.get(at + 1).copied().unwrap_or(0);
                    if blank_or_end(after) {
                        break;
                    }
                    // libyaml refuses `:` before `,?[]{}` in flow context.
                    if flow && (flow_indicator(after) || after == b'?') {
                        return None;
                    }
                    at += 1;
                    end = at;
                }
                // A flow indicator, in flow context.
                Some(_) => break,
            }
        }
        let end = start + end;
        let text = self.text.get(start..end)?;
        // `a::` reads as the key `a:`, which yaml-rust2 may not agree with.
        if text.ends_with(':') {
            return None;
        }
        self.pos = end;
        Some(text)
    }

    /// A single-quoted scalar on one line (`''` is a quote).
    fn single_quoted(&mut self) -> Option<String> {
        let mut text = String::new();
        let mut from = self.pos + 1;
        loop {
            let quote = from
                + self
                    .bytes
                    .get(from..)?
                    .iter()
                    .position(|&b| b == b'\'' || b == b'\n')?;
            if self.bytes.get(quote) != Some(&b'\'') {
                return None;
            }
            text.push_str(self.text.get(from..quote)?);
            if self.bytes.get(quote + 1) == Some(&b'\'') {
                text.push('\'');
                from = quote + 2;
            } else {
                self.pos = quote + 1;
                return Some(text);
            }
        }
    }

    /// A double-quoted scalar on one line without escapes.
    fn double_quoted(&mut self) -> Option<String> {
        let from = self.pos + 1;
        let end = from
            + self
                .bytes
                .get(from..)?
                .iter()
                .position(|&b| matches!(b, b'"' | b'\\' | b'\n'))?;
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.pos = end + 1;
        self.text.get(from..end).map(str::to_string)
    }

    /// Ends the line after a node: spaces, a comment, then the line break (or the text's end).
    fn end_line(&mut self) -> Option<()> {
        self.skip_spaces();
        match self.peek() {
            b'#' if self.pos > 0 && self.bytes.get(self.pos - 1) == Some(&b' ') => {
                self.pos = self.line_end();
            }
            b'\n' | 0 => {}
            _ => return None,
        }
        if self.peek() == b'\n' {
            self.newline();
        }
        Some(())
    }

    /// Moves the cursor to the next line with content; None at a directive or document marker
    /// (`%`, `---`, `...` starting a line), which are left to serde_yaml.
    fn skip_blank_lines(&mut self) -> Option<()> {
        loop {
            self.skip_spaces();
            match self.peek() {
                b'\n' => self.newline(),
                b'#' => self.pos = self.line_end(),
                _ => break,
            }
        }
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let marker = self.column() == 0
            && (rest.starts_with(b"%") || rest.starts_with(b"---") || rest.starts_with(b"..."));
        (!marker).then_some(())
    }

    /// The line yaml-rust2 marks the token after the cursor's blank lines at, the cursor
    /// ending a sequence item at `column`. At the end of a text whose last line has no line
    /// break, the end is marked a line further down, unless the sequence ends before (it ends at
    /// a column left of its own).
    fn next_token_line(&self, column: usize) -> usize {
        let last_line = self.text.get(self.line_start..).unwrap_or_default();
        if self.at_end() && !last_line.is_empty() && last_line.chars().count() >= column {
            self.line + 1
        } else {
            self.line
        }
    }

    fn open(&mut self) -> Option<()> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        Some(())
    }

    /// Adds a key to the pointer and reports its line; returns the parent pointer's length.
    fn push_key(&mut self, key: &str, line: usize) -> usize {
        let parent = self.pointer.len();
        if let Some(report) = self.lines.as_mut() {
            self.pointer.push('/');
            if key.contains(['~', '/']) {
                self.pointer
                    .push_str(&key.replace('~', "~0").replace('/', "~1"));
            } else {
                self.pointer.push_str(key);
            }
            report(&self.pointer, line);
        }
        parent
    }

    /// Adds an index to the pointer; returns the parent pointer's length.
    fn push_index(&mut self, index: usize) -> usize {
        let parent = self.pointer.len();
        if self.lines.is_some() {
            // Writing to a String cannot fail.
            let _ = write!(self.pointer, "/{index}");
        }
        parent
    }

    fn report(&mut self, line: usize) {
        if let Some(report) = self.lines.as_mut() {
            report(&self.pointer, line);
        }
    }

    fn report_item(&mut self, item: bool, line: usize) {
        if item {
            self.report(line);
        }
    }

    fn peek(&self) -> u8 {
        self.peek_at(0)
    }

    fn peek_at(&self, offset: usize) -> u8 {
        self.byte(self.pos + offset)
    }

    /// The byte at `at`; 0 past the end (the text holds no 0 bytes).
    fn byte(&self, at: usize) -> u8 {
        self.bytes.get(at).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn column(&self) -> usize {
        self.pos - self.line_start
    }

    fn at_block_entry(&self) -> bool {
        self.peek() == b'-' && blank_or_end(self.peek_at(1))
    }

    fn at_value_indicator(&self) -> bool {
        self.peek() == b':' && blank_or_end(self.peek_at(1))
    }

    fn skip_spaces(&mut self) {
        while self.peek() == b' ' {
            self.pos += 1;
        }
    }

    /// The position of the cursor's line break, or the text's end.
    fn line_end(&self) -> usize {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        self.pos + rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())
    }

    /// Steps over the line break at the cursor.
    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
        self.line_start = self.pos;
    }
}

/// Bytes that may end a plain scalar: [`STOP`] ones in block and flow context, [`STOP_IN_FLOW`]
/// ones in flow context only (where the others stop it too).
const PLAIN_STOPS: [u8; 256] = {
    let mut stops = [0; 256];
    stops[b'\n' as usize] = STOP | STOP_IN_FLOW;
    stops[b' ' as usize] = STOP | STOP_IN_FLOW;
    stops[b':' as usize] = STOP | STOP_IN_FLOW;
    stops[b',' as usize] = STOP_IN_FLOW;
    stops[b'[' as usize] = STOP_IN_FLOW;
    stops[b']' as usize] = STOP_IN_FLOW;
    stops[b'{' as usize] = STOP_IN_FLOW;
    stops[b'}' as usize] = STOP_IN_FLOW;
    stops
};
const STOP: u8 = 1;
const STOP_IN_FLOW: u8 = 2;

fn blank_or_end(byte: u8) -> bool {
    matches!(byte, b' ' | b'\n' | 0)
}

fn flow_indicator(byte: u8) -> bool {
    matches!(byte, b',' | b'[' | b']' | b'{' | b'}')
}

fn push_newlines(text: &mut String, count: usize) {
    text.extend(std::iter::repeat_n('\n', count));
}

/// Whether the text is free of what this reader leaves to serde_yaml wholesale: tabs, carriage
/// returns and other control characters, line breaks other than `\n` (NEL, LS, PS), byte order
/// marks and non-characters.
fn plain_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    // Most manifests are printable ASCII: one pass that the compiler vectorizes.
    let ascii = bytes.iter().fold(true, |ok, &b| {
        ok & ((0x20..0x7f).contains(&b) | (b == b'\n'))
    });
    ascii
        || bytes.iter().enumerate().all(|(at, &byte)| {
            let next = bytes.get(at + 1..at + 3).unwrap_or_default();
            match byte {
                b'\n' => true,
                0..=0x1f | 0x7f => false,
                // U+0080..U+009F, NEL among them.
                0xc2 => !matches!(next.first(), Some(0x80..=0x9f)),
                // U+2028 and U+2029, the line and paragraph separators.
                0xe2 => !matches!(next, [0x80, 0xa8 | 0xa9]),
                // U+FEFF (byte order mark), U+FFFE and U+FFFF.
                0xef => !matches!(next, [0xbb, 0xbf] | [0xbf, 0xbe | 0xbf]),
                _ => true,
            }
        })
}

/// How serde_yaml (YAML 1.2 core schema) types a plain scalar.
enum Plain {
    Null,
    Bool(bool),
    Integer(i64),
    String,
}

/// A plain scalar's type as serde_yaml reads it, where that is certain; None where it might be a
/// number that is not a plain decimal integer. (positions.rs's `plain_scalar`.)
fn plain_type(text: &str) -> Option<Plain> {
    match text.as_bytes().first() {
        None => return Some(Plain::Null),
        Some(b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F') => {
            return Some(match text {
                "~" | "null" | "Null" | "NULL" => Plain::Null,
                "true" | "True" | "TRUE" => Plain::Bool(true),
                "false" | "False" | "FALSE" => Plain::Bool(false),
                _ => Plain::String,
            })
        }
        Some(b'-' | b'+' | b'.' | b'0'..=b'9') => {}
        Some(_) => return Some(Plain::String),
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        // Numbers start with a digit or a dot, after their sign (`inf` and `nan` without the
        // dot are strings to serde_yaml).
        return Some(Plain::String);
    }
    let decimal = !text.starts_with('+')
        && unsigned.len() <= 18
        && unsigned.bytes().all(|b| b.is_ascii_digit())
        && (unsigned == "0" || !unsigned.starts_with('0'));
    if decimal {
        return text.parse().ok().map(Plain::Integer);
    }
    // A character that no number (decimal, hex, octal, binary, float, `.inf`, `.nan`) has
    // makes it a string, as `1Gi`, `500m` and `0.5Gi` are.
    let maybe_number = unsigned.bytes().all(|b| {
        b.is_ascii_hexdigit()
            || matches!(
                b,
                b'x' | b'X' | b'o' | b'O' | b'.' | b'_' | b'+' | b'-' | b'i' | b'I' | b'n' | b'N'
            )
    });
    (!maybe_number).then_some(Plain::String)
}

#[cfg(test)]
#[path = "fast_tests.rs"]
mod tests;
