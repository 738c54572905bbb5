//! A YAML stream writer for packed objects whose output is byte for byte what serde_yaml 0.9.34
//! (libyaml's emitter, through unsafe-libyaml 0.2.11) writes for the same values, at a fraction
//! of its cost: `render` spent a third of a 10,000-object run in serde_yaml's emitter.
//!
//! It is a port of the parts of libyaml's emitter that serde_yaml's output can reach: block
//! mappings and sequences, `{}` and `[]` for empty ones (the only flow collections it writes),
//! plain, single-quoted, double-quoted and literal scalars, and `? ` keys. serde_yaml sets an
//! unlimited line width, so nothing is ever folded. The emitter's state (indent, the
//! `whitespace` and `indention` flags, the column) is kept exactly as libyaml keeps it, since its
//! layout decisions depend on it in ways that are easy to get wrong by reasoning them out anew.

use kr_policy_abi::packed::{Array, Node, Object};

/// Documents per emitter, as `render`'s `yaml_stream` runs them: each run starts with `---`
/// and a fresh emitter, whose first document gets no `---` of its own. A document whose root is
/// a scalar or an empty collection is laid out differently first in a run (`5`) and later
/// (`--- 5`), so the runs are part of the output.
pub(super) const YAML_RUN: usize = 16;

/// How deep `Node`'s `Serialize` goes before writing a container as null.
const MAX_DEPTH: usize = 256;

/// libyaml writes a key longer than this (in bytes) as `? key`.
const MAX_SIMPLE_KEY_LEN: usize = 128;

/// libyaml's default indentation step, which serde_yaml keeps.
const BEST_INDENT: i32 = 2;

/// Writes `objects` as the YAML stream `to_text(.., RenderFormat::Yaml)` prints: byte for byte
/// what serde_yaml 0.9 writes for the same values, in runs of 16 documents, each run preceded
/// by `---\n` (serde_yaml separates the documents within a run with `---` itself).
pub(super) fn write_documents<'a>(objects: impl IntoIterator<Item = Node<'a>>, out: &mut Vec<u8>) {
    let mut emitter = Emitter::new(out);
    for (index, object) in objects.into_iter().enumerate() {
        let first_in_run = index % YAML_RUN == 0;
        if first_in_run {
            emitter.start_run();
        }
        emitter.document(object, first_in_run);
    }
}

/// The scalar style serde_yaml asks libyaml for, for a string (numbers, booleans and null it
/// asks plain, which libyaml always grants them: see `Emitter::plain_scalar`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Requested {
    /// A string that reads back as a string when plain.
    Any,
    /// A string that would read back as something else when plain.
    SingleQuoted,
    /// A string with a `\n`.
    Literal,
}

/// The style libyaml settles on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

/// What `yaml_emitter_analyze_scalar` finds out about a scalar, reduced to what block context
/// needs (scalars are never written inside a flow collection here: those are all empty).
struct Analysis {
    /// It has a line break: `\n`, `\r`, U+85, U+2028 or U+2029.
    multiline: bool,
    /// It has a `\n` (what serde_yaml asks a literal for).
    has_newline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

/// libyaml's emitter state, for one run of documents.
struct Emitter<'o> {
    out: &'o mut Vec<u8>,
    /// Where the current line starts in `out`: the column is the number of characters after it.
    line_start: usize,
    /// The current indentation; -1 before the root collection.
    indent: i32,
    /// The last character written was whitespace (or an indicator that counts as such).
    whitespace: bool,
    /// Only indentation (and `-`/`?`/`:` indicators) has been written on this line.
    indention: bool,
}

impl<'o> Emitter<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        let line_start = out.len();
        Emitter {
            out,
            line_start,
            indent: -1,
            whitespace: true,
            indention: true,
        }
    }

    /// `yaml_stream`'s `---` and a fresh emitter's state (STREAM-START).
    fn start_run(&mut self) {
        self.out.extend_from_slice(b"---\n");
        self.line_start = self.out.len();
        self.indent = -1;
        self.whitespace = true;
        self.indention = true;
    }

    /// DOCUMENT-START (implicit, so `---` only after a run's first), the root, DOCUMENT-END.
    fn document(&mut self, root: Node<'_>, first_in_run: bool) {
        if !first_in_run {
            self.write_indent();
            self.write_indicator(b"---", true, false, false);
        }
        self.node(root, 0, false, false);
        self.write_indent();
    }

    /// One value as `Node`'s `Serialize` hands it to serde_yaml: the accessors in its order,
    /// malformed nodes and containers too deep as null.
    fn node(&mut self, node: Node<'_>, depth: usize, mapping_context: bool, simple_key: bool) {
        if let Some(b) = node.as_bool() {
            self.plain_scalar(if b { b"true" } else { b"false" });
        } else if let Some(n) = node.as_i64() {
            let mut buffer = [0u8; 20];
            let text = format_u64(n.unsigned_abs(), n < 0, &mut buffer);
            self.plain_scalar(text);
        } else if let Some(n) = node.as_u64() {
            let mut buffer = [0u8; 20];
            let text = format_u64(n, false, &mut buffer);
            self.plain_scalar(text);
        } else if let Some(n) = node.as_f64() {
            let mut buffer = FloatBuffer::new();
            self.plain_scalar(format_f64(n, &mut buffer));
        } else if let Some(s) = node.as_str() {
            self.string_scalar(s, simple_key);
        } else if let Some(array) = node.as_array() {
            if depth >= MAX_DEPTH {
                self.plain_scalar(b"null");
            } else {
                self.sequence(array, depth, mapping_context);
            }
        } else if let Some(object) = node.as_object() {
            if depth >= MAX_DEPTH {
                self.plain_scalar(b"null");
            } else {
                self.mapping(object, depth);
            }
        } else {
            self.plain_scalar(b"null");
        }
    }

    fn sequence(&mut self, array: Array<'_>, depth: usize, mapping_context: bool) {
        if array.iter().next().is_none() {
            self.write_indicator(b"[", true, true, false);
            self.write_indicator(b"]", false, false, false);
            return;
        }
        let outer = self.indent;
        // A sequence that is a mapping's value sits at the key's indentation.
        self.increase_indent(false, mapping_context && !self.indention);
        for item in array {
            self.write_indent();
            self.write_indicator(b"-", true, false, true);
            self.node(item, depth + 1, false, false);
        }
        self.indent = outer;
    }

    fn mapping(&mut self, object: Object<'_>, depth: usize) {
        let mut entries = object.iter();
        let Some(first) = entries.next() else {
            self.write_indicator(b"{", true, true, false);
            self.write_indicator(b"}", false, false, false);
            return;
        };
        let outer = self.indent;
        self.increase_indent(false, false);
        self.entry(first.0, first.1, depth);
        // `Serialize` writes only the first of repeated keys. `encode` sorts the keys, so while
        // they keep rising none can repeat; past the first that does not, remember them all.
        let mut previous = first.0;
        let mut seen: Option<std::collections::HashSet<&str>> = None;
        for (index, (key, value)) in (1..).zip(entries) {
            let is_first = match &mut seen {
                None if key > previous => {
                    previous = key;
                    true
                }
                None => {
                    let mut keys: std::collections::HashSet<&str> =
                        object.keys().take(index).collect();
                    let is_first = keys.insert(key);
                    seen = Some(keys);
                    is_first
                }
                Some(keys) => keys.insert(key),
            };
            if is_first {
                self.entry(key, value, depth);
            }
        }
        self.indent = outer;
    }

    /// A block mapping's key and value: `key: value`, or `? key` / `: value` for a key too
    /// long or multi-line to be a simple key.
    fn entry(&mut self, key: &str, value: Node<'_>, depth: usize) {
        self.write_indent();
        let analysis = analyze(key);
        if !analysis.multiline && key.len() <= MAX_SIMPLE_KEY_LEN {
            self.string_scalar_analyzed(key, &analysis, true);
            self.write_indicator(b":", false, false, false);
        } else {
            self.write_indicator(b"?", true, false, true);
            self.string_scalar_analyzed(key, &analysis, false);
            self.write_indent();
            self.write_indicator(b":", true, false, true);
        }
        self.node(value, depth + 1, true, false);
    }

    /// A number, boolean or null: always plain, as serde_yaml asks and libyaml allows.
    fn plain_scalar(&mut self, text: &[u8]) {
        if !self.whitespace {
            self.out.push(b' ');
        }
        self.out.extend_from_slice(text);
        self.whitespace = false;
        self.indention = false;
    }

    fn string_scalar(&mut self, s: &str, simple_key: bool) {
        let analysis = analyze(s);
        self.string_scalar_analyzed(s, &analysis, simple_key);
    }

    fn string_scalar_analyzed(&mut self, s: &str, analysis: &Analysis, simple_key: bool) {
        let requested = if analysis.has_newline {
            Requested::Literal
        } else if reads_as_non_string(s) {
            Requested::SingleQuoted
        } else {
            Requested::Any
        };
        let style = select_style(requested, analysis, s.is_empty(), simple_key);
        let outer = self.indent;
        self.increase_indent(true, false);
        match style {
            Style::Plain => self.plain_scalar(s.as_bytes()),
            Style::SingleQuoted => self.write_single_quoted(s, analysis.multiline),
            Style::DoubleQuoted => self.write_double_quoted(s),
            Style::Literal => self.write_literal(s),
        }
        self.indent = outer;
    }

    /// `yaml_emitter_increase_indent`.
    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    /// Characters since the last line break, as libyaml counts its column.
    fn column(&self) -> usize {
        self.out
            .get(self.line_start..)
            .unwrap_or_default()
            .iter()
            .filter(|&&b| !is_continuation(b))
            .count()
    }

    fn put_break(&mut self) {
        self.out.push(b'\n');
        self.line_start = self.out.len();
    }

    /// `WRITE_BREAK`: a `\n` as a line break, any other break character as itself.
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.push_char(c);
            self.line_start = self.out.len();
        }
    }

    fn push_char(&mut self, c: char) {
        let mut utf8 = [0u8; 4];
        self.out
            .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }

    /// `yaml_emitter_write_indent`: a new line unless only indentation is on this one, then
    /// spaces up to the indentation.
    fn write_indent(&mut self) {
        let indent = usize::try_from(self.indent).unwrap_or(0);
        let mut column = if self.indention { self.column() } else { 0 };
        if !self.indention || column > indent || (column == indent && !self.whitespace) {
            self.put_break();
            column = 0;
        }
        if column < indent {
            self.out.resize(self.out.len() + (indent - column), b' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    /// `yaml_emitter_write_indicator`.
    fn write_indicator(
        &mut self,
        indicator: &[u8],
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.out.push(b' ');
        }
        self.out.extend_from_slice(indicator);
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    /// `yaml_emitter_write_single_quoted_scalar` (no folding: the width is unlimited).
    fn write_single_quoted(&mut self, s: &str, multiline: bool) {
        self.write_indicator(b"'", true, false, false);
        if multiline {
            let mut breaks = false;
            for c in s.chars() {
                if c == ' ' {
                    self.out.push(b' ');
                } else if is_break(c) {
                    if !breaks && c == '\n' {
                        self.put_break();
                    }
                    self.write_break(c);
                    self.indention = true;
                    breaks = true;
                } else {
                    if breaks {
                        self.write_indent();
                    }
                    if c == '\'' {
                        self.out.push(b'\'');
                    }
                    self.push_char(c);
                    self.indention = false;
                    breaks = false;
                }
            }
            if breaks {
                self.write_indent();
            }
        } else {
            for part in s.as_bytes().split_inclusive(|&b| b == b'\'') {
                self.out.extend_from_slice(part);
                if part.last() == Some(&b'\'') {
                    self.out.push(b'\'');
                }
            }
        }
        self.write_indicator(b"'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    /// `yaml_emitter_write_double_quoted_scalar` (no folding: the width is unlimited).
    fn write_double_quoted(&mut self, s: &str) {
        self.write_indicator(b"\"", true, false, false);
        let bytes = s.as_bytes();
        let mut clean_from = 0;
        for (at, c) in s.char_indices() {
            if !(needs_escape(c)) {
                continue;
            }
            self.out
                .extend_from_slice(bytes.get(clean_from..at).unwrap_or_default());
            clean_from = at + c.len_utf8();
            self.push_escape(c);
        }
        self.out
            .extend_from_slice(bytes.get(clean_from..).unwrap_or_default());
        self.write_indicator(b"\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn push_escape(&mut self, c: char) {
        let short = match c {
            '\0' => Some(b'0'),
            '\u{7}' => Some(b'a'),
            '\u{8}' => Some(b'b'),
            '\t' => Some(b't'),
            '\n' => Some(b'n'),
            '\u{b}' => Some(b'v'),
            '\u{c}' => Some(b'f'),
            '\r' => Some(b'r'),
            '\u{1b}' => Some(b'e'),
            '"' => Some(b'"'),
            '\\' => Some(b'\\'),
            '\u{85}' => Some(b'N'),
            '\u{a0}' => Some(b'_'),
            '\u{2028}' => Some(b'L'),
            '\u{2029}' => Some(b'P'),
            _ => None,
        };
        self.out.push(b'\\');
        if let Some(letter) = short {
            self.out.push(letter);
            return;
        }
        let value = u32::from(c);
        let (letter, digits) = match value {
            0..=0xFF => (b'x', 2),
            0x100..=0xFFFF => (b'u', 4),
            _ => (b'U', 8),
        };
        self.out.push(letter);
        for shift in (0..digits).rev() {
            let digit = (value >> (shift * 4)) & 0xF;
            self.out.push(b"0123456789ABCDEF"[digit as usize]);
        }
    }

    /// `yaml_emitter_write_literal_scalar`, with `yaml_emitter_write_block_scalar_hints`.
    fn write_literal(&mut self, s: &str) {
        self.write_indicator(b"|", true, false, false);
        if s.chars().next().is_some_and(|c| c == ' ' || is_break(c)) {
            self.write_indicator(&[b'0' + BEST_INDENT as u8], false, false, false);
        }
        let mut from_end = s.chars().rev();
        let chomp: Option<&[u8]> = match (from_end.next(), from_end.next()) {
            (None, _) => Some(b"-"),
            (Some(last), _) if !is_break(last) => Some(b"-"),
            (Some(_), None) => Some(b"+"),
            (Some(_), Some(before)) if is_break(before) => Some(b"+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in s.chars() {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.push_char(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// `yaml_emitter_select_scalar_style` in block context.
fn select_style(requested: Requested, analysis: &Analysis, empty: bool, simple_key: bool) -> Style {
    let mut style = match requested {
        Requested::Any => Style::Plain,
        Requested::SingleQuoted => Style::SingleQuoted,
        Requested::Literal => Style::Literal,
    };
    if simple_key && analysis.multiline {
        style = Style::DoubleQuoted;
    }
    if style == Style::Plain && (!analysis.block_plain_allowed || (empty && simple_key)) {
        style = Style::SingleQuoted;
    }
    if style == Style::SingleQuoted && !analysis.single_quoted_allowed {
        style = Style::DoubleQuoted;
    }
    if style == Style::Literal && (!analysis.block_allowed || simple_key) {
        style = Style::DoubleQuoted;
    }
    style
}

/// `yaml_emitter_analyze_scalar`: the quick pass, else the full one.
fn analyze(s: &str) -> Analysis {
    analyze_plain_ascii(s.as_bytes()).unwrap_or_else(|| analyze_fully(s.as_bytes()))
}

/// How the quick pass treats an ASCII byte after the first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    /// Changes nothing libyaml looks at.
    Ordinary,
    Space,
    Colon,
    Hash,
    /// Anything else: a control character, DEL, or a byte of a non-ASCII character.
    Other,
}

const BYTE_CLASSES: [ByteClass; 256] = {
    let mut classes = [ByteClass::Other; 256];
    let mut byte = 0x21;
    while byte < 0x7F {
        classes[byte] = ByteClass::Ordinary;
        byte += 1;
    }
    classes[b' ' as usize] = ByteClass::Space;
    classes[b':' as usize] = ByteClass::Colon;
    classes[b'#' as usize] = ByteClass::Hash;
    classes
};

/// The analysis of a string of printable ASCII without line breaks that starts with no
/// indicator or space (most strings in a manifest), in one pass over a byte table; `None` for
/// any other string.
fn analyze_plain_ascii(b: &[u8]) -> Option<Analysis> {
    let (&first, rest) = b.split_first()?;
    if BYTE_CLASSES[usize::from(first)] != ByteClass::Ordinary
        || matches!(
            first,
            b',' | b'['
                | b']'
                | b'{'
                | b'}'
                | b'&'
                | b'*'
                | b'!'
                | b'|'
                | b'>'
                | b'\''
                | b'"'
                | b'%'
                | b'@'
                | b'`'
                | b'?'
                | b'-'
        )
    {
        return None;
    }
    let mut block_indicators = b.starts_with(b"...");
    let mut previous = first;
    for (at, &byte) in rest.iter().enumerate() {
        match BYTE_CLASSES[usize::from(byte)] {
            ByteClass::Ordinary => {}
            ByteClass::Space => {
                // A trailing space rules out plain and literal both.
                if at + 1 == rest.len() {
                    return None;
                }
            }
            ByteClass::Colon => {
                block_indicators |= matches!(rest.get(at + 1), None | Some(b' '));
            }
            ByteClass::Hash => block_indicators |= previous == b' ',
            ByteClass::Other => return None,
        }
        previous = byte;
    }
    Some(Analysis {
        multiline: false,
        has_newline: false,
        block_plain_allowed: !block_indicators,
        single_quoted_allowed: true,
        block_allowed: true,
    })
}

/// `yaml_emitter_analyze_scalar`, over UTF-8 bytes.
fn analyze_fully(b: &[u8]) -> Analysis {
    if b.is_empty() {
        return Analysis {
            multiline: false,
            has_newline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = b.starts_with(b"---") || b.starts_with(b"...");
    let mut line_breaks = false;
    let mut has_newline = false;
    let mut special_characters = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut previous_space = false;
    let mut previous_break = false;
    let mut preceded_by_whitespace = true;

    let mut at = 0;
    while let Some(&byte) = b.get(at) {
        let width = utf8_width(byte);
        let next = at + width;
        let followed_by_whitespace = is_blankz_at(b, next);
        if at == 0 {
            match byte {
                b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>'
                | b'\'' | b'"' | b'%' | b'@' | b'`' => block_indicators = true,
                b'?' | b':' | b'-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else if (byte == b':' && followed_by_whitespace)
            || (byte == b'#' && preceded_by_whitespace)
        {
            block_indicators = true;
        }
        if !is_printable_at(b, at) {
            special_characters = true;
        }
        let is_break = is_break_at(b, at);
        if byte == b' ' {
            leading_space |= at == 0;
            trailing_space |= next == b.len();
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break {
            line_breaks = true;
            has_newline |= byte == b'\n';
            leading_break |= at == 0;
            trailing_break |= next == b.len();
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blankz_at(b, at);
        // A byte that starts no character (impossible in a `&str`) would stall libyaml; step on.
        at = next.max(at + 1);
    }

    let mut block_plain_allowed = true;
    let mut single_quoted_allowed = true;
    let mut block_allowed = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        block_plain_allowed = false;
    }
    if trailing_space {
        block_allowed = false;
    }
    if break_space {
        block_plain_allowed = false;
        single_quoted_allowed = false;
    }
    if space_break || special_characters {
        block_plain_allowed = false;
        single_quoted_allowed = false;
        block_allowed = false;
    }
    if line_breaks || block_indicators {
        block_plain_allowed = false;
    }
    Analysis {
        multiline: line_breaks,
        has_newline,
        block_plain_allowed,
        single_quoted_allowed,
        block_allowed,
    }
}

fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

/// `WIDTH`: the length of the character a lead byte starts (0 for a continuation byte).
fn utf8_width(byte: u8) -> usize {
    if byte & 0x80 == 0 {
        1
    } else if byte & 0xE0 == 0xC0 {
        2
    } else if byte & 0xF0 == 0xE0 {
        3
    } else if byte & 0xF8 == 0xF0 {
        4
    } else {
        0
    }
}

/// `IS_BREAK_AT`: `\r`, `\n`, U+85, U+2028 or U+2029.
fn is_break_at(b: &[u8], at: usize) -> bool {
    match b.get(at) {
        Some(b'\r' | b'\n') => true,
        Some(0xC2) => b.get(at + 1) == Some(&0x85),
        Some(0xE2) => b.get(at + 1) == Some(&0x80) && matches!(b.get(at + 2), Some(0xA8 | 0xA9)),
        _ => false,
    }
}

/// `IS_BLANKZ_AT`: a space, tab, line break, NUL, or the end (libyaml's copy of the value ends
/// with a NUL).
fn is_blankz_at(b: &[u8], at: usize) -> bool {
    match b.get(at) {
        None | Some(b' ' | b'\t' | 0) => true,
        Some(_) => is_break_at(b, at),
    }
}

/// `IS_PRINTABLE`: what libyaml writes as it is. Not tab, not `\r`, not U+85, not U+FEFF.
fn is_printable_at(b: &[u8], at: usize) -> bool {
    match b.get(at) {
        Some(0x0A | 0x20..=0x7E | 0xC3..=0xEC | 0xEE | 0xF0..=0xF4) => true,
        Some(0xC2) => matches!(b.get(at + 1), Some(0xA0..=0xBF)),
        Some(0xED) => matches!(b.get(at + 1), Some(0x00..=0x9F)),
        Some(0xEF) => match b.get(at + 1) {
            Some(0xBB) => b.get(at + 2) != Some(&0xBF),
            Some(0xBF) => !matches!(b.get(at + 2), Some(0xBE | 0xBF)),
            _ => true,
        },
        _ => false,
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && c != '\u{FEFF}'
}

/// Whether a double-quoted scalar writes `c` as an escape.
fn needs_escape(c: char) -> bool {
    !is_printable(c) || is_break(c) || c == '"' || c == '\\'
}

// ---------------------------------------------------------------------------------------------
// serde_yaml's choice of quotes: a string that a plain scalar would read back as null, a
// boolean or a number is single-quoted (`serialize_str` runs its deserializer's
// `visit_untagged_scalar` on it). A port of serde_yaml 0.9.34's `de.rs` parsing functions.
// ---------------------------------------------------------------------------------------------

/// Whether serde_yaml would read `s`, written plain, as anything but this string.
fn reads_as_non_string(s: &str) -> bool {
    // Null, booleans and numbers all start with one of these. A number never starts with a
    // letter: Rust's float parsing takes `inf` and `nan`, but serde_yaml turns them down as not
    // finite.
    match s.as_bytes().first() {
        None => return true,
        Some(b'+' | b'-' | b'.' | b'0'..=b'9') => {}
        Some(b'~' | b'n' | b'N') => return matches!(s, "null" | "Null" | "NULL" | "~"),
        Some(b't' | b'T' | b'f' | b'F') => {
            return matches!(s, "true" | "True" | "TRUE" | "false" | "False" | "FALSE")
        }
        Some(_) => return false,
    }
    // What a number may hold: digits, signs, a point, an exponent, a radix prefix, hex digits,
    // and the letters of `.inf` and `.nan`.
    if !s.bytes().all(|b| {
        b.is_ascii_hexdigit()
            || matches!(
                b,
                b'+' | b'-' | b'.' | b'x' | b'o' | b'i' | b'I' | b'n' | b'N'
            )
    }) {
        return false;
    }
    if parse_unsigned_int(s, u64::from_str_radix).is_some()
        || parse_negative_int(s, i64::from_str_radix).is_some()
        || parse_unsigned_int(s, u128::from_str_radix).is_some()
        || parse_negative_int(s, i128::from_str_radix).is_some()
    {
        return true;
    }
    if digits_but_not_number(s) {
        return true;
    }
    parse_f64(s).is_some()
}

type FromStrRadix<T> = fn(&str, u32) -> Result<T, std::num::ParseIntError>;

fn parse_unsigned_int<T>(scalar: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    let unpositive = scalar.strip_prefix('+').unwrap_or(scalar);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(int) = from_str_radix(rest, radix) {
                return Some(int);
            }
        }
    }
    if unpositive.starts_with(['+', '-']) {
        return None;
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

fn parse_negative_int<T>(scalar: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = scalar.strip_prefix(prefix) {
            let negative = format!("-{rest}");
            if let Ok(int) = from_str_radix(&negative, radix) {
                return Some(int);
            }
        }
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(scalar, 10).ok()
}

fn parse_f64(scalar: &str) -> Option<f64> {
    let unpositive = if let Some(unpositive) = scalar.strip_prefix('+') {
        if unpositive.starts_with(['+', '-']) {
            return None;
        }
        unpositive
    } else {
        scalar
    };
    if let ".inf" | ".Inf" | ".INF" = unpositive {
        return Some(f64::INFINITY);
    }
    if let "-.inf" | "-.Inf" | "-.INF" = scalar {
        return Some(f64::NEG_INFINITY);
    }
    if let ".nan" | ".NaN" | ".NAN" = scalar {
        return Some(f64::NAN);
    }
    unpositive.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Leading zeros then digits: a string in YAML 1.2, which serde_yaml quotes all the same.
fn digits_but_not_number(scalar: &str) -> bool {
    let scalar = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
    scalar.len() > 1
        && scalar.starts_with('0')
        && scalar.bytes().skip(1).all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// Numbers, as itoa and ryu (`format_finite`) write them for serde_yaml.
// ---------------------------------------------------------------------------------------------

/// `magnitude` in decimal, after a `-` if `negative`.
fn format_u64(mut magnitude: u64, negative: bool, buffer: &mut [u8; 20]) -> &[u8] {
    // 20 digits for u64::MAX; i64::MIN has 19 and a sign.
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if negative {
        start -= 1;
        buffer[start] = b'-';
    }
    &buffer[start..]
}

/// A fixed buffer for a float's text; ryu's longest is 24 bytes.
struct FloatBuffer {
    bytes: [u8; 40],
    len: usize,
}

impl FloatBuffer {
    fn new() -> Self {
        FloatBuffer {
            bytes: [0; 40],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.push(byte);
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl std::fmt::Write for FloatBuffer {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.extend(s.as_bytes());
        Ok(())
    }
}

/// A finite float as `ryu::Buffer::format_finite` writes it: the shortest digits that read
/// back as `value` (which Rust's `{:e}` gives too), laid out as ryu lays them out: `1.0`,
/// `0.001`, `1e-7`, `1.5e300`, `1e16`.
fn format_f64(value: f64, buffer: &mut FloatBuffer) -> &[u8] {
    if !value.is_finite() {
        // Never reached: a Node's float is finite. As serde_yaml would write them.
        buffer.extend(if value.is_nan() {
            b".nan"
        } else if value > 0.0 {
            b".inf"
        } else {
            b"-.inf"
        });
        return buffer.as_slice();
    }
    if value.is_sign_negative() {
        buffer.push(b'-');
    }
    if value == 0.0 {
        buffer.extend(b"0.0");
        return buffer.as_slice();
    }
    let mut scientific = FloatBuffer::new();
    // Cannot fail: FloatBuffer's writes do not.
    let _ = std::fmt::Write::write_fmt(&mut scientific, format_args!("{:e}", value.abs()));
    let text = scientific.as_slice();
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'e') {
        Some(e) => (
            text.get(..e).unwrap_or_default(),
            text.get(e + 1..).unwrap_or_default(),
        ),
        None => (text, &b"0"[..]),
    };
    let mut digits = [0u8; 17];
    let mut length = 0usize;
    for &b in mantissa.iter().filter(|b| b.is_ascii_digit()) {
        if let Some(slot) = digits.get_mut(length) {
            *slot = b;
            length += 1;
        }
    }
    let exponent: isize = std::str::from_utf8(exponent)
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let shortest = digits.get(..length).unwrap_or_default();
    if let Some(even) = even_tie_digits(value.abs(), shortest, exponent) {
        digits = even;
    }
    let digits = digits.get(..length).unwrap_or_default();
    let length = length as isize;
    // value = digits × 10^k, and 10^(kk-1) <= value < 10^kk.
    let kk = exponent + 1;
    let k = kk - length;
    if 0 <= k && kk <= 16 {
        buffer.extend(digits);
        for _ in length..kk {
            buffer.push(b'0');
        }
        buffer.extend(b".0");
    } else if 0 < kk && kk <= 16 {
        let whole = kk as usize;
        buffer.extend(digits.get(..whole).unwrap_or_default());
        buffer.push(b'.');
        buffer.extend(digits.get(whole..).unwrap_or_default());
    } else if -5 < kk && kk <= 0 {
        buffer.extend(b"0.");
        for _ in kk..0 {
            buffer.push(b'0');
        }
        buffer.extend(digits);
    } else {
        let (first, rest) = (
            digits.get(..1).unwrap_or_default(),
            digits.get(1..).unwrap_or_default(),
        );
        buffer.extend(first);
        if !rest.is_empty() {
            buffer.push(b'.');
            buffer.extend(rest);
        }
        buffer.push(b'e');
        let mut exponent_buffer = [0u8; 20];
        let e = kk - 1;
        buffer.extend(format_u64(
            e.unsigned_abs() as u64,
            e < 0,
            &mut exponent_buffer,
        ));
    }
    buffer.as_slice()
}

/// Rust's shortest digits round a tie up, ryu rounds it to even: when `value` lies exactly
/// halfway between two shortest candidates and `digits` (Rust's) is the odd one, the even one,
/// if it reads back as `value`. `exponent` is the scientific one: `d.ddd × 10^exponent`.
fn even_tie_digits(value: f64, digits: &[u8], exponent: isize) -> Option<[u8; 17]> {
    let ours = digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    if ours % 2 == 0 {
        return None;
    }
    let exact = exact_significand(value)?;
    // A tie: the exact value has one digit more than the shortest, a 5.
    if exact % 10 != 5 || decimal_len(exact) != digits.len() + 1 {
        return None;
    }
    let below = u64::try_from(exact / 10).ok()?;
    let even = if below % 2 == 0 { below } else { below + 1 };
    if even == ours || decimal_len(u128::from(even)) != digits.len() {
        return None;
    }
    let mut candidate = [b'0'; 17];
    let mut n = even;
    for slot in candidate.get_mut(..digits.len())?.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // Both candidates are the same distance from `value`; ryu takes the even one only if it
    // is inside the interval that reads back as `value`.
    let mut text = FloatBuffer::new();
    let last_digit_exponent = exponent + 1 - isize::try_from(digits.len()).ok()?;
    let _ = std::fmt::Write::write_fmt(
        &mut text,
        format_args!(
            "{}e{last_digit_exponent}",
            std::str::from_utf8(candidate.get(..digits.len())?).ok()?,
        ),
    );
    let reads_back = std::str::from_utf8(text.as_slice())
        .ok()?
        .parse::<f64>()
        .ok()?
        == value;
    reads_back.then_some(candidate)
}

/// The significant decimal digits of `value`'s exact value (trailing zeros dropped), if there
/// are few enough for a u128: a finite f64 is m × 2^e, exactly m × 5^-e × 10^e when e < 0.
fn exact_significand(value: f64) -> Option<u128> {
    let bits = value.to_bits();
    let biased = ((bits >> 52) & 0x7FF) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    let (mut mantissa, mut exponent) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), biased - 1075)
    };
    if mantissa == 0 {
        return None;
    }
    let zeros = mantissa.trailing_zeros();
    mantissa >>= zeros;
    exponent += zeros as i32;
    let mut exact = if exponent >= 0 {
        // 2^e must divide 10^(k-1) for a tie, and m < 2^53 holds 5^k: e stays small.
        if exponent > 60 {
            return None;
        }
        u128::from(mantissa) << exponent
    } else {
        // 5^33 × m has more digits than any shortest float plus one.
        let power = u32::try_from(-exponent).ok()?;
        if power > 32 {
            return None;
        }
        u128::from(mantissa).checked_mul(5u128.checked_pow(power)?)?
    };
    while exact != 0 && exact % 10 == 0 {
        exact /= 10;
    }
    Some(exact)
}

fn decimal_len(mut n: u128) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
