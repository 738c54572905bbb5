//! The packed form of a JSON document: a binary encoding a policy module reads in place, without
//! parsing it or allocating. Parsing the host's JSON into `serde_json::Value` cost a module
//! nearly all its time, while a rule reads only a few fields. [`Node`] is a zero-copy view of
//! the packed bytes: a key lookup skips the values it does not want without looking inside them.
//!
//! # Wire format
//!
//! All integers are little-endian. There is no alignment, padding or header: a document is one
//! node, and its bytes end where that node ends. A node is a tag byte followed by its payload:
//!
//! | tag    | name     | payload                                                              |
//! |--------|----------|----------------------------------------------------------------------|
//! | `0x00` | null     | none                                                                 |
//! | `0x01` | false    | none                                                                 |
//! | `0x02` | true     | none                                                                 |
//! | `0x03` | i64      | 8 bytes, two's complement                                            |
//! | `0x04` | u64      | 8 bytes                                                              |
//! | `0x05` | f64      | 8 bytes, IEEE 754 binary64, finite                                   |
//! | `0x06` | string   | `u32` byte length, then that many bytes of UTF-8                     |
//! | `0x07` | array    | `u32` element count, `u32` byte length of the elements, the elements |
//! | `0x08` | object   | `u32` entry count, `u32` byte length of the entries, the entries     |
//!
//! An array's elements are nodes, one after another. An object's entry is a key (`u32` byte
//! length, then that many bytes of UTF-8) followed by its value, a node. A container's byte
//! length counts everything after the length field itself: the whole of its elements or entries.
//! Its count must be the number of those; a reader stops at whichever of the two runs out first.
//!
//! A number is an i64 whenever serde_json's `Number::as_i64` gives one, a u64 when only
//! `as_u64` does (values above `i64::MAX`), and an f64 otherwise. An f64 payload that is NaN or
//! infinite is malformed (a JSON number cannot be either).
//!
//! Object entries keep the order the encoder got them in (the iteration order of
//! `serde_json::Map`); readers must not assume the keys are sorted. A key may in principle
//! repeat (a document composed from parts could do it, [`encode`] never does): lookups return
//! the first entry with the key, and [`Node::to_value`] and `Serialize` keep only that one.
//!
//! The byte lengths make every node skippable in O(1) (a string is 5 bytes plus its length, a
//! container 9 plus its byte length, a scalar 1 or 9), so finding a key costs one step per entry
//! before it, whatever those entries hold.
//!
//! # Malformed bytes
//!
//! Every read is bounds-checked. [`Node::root`] checks only that the root node fits its bytes
//! exactly; damage deeper down shows as `None` from the accessors, as [`Kind::Invalid`], and as
//! the end of an iteration (an array or object iterates up to the first element or entry that
//! does not fit). [`Node::to_value`] and `Serialize` turn malformed parts into null, and
//! containers nested more than 256 deep too, so that hostile bytes cannot exhaust the stack
//! (serde_json's parser already refuses documents nested deeper than 128).

use alloc::vec::Vec;
use core::fmt;
use core::iter::FusedIterator;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Number, Value};

/// Tag of `null`.
pub const NULL: u8 = 0x00;
/// Tag of `false`.
pub const FALSE: u8 = 0x01;
/// Tag of `true`.
pub const TRUE: u8 = 0x02;
/// Tag of an integer that fits an `i64`.
pub const I64: u8 = 0x03;
/// Tag of an integer above `i64::MAX`.
pub const U64: u8 = 0x04;
/// Tag of any other number.
pub const F64: u8 = 0x05;
/// Tag of a string.
pub const STRING: u8 = 0x06;
/// Tag of an array.
pub const ARRAY: u8 = 0x07;
/// Tag of an object.
pub const OBJECT: u8 = 0x08;

/// How many containers deep `to_value` and `Serialize` go before writing null: deep enough for
/// any document serde_json parses, shallow enough for a guest's stack.
const MAX_DEPTH: usize = 256;

/// The smallest object entry: a 4-byte key length, an empty key, a 1-byte value.
const MIN_ENTRY: usize = 5;

/// Why a document could not be packed or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackError {
    /// A string, key, array or object is longer than a `u32` length or count can say.
    TooLarge,
    /// The bytes are not one packed node that ends where they end (or, from [`end`], the buffer
    /// is shorter than when the [`Mark`] was made).
    Malformed,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PackError::TooLarge => "a string, array or object is too large to pack (over u32::MAX)",
            PackError::Malformed => "the bytes are not a packed JSON document",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PackError {}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Where a container's byte-length field is, for [`end`] to fill in once its contents are
/// written.
#[derive(Debug)]
#[must_use = "pass the mark to `end` once the container's contents are written"]
pub struct Mark(usize);

/// Appends the packed form of `value` to `out`. On error `out` is left as it was.
pub fn encode(value: &Value, out: &mut Vec<u8>) -> Result<(), PackError> {
    let start = out.len();
    let result = encode_into(value, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_into(value: &Value, out: &mut Vec<u8>) -> Result<(), PackError> {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(number) => encode_number(number, out),
        Value::String(string) => {
            out.push(STRING);
            write_bytes(out, string.as_bytes())?;
        }
        Value::Array(elements) => {
            let mark = begin_array(out, count(elements.len())?);
            for element in elements {
                encode_into(element, out)?;
            }
            end(out, mark)?;
        }
        Value::Object(map) => {
            let mark = begin_object(out, count(map.len())?);
            for (key, value) in map {
                write_key(out, key)?;
                encode_into(value, out)?;
            }
            end(out, mark)?;
        }
    }
    Ok(())
}

fn encode_number(number: &Number, out: &mut Vec<u8>) {
    if let Some(n) = number.as_i64() {
        out.push(I64);
        out.extend_from_slice(&n.to_le_bytes());
    } else if let Some(n) = number.as_u64() {
        out.push(U64);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        // Always Some without serde_json's `arbitrary_precision`; NaN reads back as null.
        let n = number.as_f64().unwrap_or(f64::NAN);
        out.push(F64);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

fn count(len: usize) -> Result<u32, PackError> {
    u32::try_from(len).map_err(|_| PackError::TooLarge)
}

/// A `u32` length, then the bytes: a string's payload or an object key.
fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), PackError> {
    out.extend_from_slice(&count(bytes.len())?.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Starts an object of `entries` entries: write each with [`write_key`] and its value (packed
/// bytes, from [`encode`] or another begin/end), then call [`end`]. Lets the host pack each
/// Kubernetes object once and compose a different document for each policy from the parts.
pub fn begin_object(out: &mut Vec<u8>, entries: u32) -> Mark {
    begin(out, OBJECT, entries)
}

/// Starts an array of `elements` elements (packed nodes); [`end`] finishes it.
pub fn begin_array(out: &mut Vec<u8>, elements: u32) -> Mark {
    begin(out, ARRAY, elements)
}

fn begin(out: &mut Vec<u8>, tag: u8, count: u32) -> Mark {
    out.push(tag);
    out.extend_from_slice(&count.to_le_bytes());
    let mark = Mark(out.len());
    out.extend_from_slice(&[0; 4]);
    mark
}

/// Writes an object entry's key; its value must follow.
pub fn write_key(out: &mut Vec<u8>, key: &str) -> Result<(), PackError> {
    write_bytes(out, key.as_bytes())
}

/// Finishes the container `mark` belongs to: its byte length becomes everything written to
/// `out` after the length field. The count given to `begin_*` is not checked against what was
/// written; a wrong one makes a malformed document.
#[allow(clippy::ptr_arg)] // The same buffer as `begin_*`'s: a slice would do, but reads oddly.
pub fn end(out: &mut Vec<u8>, mark: Mark) -> Result<(), PackError> {
    end_before(out, mark, 0)
}

/// [`end`] for a container whose last `elsewhere` bytes are not in `out` but will follow it
/// wherever `out` is copied to (see [`input_frame`]).
fn end_before(out: &mut [u8], mark: Mark, elsewhere: usize) -> Result<(), PackError> {
    let start = mark.0.checked_add(4).ok_or(PackError::Malformed)?;
    let len = out.len().checked_sub(start).ok_or(PackError::Malformed)?;
    let len = count(len.checked_add(elsewhere).ok_or(PackError::TooLarge)?)?;
    out.get_mut(mark.0..start)
        .ok_or(PackError::Malformed)?
        .copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// A packed [`Input`](crate::Input) (what `kr_evaluate` receives from ABI 2 on): `abi`, the
/// objects, each already packed (the host packs every object of a bundle once and sends each
/// module those of the kinds it reads), and the module's settings.
pub fn input(abi: i32, objects: &[&[u8]], settings: &Value) -> Result<Vec<u8>, PackError> {
    let (head, tail) = input_frame(abi, objects, settings)?;
    Ok([&[head.as_slice()], objects, &[tail.as_slice()]]
        .concat()
        .concat())
}

/// The packed [`Input`](crate::Input) around its objects: the input is `head`, then the objects
/// one after another, then `tail`. The host writes the parts straight into a module's memory:
/// at 10,000 objects, composing the whole input in a buffer first cost as much as a module's work.
pub fn input_frame(
    abi: i32,
    objects: &[&[u8]],
    settings: &Value,
) -> Result<(Vec<u8>, Vec<u8>), PackError> {
    let objects_len = objects
        .iter()
        .try_fold(0usize, |sum, o| sum.checked_add(o.len()))
        .ok_or(PackError::TooLarge)?;
    let mut tail = Vec::new();
    write_key(&mut tail, "settings")?;
    encode(settings, &mut tail)?;
    let mut head = Vec::with_capacity(64);
    let root = begin_object(&mut head, 3);
    write_key(&mut head, "abi")?;
    encode(&Value::from(abi), &mut head)?;
    write_key(&mut head, "objects")?;
    let array = begin_array(&mut head, count(objects.len())?);
    end_before(&mut head, array, objects_len)?;
    let after_head = objects_len
        .checked_add(tail.len())
        .ok_or(PackError::TooLarge)?;
    end_before(&mut head, root, after_head)?;
    Ok((head, tail))
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// A `u32` at `at`, as a length.
fn read_len(bytes: &[u8], at: usize) -> Option<usize> {
    usize::try_from(read_u32(bytes, at)?).ok()
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(*bytes.get(at..)?.first_chunk()?))
}

/// The size of the node at the start of `bytes`, if it is one and fits in them.
fn extent(bytes: &[u8]) -> Option<usize> {
    let len = match *bytes.first()? {
        NULL | FALSE | TRUE => 1,
        I64 | U64 | F64 => 9,
        STRING => read_len(bytes, 1)?.checked_add(5)?,
        ARRAY | OBJECT => read_len(bytes, 5)?.checked_add(9)?,
        _ => return None,
    };
    (len <= bytes.len()).then_some(len)
}

/// How many items a container may hold: what its header says, but no more than its bytes can,
/// so that damaged counts never make anyone reserve gigabytes.
fn capped(count: u32, bytes: usize, min_size: usize) -> usize {
    usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min(bytes / min_size)
}

/// What a [`Node`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
    /// An unknown tag, a node that runs past its container, or a non-finite f64.
    Invalid,
}

/// A zero-copy view of one packed JSON value. `Copy` (a slice), so the accessors take it by
/// value: `nodes.filter_map(Node::as_str)` reads as it would over `&serde_json::Value`s.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    /// Starts at the node's tag. Exactly the node for every node a reader hands out.
    bytes: &'a [u8],
}

impl<'a> Node<'a> {
    /// The document in `bytes`. Checks only that its root node fits them and ends exactly where
    /// they end; damage deeper down shows as `None` from the accessors.
    pub fn root(bytes: &'a [u8]) -> Result<Node<'a>, PackError> {
        match extent(bytes) {
            Some(len) if len == bytes.len() => Ok(Node { bytes }),
            _ => Err(PackError::Malformed),
        }
    }

    pub fn kind(self) -> Kind {
        if extent(self.bytes).is_none() {
            return Kind::Invalid;
        }
        match self.tag() {
            Some(NULL) => Kind::Null,
            Some(FALSE | TRUE) => Kind::Bool,
            Some(I64 | U64) => Kind::Number,
            Some(F64) if self.float().is_some() => Kind::Number,
            Some(STRING) => Kind::String,
            Some(ARRAY) => Kind::Array,
            Some(OBJECT) => Kind::Object,
            _ => Kind::Invalid,
        }
    }

    pub fn is_null(self) -> bool {
        self.kind() == Kind::Null
    }

    pub fn is_object(self) -> bool {
        self.kind() == Kind::Object
    }

    pub fn is_array(self) -> bool {
        self.kind() == Kind::Array
    }

    pub fn is_string(self) -> bool {
        self.kind() == Kind::String
    }

    pub fn is_number(self) -> bool {
        self.kind() == Kind::Number
    }

    pub fn as_bool(self) -> Option<bool> {
        match self.tag()? {
            FALSE => Some(false),
            TRUE => Some(true),
            _ => None,
        }
    }

    /// As `serde_json::Value::as_i64`: any integer that fits, never a float.
    pub fn as_i64(self) -> Option<i64> {
        match self.tag()? {
            I64 => Some(i64::from_le_bytes(self.payload8()?)),
            U64 => i64::try_from(u64::from_le_bytes(self.payload8()?)).ok(),
            _ => None,
        }
    }

    /// As `serde_json::Value::as_u64`: any non-negative integer, never a float.
    pub fn as_u64(self) -> Option<u64> {
        match self.tag()? {
            I64 => u64::try_from(i64::from_le_bytes(self.payload8()?)).ok(),
            U64 => Some(u64::from_le_bytes(self.payload8()?)),
            _ => None,
        }
    }

    /// As `serde_json::Value::as_f64`: any number, integers converted.
    pub fn as_f64(self) -> Option<f64> {
        match self.tag()? {
            I64 => Some(i64::from_le_bytes(self.payload8()?) as f64),
            U64 => Some(u64::from_le_bytes(self.payload8()?) as f64),
            F64 => self.float(),
            _ => None,
        }
    }

    /// The string, borrowed from the packed bytes; `None` if this is no string or not UTF-8.
    pub fn as_str(self) -> Option<&'a str> {
        if self.tag()? != STRING {
            return None;
        }
        let len = read_len(self.bytes, 1)?;
        let text = self.bytes.get(5..len.checked_add(5)?)?;
        core::str::from_utf8(text).ok()
    }

    pub fn as_array(self) -> Option<Array<'a>> {
        let (count, body) = self.container(ARRAY)?;
        Some(Array { count, body })
    }

    pub fn as_object(self) -> Option<Object<'a>> {
        let (count, body) = self.container(OBJECT)?;
        Some(Object { count, body })
    }

    /// The object member `key` (the first, should it repeat); `None` for anything else.
    pub fn get(self, key: &str) -> Option<Node<'a>> {
        self.as_object()?.get(key)
    }

    /// The node a JSON Pointer (RFC 6901) names, exactly as `serde_json::Value::pointer`
    /// finds it: `""` is this node, any other pointer starts with `/`; `~1` stands for `/`
    /// and `~0` for `~`; an array index is decimal digits without a sign or leading zeros.
    pub fn pointer(self, pointer: &str) -> Option<Node<'a>> {
        if pointer.is_empty() {
            return Some(self);
        }
        pointer
            .strip_prefix('/')?
            .split('/')
            .try_fold(self, |node, token| node.step(token))
    }

    /// An owned copy, for the few places that need one. Malformed parts become null.
    pub fn to_value(self) -> Value {
        self.value_at(0)
    }

    /// The node's packed bytes, tag included: to copy it into another document as it is.
    pub fn as_bytes(self) -> &'a [u8] {
        self.bytes
    }

    /// This node's size in bytes, tag included; `None` if it is malformed there.
    pub fn byte_len(self) -> Option<usize> {
        extent(self.bytes)
    }

    fn tag(&self) -> Option<u8> {
        self.bytes.first().copied()
    }

    fn payload8(&self) -> Option<[u8; 8]> {
        self.bytes.get(1..)?.first_chunk().copied()
    }

    fn float(&self) -> Option<f64> {
        if self.tag()? != F64 {
            return None;
        }
        let n = f64::from_le_bytes(self.payload8()?);
        n.is_finite().then_some(n)
    }

    /// The count and the body of a container tagged `tag`.
    fn container(&self, tag: u8) -> Option<(u32, &'a [u8])> {
        if self.tag()? != tag {
            return None;
        }
        let end = extent(self.bytes)?;
        Some((read_u32(self.bytes, 1)?, self.bytes.get(9..end)?))
    }

    /// One step of a JSON Pointer: `token` is still escaped.
    fn step(&self, token: &str) -> Option<Node<'a>> {
        match self.tag()? {
            OBJECT => self.as_object()?.find(|key| token_names(token, key)),
            ARRAY => self.as_array()?.get(parse_index(token)?),
            _ => None,
        }
    }

    fn number(&self) -> Option<Number> {
        match self.tag()? {
            I64 => Some(i64::from_le_bytes(self.payload8()?).into()),
            U64 => Some(u64::from_le_bytes(self.payload8()?).into()),
            F64 => Number::from_f64(self.float()?),
            _ => None,
        }
    }

    fn value_at(&self, depth: usize) -> Value {
        match self.kind() {
            Kind::Bool => self.as_bool().map_or(Value::Null, Value::Bool),
            Kind::Number => self.number().map_or(Value::Null, Value::Number),
            Kind::String => self
                .as_str()
                .map_or(Value::Null, |s| Value::String(s.into())),
            Kind::Array => self
                .as_array()
                .map_or(Value::Null, |array| array.value_at(depth)),
            Kind::Object => self
                .as_object()
                .map_or(Value::Null, |object| object.value_at(depth)),
            Kind::Null | Kind::Invalid => Value::Null,
        }
    }
}

/// Whether the escaped pointer token `token` names `key`: `~1` is `/`, `~0` is `~`, and any
/// other `~` is itself (what serde_json's `replace("~1", "/").replace("~0", "~")` amounts to).
fn token_names(token: &str, key: &[u8]) -> bool {
    let token = token.as_bytes();
    if !token.contains(&b'~') {
        return token == key;
    }
    let (mut t, mut k) = (0, 0);
    while let Some(&byte) = token.get(t) {
        let (unescaped, width) = match (byte, token.get(t + 1)) {
            (b'~', Some(b'1')) => (b'/', 2),
            (b'~', Some(b'0')) => (b'~', 2),
            _ => (byte, 1),
        };
        t += width;
        if key.get(k) != Some(&unescaped) {
            return false;
        }
        k += 1;
    }
    k == key.len()
}

/// An array index as serde_json reads one: no `+`, no leading zero but in `0` itself. An
/// escaped token cannot be one, so it needs no unescaping.
fn parse_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// A packed array.
#[derive(Clone, Copy)]
pub struct Array<'a> {
    count: u32,
    /// Exactly the elements.
    body: &'a [u8],
}

/// An empty array, for a field that is absent (`array_at(object, "/spec/x")` in the SDK).
impl Default for Array<'_> {
    fn default() -> Self {
        Array {
            count: 0,
            body: &[],
        }
    }
}

impl<'a> Array<'a> {
    /// The element count its header gives (no more than its bytes could hold).
    pub fn len(&self) -> usize {
        capped(self.count, self.body.len(), 1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index`, reached by skipping those before it.
    pub fn get(&self, index: usize) -> Option<Node<'a>> {
        self.iter().nth(index)
    }

    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            rest: self.body,
            remaining: self.count,
        }
    }

    fn value_at(&self, depth: usize) -> Value {
        if depth >= MAX_DEPTH {
            return Value::Null;
        }
        Value::Array(self.iter().map(|n| n.value_at(depth + 1)).collect())
    }
}

impl<'a> IntoIterator for Array<'a> {
    type Item = Node<'a>;
    type IntoIter = ArrayIter<'a>;
    fn into_iter(self) -> ArrayIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Array<'a> {
    type Item = Node<'a>;
    type IntoIter = ArrayIter<'a>;
    fn into_iter(self) -> ArrayIter<'a> {
        self.iter()
    }
}

/// The elements of an [`Array`]; ends early at the first that does not fit.
#[derive(Clone)]
pub struct ArrayIter<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        if self.remaining == 0 {
            return None;
        }
        let split =
            extent(self.rest).and_then(|len| Some((self.rest.get(..len)?, self.rest.get(len..)?)));
        match split {
            Some((bytes, rest)) => {
                self.rest = rest;
                self.remaining -= 1;
                Some(Node { bytes })
            }
            None => {
                self.rest = &[];
                self.remaining = 0;
                None
            }
        }
    }

    /// Exact for well-formed bytes.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = capped(self.remaining, self.rest.len(), 1);
        (n, Some(n))
    }
}

impl FusedIterator for ArrayIter<'_> {}

/// A packed object.
#[derive(Clone, Copy)]
pub struct Object<'a> {
    count: u32,
    /// Exactly the entries.
    body: &'a [u8],
}

impl<'a> Object<'a> {
    /// The entry count its header gives (no more than its bytes could hold).
    pub fn len(&self) -> usize {
        capped(self.count, self.body.len(), MIN_ENTRY)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `key` (the first, should it repeat), found by skipping the entries before it.
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        let key = key.as_bytes();
        self.find(|k| k == key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The entries in their packed order (a repeated key comes as often as it is there).
    pub fn iter(&self) -> ObjectIter<'a> {
        ObjectIter {
            rest: self.body,
            remaining: self.count,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &'a str> + Clone + 'a {
        self.iter().map(|(key, _)| key)
    }

    pub fn values(&self) -> impl Iterator<Item = Node<'a>> + Clone + 'a {
        self.iter().map(|(_, value)| value)
    }

    /// The value of the first entry whose raw key bytes satisfy `names`. Compares bytes, so
    /// keys that are not UTF-8 (skipped by `iter`) never match a `&str`.
    fn find(&self, mut names: impl FnMut(&[u8]) -> bool) -> Option<Node<'a>> {
        let mut entries = self.iter();
        while let Some((key, value)) = entries.next_raw() {
            if names(key) {
                return Some(value);
            }
        }
        None
    }

    /// Whether the entry with value `value` is the first with its key, the one lookups see.
    fn is_first(&self, key: &str, value: Node<'a>) -> bool {
        self.get(key)
            .is_some_and(|first| core::ptr::eq(first.bytes.as_ptr(), value.bytes.as_ptr()))
    }

    fn value_at(&self, depth: usize) -> Value {
        if depth >= MAX_DEPTH {
            return Value::Null;
        }
        let mut map = Map::new();
        for (key, value) in self.iter() {
            map.entry(key).or_insert_with(|| value.value_at(depth + 1));
        }
        Value::Object(map)
    }
}

impl<'a> IntoIterator for Object<'a> {
    type Item = (&'a str, Node<'a>);
    type IntoIter = ObjectIter<'a>;
    fn into_iter(self) -> ObjectIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Object<'a> {
    type Item = (&'a str, Node<'a>);
    type IntoIter = ObjectIter<'a>;
    fn into_iter(self) -> ObjectIter<'a> {
        self.iter()
    }
}

/// The entries of an [`Object`]; ends early at the first that does not fit, and skips any
/// whose key is not UTF-8.
#[derive(Clone)]
pub struct ObjectIter<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl<'a> ObjectIter<'a> {
    /// The next entry, its key unchecked.
    fn next_raw(&mut self) -> Option<(&'a [u8], Node<'a>)> {
        if self.remaining == 0 {
            return None;
        }
        match split_entry(self.rest) {
            Some((key, value, rest)) => {
                self.rest = rest;
                self.remaining -= 1;
                Some((key, value))
            }
            None => {
                self.rest = &[];
                self.remaining = 0;
                None
            }
        }
    }
}

/// The key and value of the entry at the start of `bytes`, and the bytes after it.
fn split_entry(bytes: &[u8]) -> Option<(&[u8], Node<'_>, &[u8])> {
    let key_end = read_len(bytes, 0)?.checked_add(4)?;
    let key = bytes.get(4..key_end)?;
    let after = bytes.get(key_end..)?;
    let len = extent(after)?;
    Some((
        key,
        Node {
            bytes: after.get(..len)?,
        },
        after.get(len..)?,
    ))
}

impl<'a> Iterator for ObjectIter<'a> {
    type Item = (&'a str, Node<'a>);

    fn next(&mut self) -> Option<(&'a str, Node<'a>)> {
        loop {
            let (key, value) = self.next_raw()?;
            if let Ok(key) = core::str::from_utf8(key) {
                return Some((key, value));
            }
        }
    }

    /// Exact for well-formed bytes.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = capped(self.remaining, self.rest.len(), MIN_ENTRY);
        (n, Some(n))
    }
}

impl FusedIterator for ObjectIter<'_> {}

// ---------------------------------------------------------------------------------------------
// Formatting, serializing, comparing
// ---------------------------------------------------------------------------------------------

/// JSON, pretty with `{:#?}`.
fn debug_json(value: &Value, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if f.alternate() {
        write!(f, "{value:#}")
    } else {
        write!(f, "{value}")
    }
}

impl fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_json(&self.to_value(), f)
    }
}

impl fmt::Debug for Array<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_json(&self.value_at(0), f)
    }
}

impl fmt::Debug for Object<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_json(&self.value_at(0), f)
    }
}

/// A node with how deep it is, to stop serializing where `to_value` stops.
struct Nested<'a> {
    node: Node<'a>,
    depth: usize,
}

impl Serialize for Nested<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let node = &self.node;
        if let Some(b) = node.as_bool() {
            serializer.serialize_bool(b)
        } else if let Some(n) = node.as_i64() {
            serializer.serialize_i64(n)
        } else if let Some(n) = node.as_u64() {
            serializer.serialize_u64(n)
        } else if let Some(n) = node.as_f64() {
            serializer.serialize_f64(n)
        } else if let Some(s) = node.as_str() {
            serializer.serialize_str(s)
        } else if let Some(array) = node.as_array() {
            serialize_array(array, self.depth, serializer)
        } else if let Some(object) = node.as_object() {
            serialize_object(object, self.depth, serializer)
        } else {
            serializer.serialize_unit()
        }
    }
}

fn serialize_array<S: Serializer>(
    array: Array<'_>,
    depth: usize,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if depth >= MAX_DEPTH {
        return serializer.serialize_unit();
    }
    let mut seq = serializer.serialize_seq(None)?;
    for node in array {
        seq.serialize_element(&Nested {
            node,
            depth: depth + 1,
        })?;
    }
    seq.end()
}

fn serialize_object<S: Serializer>(
    object: Object<'_>,
    depth: usize,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if depth >= MAX_DEPTH {
        return serializer.serialize_unit();
    }
    let mut map = serializer.serialize_map(None)?;
    for (key, node) in object {
        if object.is_first(key, node) {
            map.serialize_entry(
                key,
                &Nested {
                    node,
                    depth: depth + 1,
                },
            )?;
        }
    }
    map.end()
}

/// As the JSON it stands for, malformed parts as null.
impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Nested {
            node: *self,
            depth: 0,
        }
        .serialize(serializer)
    }
}

impl Serialize for Array<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_array(*self, 0, serializer)
    }
}

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_object(*self, 0, serializer)
    }
}

/// Compares what the node stands for (its `to_value`), for tests and assertions.
impl PartialEq<Value> for Node<'_> {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl PartialEq<Node<'_>> for Value {
    fn eq(&self, other: &Node<'_>) -> bool {
        other == self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::{String, ToString};
    use serde_json::json;

    /// The framed input, its parts joined, is the Input document it stands for.
    #[test]
    fn the_input_reads_back_as_its_document() {
        let objects = [statefulset(), json!({"kind": "ConfigMap"}), json!({})];
        let packed: Vec<Vec<u8>> = objects
            .iter()
            .map(|o| {
                let mut out = Vec::new();
                encode(o, &mut out).unwrap();
                out
            })
            .collect();
        let parts: Vec<&[u8]> = packed.iter().map(Vec::as_slice).collect();
        let settings = json!({"max": 3});
        for objects_sent in [&parts[..], &parts[..1], &[]] {
            let bytes = input(2, objects_sent, &settings).unwrap();
            let expected = json!({
                "abi": 2,
                "objects": objects[..objects_sent.len()],
                "settings": settings,
            });
            assert_eq!(Node::root(&bytes).unwrap().to_value(), expected);
        }
    }

    fn statefulset() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {
                "name": "redis",
                "namespace": "cache",
                "labels": {
                    "app.kubernetes.io/name": "redis",
                    "app.kubernetes.io/component": "server",
                    "tier": "cache"
                },
                "annotations": {
                    "a/b": "slash",
                    "m~n": "tilde",
                    "~1": "looks escaped",
                    "/~": "both",
                    "": "empty key",
                    "redis.kubectl-redis.io/masters": "3"
                },
                "generation": 0,
                "resourceVersion": null,
                "finalizers": []
            },
            "spec": {
                "replicas": 3,
                "serviceName": "redis-headless",
                "selector": { "matchLabels": { "app.kubernetes.io/name": "redis" } },
                "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "partition": 0 } },
                "podManagementPolicy": "Parallel",
                "template": {
                    "metadata": {
                        "labels": { "app.kubernetes.io/name": "redis", "tier": "cache" },
                        "annotations": {}
                    },
                    "spec": {
                        "securityContext": { "runAsUser": 999, "fsGroup": 999, "runAsNonRoot": true },
                        "terminationGracePeriodSeconds": 30,
                        "containers": [
                            {
                                "name": "redis",
                                "image": "redis:7.2",
                                "command": ["redis-server", "/etc/redis/redis.conf"],
                                "ports": [
                                    { "name": "redis", "containerPort": 6379, "protocol": "TCP" },
                                    { "name": "bus", "containerPort": 16379 }
                                ],
                                "env": [
                                    {
                                        "name": "REDIS_PASSWORD",
                                        "valueFrom": {
                                            "secretKeyRef": { "name": "redis", "key": "password", "optional": false }
                                        }
                                    },
                                    { "name": "EMPTY", "value": "" }
                                ],
                                "resources": {
                                    "requests": { "cpu": "100m", "memory": "1Gi" },
                                    "limits": { "memory": "1Gi" }
                                },
                                "volumeMounts": [
                                    { "name": "data", "mountPath": "/data" },
                                    { "name": "config", "mountPath": "/etc/redis", "readOnly": true }
                                ],
                                "readinessProbe": {
                                    "exec": { "command": ["redis-cli", "ping"] },
                                    "periodSeconds": 5
                                }
                            },
                            {
                                "name": "exporter",
                                "image": "oliver006/redis_exporter:v1.55.0",
                                "ports": [{ "containerPort": 9121 }],
                                "args": []
                            }
                        ],
                        "volumes": [
                            { "name": "config", "configMap": { "name": "redis-conf", "defaultMode": 493 } }
                        ]
                    }
                },
                "volumeClaimTemplates": [{
                    "metadata": { "name": "data" },
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": { "requests": { "storage": "10Gi" } }
                    }
                }]
            },
            "status": {
                "replicas": 3,
                "readyReplicas": -1,
                "observedGeneration": i64::MIN,
                "collisionCount": u64::MAX,
                "aboveI64": (i64::MAX as u64) + 1,
                "ratio": 1.5,
                "small": -0.25,
                "zeroFloat": 0.0,
                "current": true,
                "updated": false,
                "conditions": null,
                "empty": {},
                "none": [],
                "nested": [[], [[]], [{}], [null, true, 0]]
            },
            "data": {
                "redis.conf": "bind 0.0.0.0\nport 6379\n# ünïcødé ✓ — 🚀 \"quoted\" \\ back\tslash\r\n\u{1}end\n",
                "0": "zero key",
                "01": "leading zero key"
            }
        })
    }

    fn packed(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(value, &mut out).unwrap();
        out
    }

    /// Every pointer that exists in `value`, escaped.
    fn pointers(value: &Value, prefix: &mut String, out: &mut Vec<String>) {
        out.push(prefix.clone());
        let len = prefix.len();
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    prefix.push('/');
                    prefix.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    pointers(value, prefix, out);
                    prefix.truncate(len);
                }
            }
            Value::Array(elements) => {
                for (i, value) in elements.iter().enumerate() {
                    prefix.push_str(&format!("/{i}"));
                    pointers(value, prefix, out);
                    prefix.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn kind_of(value: &Value) -> Kind {
        match value {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    #[test]
    fn round_trip() {
        let value = statefulset();
        let bytes = packed(&value);
        let node = Node::root(&bytes).unwrap();
        assert_eq!(node.to_value(), value);
        assert_eq!(node, value);
        assert_eq!(value, node);
        assert_eq!(node.byte_len(), Some(bytes.len()));

        let text = serde_json::to_string(&node).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
        assert_eq!(text, serde_json::to_string(&value).unwrap());
        assert_eq!(serde_json::to_value(node).unwrap(), value);
        assert_eq!(format!("{node:?}"), value.to_string());
        assert_eq!(format!("{node:#?}"), format!("{value:#}"));

        let wrapped = json!({ "value": node, "ports": node.pointer("/spec/template/spec/containers/0/ports").unwrap().as_array().unwrap() });
        assert_eq!(wrapped["value"], value);
        assert_eq!(
            wrapped["ports"],
            value["spec"]["template"]["spec"]["containers"][0]["ports"]
        );
    }

    #[test]
    fn accessors_agree_with_serde_json() {
        let value = statefulset();
        let bytes = packed(&value);
        let root = Node::root(&bytes).unwrap();

        let mut existing = Vec::new();
        pointers(&value, &mut String::new(), &mut existing);
        assert!(existing.len() > 100);
        for p in &existing {
            let v = value.pointer(p).unwrap();
            let n = root.pointer(p).unwrap_or_else(|| panic!("{p} not found"));
            assert_eq!(n.to_value(), *v, "{p}");
            assert_eq!(n.kind(), kind_of(v), "{p}");
            assert_eq!(n.as_i64(), v.as_i64(), "{p}");
            assert_eq!(n.as_u64(), v.as_u64(), "{p}");
            assert_eq!(n.as_f64(), v.as_f64(), "{p}");
            assert_eq!(n.as_str(), v.as_str(), "{p}");
            assert_eq!(n.as_bool(), v.as_bool(), "{p}");
            assert_eq!(n.is_null(), v.is_null(), "{p}");
            assert_eq!(n.is_object(), v.is_object(), "{p}");
            assert_eq!(n.is_array(), v.is_array(), "{p}");
            assert_eq!(n.is_string(), v.is_string(), "{p}");
            assert_eq!(n.is_number(), v.is_number(), "{p}");
            assert_eq!(n.byte_len(), Some(packed(v).len()), "{p}");
            if let Some(elements) = v.as_array() {
                let array = n.as_array().unwrap();
                assert_eq!(array.len(), elements.len());
                assert_eq!(array.is_empty(), elements.is_empty());
                assert_eq!(
                    array.iter().size_hint(),
                    (elements.len(), Some(elements.len()))
                );
                assert_eq!(array.iter().count(), elements.len());
                for (i, element) in elements.iter().enumerate() {
                    assert_eq!(array.get(i).unwrap(), *element);
                }
                assert!(array.get(elements.len()).is_none());
            }
            if let Some(map) = v.as_object() {
                let object = n.as_object().unwrap();
                assert_eq!(object.len(), map.len());
                assert_eq!(object.is_empty(), map.is_empty());
                assert_eq!(object.iter().size_hint(), (map.len(), Some(map.len())));
                assert!(object.keys().eq(map.keys().map(String::as_str)));
                assert!(object.values().zip(map.values()).all(|(n, v)| n == *v));
                for (key, member) in map {
                    assert!(object.contains_key(key));
                    assert_eq!(object.get(key).unwrap(), *member);
                    assert_eq!(n.get(key).unwrap(), *member);
                }
                assert!(!object.contains_key("no such key"));
            } else {
                assert!(n.get("name").is_none());
            }
        }

        let odd = [
            "/spec/x",
            "/a~1b",
            "/spec/template/spec/containers/01",
            "/spec/template/spec/containers/+0",
            "/spec/template/spec/containers/-0",
            "/spec/template/spec/containers/-",
            "/spec/template/spec/containers/2",
            "/spec/template/spec/containers/ 0",
            "/spec/template/spec/containers/18446744073709551616",
            "/spec/template/spec/containers/0/ports/1/containerPort",
            "/spec/template/spec/containers/name",
            "/spec/replicas/0",
            "/status/none/0",
            "/status/empty/",
            "/metadata/annotations/",
            "/metadata/annotations/a~1b",
            "/metadata/annotations/a/b",
            "/metadata/annotations/m~0n",
            "/metadata/annotations/m~n",
            "/metadata/annotations/~01",
            "/metadata/annotations/~1",
            "/metadata/annotations/~1~0",
            "/metadata/annotations/~",
            "/metadata/annotations/a~2b",
            "/data/0",
            "/data/01",
            "/data/00",
            "x",
            "",
            "/",
            "//",
            "/spec//",
            "~",
        ];
        for p in odd {
            assert_eq!(
                root.pointer(p).map(|n| n.to_value()),
                value.pointer(p).cloned(),
                "{p}"
            );
        }
    }

    #[test]
    fn keys_with_slash_and_tilde() {
        let bytes = packed(&statefulset());
        let root = Node::root(&bytes).unwrap();
        let annotation = |p: &str| root.pointer(p).and_then(|n| n.as_str());
        assert_eq!(annotation("/metadata/annotations/a~1b"), Some("slash"));
        assert_eq!(annotation("/metadata/annotations/m~0n"), Some("tilde"));
        assert_eq!(
            annotation("/metadata/annotations/~01"),
            Some("looks escaped")
        );
        assert_eq!(annotation("/metadata/annotations/~1~0"), Some("both"));
        assert_eq!(annotation("/metadata/annotations/"), Some("empty key"));
        assert_eq!(annotation("/metadata/annotations/a/b"), None);
        let annotations = root.pointer("/metadata/annotations").unwrap();
        assert_eq!(
            annotations.get("a/b").and_then(|n| n.as_str()),
            Some("slash")
        );
        assert_eq!(
            annotations.get("~1").and_then(|n| n.as_str()),
            Some("looks escaped")
        );
    }

    #[test]
    fn composing_matches_encode() {
        let metadata = json!({ "name": "redis", "labels": { "app": "redis" } });
        let spec = json!({ "replicas": 3, "ports": [6379, 16379] });
        let items = [json!(1), json!("two"), json!({ "three": [] }), json!(null)];

        let mut out = Vec::new();
        let document = begin_object(&mut out, 3);
        write_key(&mut out, "items").unwrap();
        let array = begin_array(&mut out, items.len() as u32);
        for item in &items {
            out.extend_from_slice(&packed(item));
        }
        end(&mut out, array).unwrap();
        write_key(&mut out, "metadata").unwrap();
        out.extend_from_slice(&packed(&metadata));
        write_key(&mut out, "spec").unwrap();
        out.extend_from_slice(&packed(&spec));
        end(&mut out, document).unwrap();

        let expected = json!({ "items": items, "metadata": metadata, "spec": spec });
        assert_eq!(out, packed(&expected));
        assert_eq!(Node::root(&out).unwrap(), expected);

        let mut empty = Vec::new();
        let array = begin_array(&mut empty, 0);
        end(&mut empty, array).unwrap();
        assert_eq!(empty, packed(&json!([])));
    }

    #[test]
    fn wire_bytes() {
        let bytes = packed(&json!({ "a": [true, "é"], "b": -2 }));
        let expected: Vec<u8> = [
            &[OBJECT, 2, 0, 0, 0, 36, 0, 0, 0][..],
            &[1, 0, 0, 0, b'a'],
            &[ARRAY, 2, 0, 0, 0, 8, 0, 0, 0],
            &[TRUE],
            &[STRING, 2, 0, 0, 0, 0xc3, 0xa9],
            &[1, 0, 0, 0, b'b'],
            &[I64],
            &(-2i64).to_le_bytes(),
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(packed(&json!(u64::MAX))[0], U64);
        assert_eq!(packed(&json!(i64::MAX))[0], I64);
        assert_eq!(packed(&json!(2.0))[0], F64);
    }

    #[test]
    fn numbers_like_serde_json() {
        let node = |tag: u8, payload: [u8; 8]| [&[tag][..], &payload].concat();

        let small_u64 = node(U64, 5u64.to_le_bytes());
        let n = Node::root(&small_u64).unwrap();
        assert_eq!(
            (n.as_i64(), n.as_u64(), n.as_f64()),
            (Some(5), Some(5), Some(5.0))
        );
        assert_eq!(n, json!(5));

        let negative = node(I64, (-5i64).to_le_bytes());
        let n = Node::root(&negative).unwrap();
        assert_eq!(
            (n.as_i64(), n.as_u64(), n.as_f64()),
            (Some(-5), None, Some(-5.0))
        );

        let two = node(F64, 2.0f64.to_le_bytes());
        let n = Node::root(&two).unwrap();
        assert_eq!(
            (n.as_i64(), n.as_u64(), n.as_f64()),
            (None, None, Some(2.0))
        );
        assert_eq!(n, json!(2.0));

        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let bytes = node(F64, bad.to_le_bytes());
            let n = Node::root(&bytes).unwrap();
            assert_eq!(n.kind(), Kind::Invalid);
            assert!(!n.is_number());
            assert_eq!(n.as_f64(), None);
            assert_eq!(n.to_value(), Value::Null);
            assert_eq!(serde_json::to_string(&n).unwrap(), "null");
        }
    }

    #[test]
    fn malformed_roots_and_scalars() {
        assert_eq!(Node::root(&[]).unwrap_err(), PackError::Malformed);
        assert!(Node::root(&[NULL, NULL]).is_err());
        assert!(Node::root(&[9]).is_err());
        assert!(Node::root(&[I64, 0, 0]).is_err());
        assert!(Node::root(&[STRING, 2, 0, 0, 0, b'a']).is_err());
        assert!(Node::root(&[STRING, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(Node::root(&[ARRAY, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());

        let not_utf8 = [STRING, 1, 0, 0, 0, 0xff];
        let n = Node::root(&not_utf8).unwrap();
        assert_eq!(n.kind(), Kind::String);
        assert_eq!(n.as_str(), None);
        assert_eq!(n.to_value(), Value::Null);

        let unknown = Node { bytes: &[0x42] };
        assert_eq!(unknown.kind(), Kind::Invalid);
        assert_eq!(unknown.byte_len(), None);
        assert_eq!(unknown.to_value(), Value::Null);
        assert!(unknown.pointer("").is_some());
        assert!(unknown.pointer("/a").is_none());
    }

    #[test]
    fn repeated_and_non_utf8_keys() {
        let mut out = Vec::new();
        let mark = begin_object(&mut out, 4);
        for (key, value) in [("a", json!(1)), ("b", json!(2)), ("a", json!(3))] {
            write_key(&mut out, key).unwrap();
            encode(&value, &mut out).unwrap();
        }
        out.extend_from_slice(&[1, 0, 0, 0, 0xff, TRUE]);
        end(&mut out, mark).unwrap();

        let node = Node::root(&out).unwrap();
        let object = node.as_object().unwrap();
        assert_eq!(object.len(), 4);
        assert_eq!(object.get("a").unwrap(), json!(1));
        assert!(object.keys().eq(["a", "b", "a"]));
        assert_eq!(node.to_value(), json!({ "a": 1, "b": 2 }));
        assert_eq!(serde_json::to_string(&node).unwrap(), r#"{"a":1,"b":2}"#);
        assert_eq!(
            serde_json::to_value(object).unwrap(),
            json!({ "a": 1, "b": 2 })
        );
    }

    #[test]
    fn end_refuses_a_stale_mark() {
        let mut out = Vec::new();
        let mark = begin_array(&mut out, 0);
        out.clear();
        assert_eq!(end(&mut out, mark), Err(PackError::Malformed));
    }

    #[test]
    fn deep_nesting_stays_on_the_stack() {
        const DEPTH: usize = 20_000;
        let mut bytes = Vec::with_capacity(DEPTH * 9 + 1);
        for level in 0..DEPTH {
            bytes.push(ARRAY);
            bytes.extend_from_slice(&1u32.to_le_bytes());
            bytes.extend_from_slice(&(((DEPTH - level - 1) * 9 + 1) as u32).to_le_bytes());
        }
        bytes.push(NULL);
        let root = Node::root(&bytes).unwrap();

        let mut value = root.to_value();
        let mut depth = 0;
        while let Value::Array(mut elements) = value {
            depth += 1;
            value = elements.pop().unwrap();
        }
        assert_eq!(depth, MAX_DEPTH);
        let text = serde_json::to_string(&root).unwrap();
        assert_eq!(text.len(), 2 * MAX_DEPTH + 4);
        assert!(!format!("{root:?}").is_empty());
        assert!(root.pointer(&"/0".repeat(DEPTH)).unwrap().is_null());
    }

    /// A node over `bytes` that `Node::root` would refuse, to reach damage below the root.
    fn unchecked(bytes: &[u8]) -> Node<'_> {
        Node { bytes }
    }

    fn same(a: Node<'_>, b: Node<'_>) -> bool {
        core::ptr::eq(a.bytes.as_ptr(), b.bytes.as_ptr())
    }

    /// Calls every reader on `node` and everything in it.
    fn exercise(node: Node<'_>, depth: usize) {
        let _ = (
            node.kind(),
            node.byte_len(),
            node.is_null(),
            node.is_object(),
        );
        let _ = (node.is_array(), node.is_string(), node.is_number());
        let _ = (
            node.as_bool(),
            node.as_str(),
            node.as_i64(),
            node.as_u64(),
            node.as_f64(),
        );
        let _ = (
            node.get("name"),
            node.pointer("/0"),
            node.pointer("/name/0"),
        );
        if depth >= 32 {
            return;
        }
        if let Some(array) = node.as_array() {
            let _ = (
                array.is_empty(),
                array.get(array.len()),
                array.get(usize::MAX),
            );
            let (low, high) = array.iter().size_hint();
            assert!(low <= array.len() && high == Some(low));
            let mut seen = 0;
            for (i, element) in array.iter().enumerate() {
                seen += 1;
                assert!(same(array.get(i).unwrap(), element));
                assert!(same(node.pointer(&format!("/{i}")).unwrap(), element));
                exercise(element, depth + 1);
            }
            assert!(seen <= array.len());
        }
        if let Some(object) = node.as_object() {
            let _ = (object.is_empty(), object.contains_key("name"));
            let (low, high) = object.iter().size_hint();
            assert!(low <= object.len() && high == Some(low));
            assert!(object.keys().count() <= object.len());
            assert!(object.values().count() <= object.len());
            for (key, value) in &object {
                // The first entry with the key, which is this one unless the key repeats.
                let first = object.get(key).unwrap();
                let escaped = key.replace('~', "~0").replace('/', "~1");
                assert!(same(node.pointer(&format!("/{escaped}")).unwrap(), first));
                exercise(value, depth + 1);
            }
        }
    }

    fn exercise_all(node: Node<'_>) {
        exercise(node, 0);
        for p in [
            "/spec/template/spec/containers/0/ports/0/containerPort",
            "/metadata/annotations/a~1b",
            "/status/collisionCount",
            "/data/redis.conf",
        ] {
            let _ = node.pointer(p).map(|n| (n.kind(), n.as_i64(), n.as_str()));
        }
        let value = node.to_value();
        assert_eq!(serde_json::to_value(node).unwrap(), value);
        let _ = serde_json::to_string(&node).unwrap();
    }

    #[test]
    fn truncated_bytes_never_panic() {
        let bytes = packed(&statefulset());
        for n in 0..bytes.len() {
            let prefix = &bytes[..n];
            assert!(Node::root(prefix).is_err());
            exercise_all(unchecked(prefix));
            if n >= 9 {
                // Claim the truncated contents are the whole root, so the damage is inside.
                let mut patched = prefix.to_vec();
                patched[5..9].copy_from_slice(&((n - 9) as u32).to_le_bytes());
                exercise_all(Node::root(&patched).unwrap());
            }
        }
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let bytes = packed(&statefulset());
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let mut accepted = 0;
        for _ in 0..3000 {
            let mut corrupted = bytes.clone();
            let at = next() % corrupted.len();
            // A third of them small: tags, and lengths that still fit.
            let byte = match next() % 3 {
                0 => (next() % 10) as u8,
                _ => next() as u8,
            };
            corrupted[at] = if corrupted[at] == byte { !byte } else { byte };
            match Node::root(&corrupted) {
                Ok(node) => {
                    accepted += 1;
                    exercise_all(node);
                }
                Err(_) => exercise_all(unchecked(&corrupted)),
            }
        }
        assert!(accepted > 0);
    }
}
