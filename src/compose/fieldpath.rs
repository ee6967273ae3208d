//! Field paths in Crossplane's syntax, and getting, setting and merging values by them.
//!
//! Syntax (as Crossplane's `fieldpath` package reads it):
//!
//! - `spec.forProvider.allocatedStorage`: fields separated by periods;
//! - `spec.items[0].name`, `spec.items[0][8]`: array indexes in brackets;
//! - `metadata.labels[crossplane.io/claim-name]`, `data[.config.yml]`: inside brackets periods
//!   are not separators, so any key without brackets can be named;
//! - `metadata.annotations['example.org/x']`, `a["it's"]`: a field name in quotes (`'` or `"`)
//!   is taken literally, never as an index; it may contain periods, brackets and the other
//!   quote, and a doubled quote stands for one (`['it''s']`), so every key can be written;
//! - `[*]` (or `.*`) is a wildcard segment, meaningful only in a patch's toFieldPath.
//!
//! An unquoted bracketed segment is an index when it is an unsigned 32-bit decimal integer, a
//! field name otherwise. A field outside brackets may also be quoted (`a.'b'`), but then cannot
//! contain periods or brackets. Leading, doubled or trailing periods, empty brackets, a period
//! before a bracket, unterminated brackets or quotes, text between a closing quote and the end
//! of its segment, and stray `]` are errors reporting the byte position.
//!
//! [`to_string`] prints every list of segments so that [`parse`] reads it back unchanged (the
//! one exception is a [`Segment::Index`] above `u32::MAX`, which the syntax reads as a field
//! name and which `parse` never produces): plain names after periods, names with periods or
//! `*` in brackets (`metadata.labels[a.b]`, as Crossplane prints them), and names that are
//! empty, start with a quote, contain a bracket or look like an index in quotes.

use serde_json::{Map, Value};

/// The largest array index a set accepts, as in Crossplane (`DefaultMaxFieldPathIndex` of
/// crossplane-runtime's `fieldpath`): an index in a Composition such as `spec.items[4000000000]`
/// would otherwise allocate gigabytes.
pub const MAX_ARRAY_INDEX: usize = 1024;

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A field of an object.
    Field(String),
    /// An element of an array.
    Index(usize),
}

impl Segment {
    fn is_wildcard(&self) -> bool {
        matches!(self, Segment::Field(f) if f == "*")
    }

    /// What this segment indexes into, for messages: `an object` or `an array`.
    fn container_name(&self) -> &'static str {
        match self {
            Segment::Field(_) => "an object",
            Segment::Index(_) => "an array",
        }
    }
}

/// A malformed field path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid field path {path:?}: {message} at position {position}")]
pub struct ParseError {
    /// The path as written.
    pub path: String,
    /// Byte offset of the offending character.
    pub position: usize,
    /// What is wrong, for example `unexpected '.'`.
    pub message: String,
}

/// Parse a field path. The empty path parses to no segments (the whole object).
pub fn parse(path: &str) -> Result<Vec<Segment>, ParseError> {
    let err = |position: usize, message: String| ParseError {
        path: path.to_string(),
        position,
        message,
    };
    let bytes = path.as_bytes();
    let len = bytes.len();
    let mut segments = Vec::with_capacity(4);
    let mut pos = 0usize;
    // State machine after Crossplane's lexer: a field name runs until '.', '[' or the end.
    loop {
        // lexField
        let start = pos;
        let mut stop = None;
        while pos < len {
            match bytes[pos] {
                b']' => return Err(err(pos, "unexpected ']'".into())),
                b'[' | b'.' => {
                    stop = Some(bytes[pos]);
                    break;
                }
                _ => pos += 1,
            }
        }
        if pos > start {
            segments.push(bare_field(&path[start..pos]).map_err(|(at, m)| err(start + at, m))?);
        }
        match stop {
            None => return Ok(segments),
            Some(b'.') => {
                // lexPeriod: not first, not last, not followed by '.' or '['.
                if pos == 0 || pos == len - 1 {
                    return Err(err(pos, "unexpected '.'".into()));
                }
                pos += 1;
                match bytes.get(pos) {
                    Some(b'.') => return Err(err(pos, "unexpected '.'".into())),
                    Some(b'[') => return Err(err(pos, "unexpected '['".into())),
                    _ => {}
                }
            }
            Some(_) => {
                // lexLeftBracket + lexFieldOrIndex + lexRightBracket, with quoted names.
                let open = pos;
                pos += 1;
                match bytes.get(pos) {
                    None => return Err(err(open, "unterminated '['".into())),
                    Some(b']') => return Err(err(pos, "unexpected ']'".into())),
                    Some(b'\'' | b'"') => {
                        let Some((name, end)) = quoted(&path[pos..]) else {
                            return Err(err(pos, "unterminated quote".into()));
                        };
                        let end = pos + end;
                        match bytes.get(end) {
                            Some(b']') => {}
                            None => return Err(err(open, "unterminated '['".into())),
                            Some(_) => return Err(err(end, after_quote(&path[end..]))),
                        }
                        segments.push(Segment::Field(name));
                        pos = end + 1;
                    }
                    Some(_) => {
                        let Some(rel) = path[pos..].find(']') else {
                            return Err(err(open, "unterminated '['".into()));
                        };
                        let close = pos + rel;
                        if let Some(lb) = path[pos..close].find('[') {
                            return Err(err(pos + lb, "unexpected '['".into()));
                        }
                        segments.push(field_or_index(&path[pos..close]));
                        pos = close + 1;
                    }
                }
            }
        }
    }
}

/// A field outside brackets: taken as written, or, when it starts with a quote, the quoted
/// name, which must then end the segment. Errors carry a byte offset into `s`.
fn bare_field(s: &str) -> Result<Segment, (usize, String)> {
    if !s.starts_with(['\'', '"']) {
        return Ok(Segment::Field(s.to_string()));
    }
    match quoted(s) {
        Some((name, end)) if end == s.len() => Ok(Segment::Field(name)),
        Some((_, end)) => Err((end, after_quote(&s[end..]))),
        None => Err((0, "unterminated quote".into())),
    }
}

/// Read the quoted name at the start of `s` (which starts with `'` or `"`): the name, with
/// doubled quotes made single, and the byte offset just past the closing quote; `None` when
/// the quote is not closed.
fn quoted(s: &str) -> Option<(String, usize)> {
    let bytes = s.as_bytes();
    let q = bytes[0];
    let mut name = String::new();
    let (mut i, mut from) = (1, 1);
    while i < bytes.len() {
        if bytes[i] == q {
            name.push_str(&s[from..i]);
            if bytes.get(i + 1) == Some(&q) {
                name.push(char::from(q));
                i += 2;
                from = i;
                continue;
            }
            return Some((name, i + 1));
        }
        i += 1;
    }
    None
}

/// The message for what follows a closing quote where a segment should end.
fn after_quote(rest: &str) -> String {
    match rest.chars().next() {
        Some(c) => format!("unexpected {c:?} after closing quote"),
        None => "unexpected end after closing quote".into(),
    }
}

fn field_or_index(s: &str) -> Segment {
    if !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = s.parse::<u32>()
    {
        return Segment::Index(i as usize);
    }
    Segment::Field(s.to_string())
}

/// Render segments back to a path that [`parse`] reads as the same segments: plain names after
/// periods, names with periods and wildcards in brackets, and names that are empty, start with
/// a quote, contain a bracket or look like an index quoted in brackets. An index above
/// `u32::MAX` (which `parse` never produces) prints as digits that read back as a field name.
pub fn to_string(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Field(f) if is_plain(f) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(f);
            }
            Segment::Field(f) if is_plain_in_brackets(f) => {
                out.push('[');
                out.push_str(f);
                out.push(']');
            }
            Segment::Field(f) => {
                // Quote with the quote the name does not contain, else double the quotes.
                out.push('[');
                if !f.contains('\'') {
                    out.push('\'');
                    out.push_str(f);
                    out.push('\'');
                } else if !f.contains('"') {
                    out.push('"');
                    out.push_str(f);
                    out.push('"');
                } else {
                    out.push('\'');
                    out.push_str(&f.replace('\'', "''"));
                    out.push('\'');
                }
                out.push(']');
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Whether `f` reads back as itself written after a period (or first): `*` is printed in
/// brackets, as Crossplane does.
fn is_plain(f: &str) -> bool {
    !f.is_empty() && f != "*" && !f.starts_with(['\'', '"']) && !f.contains(['.', '[', ']'])
}

/// Whether `f` reads back as itself written in brackets without quotes.
fn is_plain_in_brackets(f: &str) -> bool {
    !f.is_empty()
        && !f.starts_with(['\'', '"'])
        && !f.contains(['[', ']'])
        && matches!(field_or_index(f), Segment::Field(_))
}

/// Why a get found nothing usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// A field is absent, an index is past the end, or a parent is null.
    #[error("{at}: no such field")]
    NotFound {
        /// The path up to and including the missing segment.
        at: String,
    },
    /// A parent has the wrong type for the next segment (e.g. a field of a string).
    #[error("{at} is {found}, not {expected}")]
    WrongType {
        /// The path of the parent.
        at: String,
        /// `an object` or `an array`.
        expected: &'static str,
        /// What it is, e.g. `a string`.
        found: &'static str,
    },
}

impl GetError {
    /// True when the path simply does not exist (yet).
    pub fn is_not_found(&self) -> bool {
        matches!(self, GetError::NotFound { .. })
    }
}

/// `a string`, `an object`, ... for messages.
pub fn a_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Get the value at `segments`. A null parent counts as not found; a null leaf is returned.
pub fn get<'a>(root: &'a Value, segments: &[Segment]) -> Result<&'a Value, GetError> {
    let mut cur = root;
    for (i, seg) in segments.iter().enumerate() {
        let child = match (seg, cur) {
            (Segment::Field(f), Value::Object(m)) => m.get(f),
            (Segment::Index(idx), Value::Array(a)) => a.get(*idx),
            (_, Value::Null) => None,
            (_, other) => {
                return Err(GetError::WrongType {
                    at: parent_name(&segments[..i]),
                    expected: seg.container_name(),
                    found: a_type_name(other),
                });
            }
        };
        cur = child.ok_or_else(|| GetError::NotFound {
            at: to_string(&segments[..=i]),
        })?;
    }
    Ok(cur)
}

fn parent_name(segments: &[Segment]) -> String {
    if segments.is_empty() {
        "the object".to_string()
    } else {
        to_string(segments)
    }
}

/// Why a set failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// A parent exists with a type that cannot hold the next segment.
    #[error("cannot set {path}: {at} is {found}, not {expected}")]
    WrongType {
        /// The full target path.
        path: String,
        /// The parent in the way.
        at: String,
        /// `an object` or `an array`.
        expected: &'static str,
        /// What the parent is.
        found: &'static str,
    },
    /// The path has no segments.
    #[error("cannot set the empty field path")]
    Empty,
    /// An index above [`MAX_ARRAY_INDEX`].
    #[error("cannot set {path}: index {index} is larger than {max}")]
    IndexTooLarge {
        /// The full target path.
        path: String,
        /// The index.
        index: usize,
        /// The limit.
        max: usize,
    },
    /// A wildcard segment in a path that does not allow one.
    #[error("cannot set {path}: wildcard '*' is only allowed in a patch's toFieldPath")]
    Wildcard {
        /// The full target path.
        path: String,
    },
}

/// Set the value at `segments`, creating missing (or null) objects and arrays on the way; an
/// index past the end of an array grows it with nulls. Refuses to index into a scalar.
pub fn set(root: &mut Value, segments: &[Segment], value: Value) -> Result<(), SetError> {
    let Some((last, parents)) = segments.split_last() else {
        return Err(SetError::Empty);
    };
    let mut cur = root;
    for (i, seg) in parents.iter().enumerate() {
        let next = &segments[i + 1];
        cur = step_mut(cur, seg, next, segments, i)?;
    }
    *slot_mut(cur, last, segments, segments.len() - 1)? = value;
    Ok(())
}

fn check_index(idx: usize, segments: &[Segment]) -> Result<(), SetError> {
    if idx > MAX_ARRAY_INDEX {
        return Err(SetError::IndexTooLarge {
            path: to_string(segments),
            index: idx,
            max: MAX_ARRAY_INDEX,
        });
    }
    Ok(())
}

fn empty_for(next: &Segment) -> Value {
    match next {
        Segment::Field(_) => Value::Object(Map::new()),
        Segment::Index(_) => Value::Array(Vec::new()),
    }
}

fn step_mut<'a>(
    cur: &'a mut Value,
    seg: &Segment,
    next: &Segment,
    segments: &[Segment],
    i: usize,
) -> Result<&'a mut Value, SetError> {
    let child = slot_mut(cur, seg, segments, i)?;
    if child.is_null() {
        *child = empty_for(next);
    }
    Ok(child)
}

/// The place of `seg` in `cur` (segment `i` of `segments`), made on the way: a null `cur`
/// becomes the container `seg` needs, a missing field is null, an array is grown with nulls.
fn slot_mut<'a>(
    cur: &'a mut Value,
    seg: &Segment,
    segments: &[Segment],
    i: usize,
) -> Result<&'a mut Value, SetError> {
    if seg.is_wildcard() {
        return Err(SetError::Wildcard {
            path: to_string(segments),
        });
    }
    if let Segment::Index(idx) = seg {
        check_index(*idx, segments)?;
    }
    if cur.is_null() {
        *cur = empty_for(seg);
    }
    match (seg, cur) {
        (Segment::Field(f), Value::Object(m)) => Ok(m.entry(f.clone()).or_insert(Value::Null)),
        (Segment::Index(idx), Value::Array(a)) => {
            if a.len() <= *idx {
                a.resize(*idx + 1, Value::Null);
            }
            Ok(&mut a[*idx])
        }
        (_, other) => Err(SetError::WrongType {
            path: to_string(segments),
            at: parent_name(&segments[..i]),
            expected: seg.container_name(),
            found: a_type_name(other),
        }),
    }
}

/// Remove the value at `segments`, if any. Returns whether something was removed.
pub fn remove(root: &mut Value, segments: &[Segment]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut cur = root;
    for seg in parents {
        let next = match (seg, cur) {
            (Segment::Field(f), Value::Object(m)) => m.get_mut(f),
            (Segment::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match (last, cur) {
        (Segment::Field(f), Value::Object(m)) => m.remove(f).is_some(),
        _ => false,
    }
}

/// How a value is merged into an existing one (Crossplane's merge options).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeOptions {
    /// Keep values already present (MergeObjects); otherwise they are replaced.
    pub keep_map_values: bool,
    /// Append to arrays (skipping elements already present at the top level).
    pub append_slice: bool,
}

/// Why a merge failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Reading the existing value failed.
    #[error(transparent)]
    Get(#[from] GetError),
    /// Writing failed.
    #[error(transparent)]
    Set(#[from] SetError),
    /// Appending an array to something that is not one.
    #[error("cannot append an array to {found} at {path}")]
    AppendMismatch {
        /// Where.
        path: String,
        /// What is already there.
        found: &'static str,
    },
}

/// Write `value` at `segments`: replace when `opts` is None, else merge with what is there
/// (Crossplane's `MergeValue`: objects merge recursively; with `keep_map_values` existing
/// non-empty values win, otherwise the new ones; arrays are appended with `append_slice`, and
/// otherwise replaced or kept like any other value).
pub fn merge_value(
    root: &mut Value,
    segments: &[Segment],
    value: Value,
    opts: Option<MergeOptions>,
) -> Result<(), MergeError> {
    let Some(opts) = opts else {
        set(root, segments, value)?;
        return Ok(());
    };
    let existing = match get(root, segments) {
        Ok(v) => Some(v.clone()),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let merged = match existing {
        None | Some(Value::Null) => value,
        Some(dst) => merge(dst, value, opts, segments)?,
    };
    set(root, segments, merged)?;
    Ok(())
}

/// Go/mergo emptiness: null, false, 0, "", [] and {} are empty.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

fn merge(
    dst: Value,
    src: Value,
    opts: MergeOptions,
    segments: &[Segment],
) -> Result<Value, MergeError> {
    if src.is_null() {
        return Ok(src);
    }
    let src = match (&dst, src) {
        // At the top level, appended array elements already present are dropped.
        (Value::Array(d), Value::Array(s)) if opts.append_slice => {
            Value::Array(s.into_iter().filter(|x| !d.contains(x)).collect())
        }
        (_, s) => s,
    };
    merge_inner(dst, src, opts, segments)
}

fn merge_inner(
    dst: Value,
    src: Value,
    opts: MergeOptions,
    segments: &[Segment],
) -> Result<Value, MergeError> {
    let overwrite = !opts.keep_map_values;
    match (dst, src) {
        (Value::Object(mut d), Value::Object(s)) => {
            for (k, sv) in s {
                match d.remove(&k) {
                    None => {
                        d.insert(k, sv);
                    }
                    Some(dv) => {
                        let merged = merge_inner(dv, sv, opts, segments)?;
                        d.insert(k, merged);
                    }
                }
            }
            Ok(Value::Object(d))
        }
        (Value::Array(mut d), Value::Array(s)) if opts.append_slice => {
            d.extend(s);
            Ok(Value::Array(d))
        }
        (dst, Value::Array(_)) if opts.append_slice && !dst.is_null() => {
            Err(MergeError::AppendMismatch {
                path: to_string(segments),
                found: a_type_name(&dst),
            })
        }
        (dst, src) => {
            if overwrite || is_empty(&dst) {
                Ok(src)
            } else {
                Ok(dst)
            }
        }
    }
}

/// Whether the path contains a `*` segment.
pub fn has_wildcard(segments: &[Segment]) -> bool {
    segments.iter().any(Segment::is_wildcard)
}

/// Why a wildcard path could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A `*` stands where the value is null: nothing to expand (Crossplane's not-found).
    #[error("{at} is null: the wildcard has nothing to expand")]
    NotFound {
        /// The path before the wildcard.
        at: String,
    },
    /// A `*` stands where the value is a scalar.
    #[error("{at} is {found}: a wildcard needs an array or an object")]
    Scalar {
        /// The path before the wildcard.
        at: String,
        /// What is there.
        found: &'static str,
    },
}

/// Expand `*` segments over the elements (arrays) or fields (objects) of `root`, as
/// Crossplane's `ExpandWildcards` does: an expansion is kept only when the *whole* rest of the
/// path, leaf included, already exists in it; paths through missing values expand to nothing.
/// A wildcard where the value is null or a scalar is an error.
pub fn expand_wildcards(
    root: &Value,
    segments: &[Segment],
) -> Result<Vec<Vec<Segment>>, ExpandError> {
    let mut out = Vec::new();
    let mut prefix = Vec::with_capacity(segments.len());
    expand_rec(root, segments, &mut prefix, &mut out)?;
    Ok(out)
}

fn expand_rec(
    cur: &Value,
    rest: &[Segment],
    prefix: &mut Vec<Segment>,
    out: &mut Vec<Vec<Segment>>,
) -> Result<(), ExpandError> {
    let Some((seg, tail)) = rest.split_first() else {
        out.push(prefix.clone());
        return Ok(());
    };
    if seg.is_wildcard() {
        match cur {
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    prefix.push(Segment::Index(i));
                    expand_rec(v, tail, prefix, out)?;
                    prefix.pop();
                }
            }
            Value::Object(m) => {
                for (k, v) in m {
                    prefix.push(Segment::Field(k.clone()));
                    expand_rec(v, tail, prefix, out)?;
                    prefix.pop();
                }
            }
            Value::Null => {
                return Err(ExpandError::NotFound {
                    at: parent_name(prefix),
                });
            }
            other => {
                return Err(ExpandError::Scalar {
                    at: parent_name(prefix),
                    found: a_type_name(other),
                });
            }
        }
        return Ok(());
    }
    // A concrete segment must exist, the leaf too, for the expansion to be kept.
    let child = match (seg, cur) {
        (Segment::Field(f), Value::Object(m)) => m.get(f),
        (Segment::Index(i), Value::Array(a)) => a.get(*i),
        _ => None,
    };
    if let Some(c) = child {
        prefix.push(seg.clone());
        let r = expand_rec(c, tail, prefix, out);
        prefix.pop();
        r?;
    }
    Ok(())
}

/// Go's JSON round trip as Crossplane does it when setting a value: a floating-point number
/// with an integral value that fits in an int64 becomes an integer (`2.0` is written as `2`).
pub fn normalize_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if n.is_f64()
                && let Some(i) = n.as_f64().and_then(integral_f64_to_i64)
            {
                *v = Value::from(i);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize_numbers),
        Value::Object(m) => m.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

/// `Some(i)` when `f` is integral and within the int64 range.
pub fn integral_f64_to_i64(f: f64) -> Option<i64> {
    // 2^63 as f64 is exact; i64::MIN as f64 is exact too.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_finite() && f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn f(s: &str) -> Segment {
        Segment::Field(s.to_string())
    }
    fn ix(i: usize) -> Segment {
        Segment::Index(i)
    }

    #[test]
    fn parses_crossplane_examples() {
        let cases: Vec<(&str, Vec<Segment>)> = vec![
            ("metadata.name", vec![f("metadata"), f("name")]),
            (
                "spec.containers[0].name",
                vec![f("spec"), f("containers"), ix(0), f("name")],
            ),
            ("data[.config.yml]", vec![f("data"), f(".config.yml")]),
            (
                "metadata.annotations['crossplane.io/external-name']",
                vec![
                    f("metadata"),
                    f("annotations"),
                    f("crossplane.io/external-name"),
                ],
            ),
            (
                "metadata.labels[crossplane.io/claim-name]",
                vec![f("metadata"), f("labels"), f("crossplane.io/claim-name")],
            ),
            (
                "metadata.annotations[\"example.org/x\"]",
                vec![f("metadata"), f("annotations"), f("example.org/x")],
            ),
            (
                "spec.items[0][8]",
                vec![f("spec"), f("items"), ix(0), ix(8)],
            ),
            ("apiVersion", vec![f("apiVersion")]),
            ("[42]", vec![ix(42)]),
            ("a[0]b", vec![f("a"), ix(0), f("b")]),
            ("a['0']", vec![f("a"), f("0")]),
            ("a[4294967296]", vec![f("a"), f("4294967296")]),
            ("a[-1]", vec![f("a"), f("-1")]),
            ("a[+1]", vec![f("a"), f("+1")]),
            ("a[*].b", vec![f("a"), f("*"), f("b")]),
            ("", vec![]),
            // Quoted names are literal: periods, brackets, the other quote, doubled quotes.
            ("a['']", vec![f("a"), f("")]),
            ("a[\"\"]", vec![f("a"), f("")]),
            ("a['b]c[d.e']", vec![f("a"), f("b]c[d.e")]),
            ("a[\"it's\"]", vec![f("a"), f("it's")]),
            ("a['it''s']", vec![f("a"), f("it's")]),
            ("a['''']", vec![f("a"), f("'")]),
            ("a['\"']", vec![f("a"), f("\"")]),
            ("a.'b'.c", vec![f("a"), f("b"), f("c")]),
            ("'a'[0]", vec![f("a"), ix(0)]),
            // Quotes that do not open a segment are part of the name.
            ("a[b']", vec![f("a"), f("b'")]),
            ("a.b'c\"", vec![f("a"), f("b'c\"")]),
        ];
        for (path, want) in cases {
            assert_eq!(parse(path).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn rejects_malformed_paths_with_position() {
        let cases = [
            (".metadata.name", 0, "unexpected '.'"),
            ("metadata..name", 9, "unexpected '.'"),
            ("metadata.name.", 13, "unexpected '.'"),
            ("spec.containers[]", 16, "unexpected ']'"),
            ("spec.containers.[0].name", 16, "unexpected '['"),
            ("spec.containers[0", 15, "unterminated '['"),
            ("spec]", 4, "unexpected ']'"),
            ("a[b[c]", 3, "unexpected '['"),
            (".", 0, "unexpected '.'"),
            ("a[0].", 4, "unexpected '.'"),
            // An unterminated quote is an error, not an empty or truncated name.
            ("spec[']", 5, "unterminated quote"),
            ("spec[\"]", 5, "unterminated quote"),
            ("spec['x]", 5, "unterminated quote"),
            ("spec[''']", 5, "unterminated quote"),
            ("spec.'", 5, "unterminated quote"),
            ("spec.\"x", 5, "unterminated quote"),
            ("a.'b.c'", 2, "unterminated quote"),
            ("spec['x'", 4, "unterminated '['"),
            ("spec['x'y]", 8, "unexpected 'y' after closing quote"),
            ("spec.'x'y", 8, "unexpected 'y' after closing quote"),
            ("a[", 1, "unterminated '['"),
        ];
        for (path, pos, msg) in cases {
            let e = parse(path).unwrap_err();
            assert_eq!((e.position, e.message.as_str()), (pos, msg), "{path}");
            assert!(e.to_string().contains(&format!("at position {pos}")));
        }
    }

    #[test]
    fn get_distinguishes_not_found_from_wrong_type() {
        let v = json!({"spec": {"a": "x", "list": [1, {"b": 2}], "n": null}});
        let g = |p: &str| get(&v, &parse(p).unwrap()).cloned();
        assert_eq!(g("spec.a"), Ok(json!("x")));
        assert_eq!(g("spec.list[1].b"), Ok(json!(2)));
        assert_eq!(g("spec.n"), Ok(Value::Null));
        assert!(g("spec.missing").unwrap_err().is_not_found());
        assert!(g("spec.list[5]").unwrap_err().is_not_found());
        assert!(g("spec.n.x").unwrap_err().is_not_found());
        assert_eq!(
            g("spec.a.b"),
            Err(GetError::WrongType {
                at: "spec.a".into(),
                expected: "an object",
                found: "a string"
            })
        );
        assert_eq!(
            g("spec.a[0]"),
            Err(GetError::WrongType {
                at: "spec.a".into(),
                expected: "an array",
                found: "a string"
            })
        );
        assert!(!g("spec[0]").unwrap_err().is_not_found());
    }

    #[test]
    fn set_creates_objects_and_arrays_and_grows_arrays() {
        let mut v = json!({});
        set(&mut v, &parse("spec.items[2].name").unwrap(), json!("c")).unwrap();
        assert_eq!(v, json!({"spec": {"items": [null, null, {"name": "c"}]}}));
        set(&mut v, &parse("spec.items[0]").unwrap(), json!(1)).unwrap();
        set(&mut v, &parse("spec.matrix[1][1]").unwrap(), json!(true)).unwrap();
        assert_eq!(v["spec"]["matrix"], json!([null, [null, true]]));
        set(
            &mut v,
            &parse("metadata.labels[example.org/a]").unwrap(),
            json!("x"),
        )
        .unwrap();
        assert_eq!(v["metadata"]["labels"]["example.org/a"], json!("x"));
    }

    #[test]
    fn set_refuses_to_index_into_a_scalar() {
        let mut v = json!({"spec": {"a": "x", "arr": [1]}});
        let e = set(&mut v, &parse("spec.a.b").unwrap(), json!(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot set spec.a.b: spec.a is a string, not an object"
        );
        let e = set(&mut v, &parse("spec.a[0]").unwrap(), json!(1)).unwrap_err();
        assert!(e.to_string().contains("not an array"));
        let e = set(&mut v, &parse("spec.arr.x").unwrap(), json!(1)).unwrap_err();
        assert!(
            e.to_string()
                .contains("spec.arr is an array, not an object")
        );
        let e = set(&mut v, &parse("spec.arr[20000]").unwrap(), json!(1)).unwrap_err();
        assert!(matches!(e, SetError::IndexTooLarge { .. }));
        assert_eq!(set(&mut v, &[], json!(1)), Err(SetError::Empty));
    }

    #[test]
    fn merge_policies() {
        let p = parse("spec.tags").unwrap();
        let base =
            json!({"spec": {"tags": {"a": "1", "nested": {"x": 1}, "list": [1, 2], "empty": ""}}});
        let src =
            json!({"a": "2", "b": "3", "nested": {"y": 2}, "list": [2, 3], "empty": "filled"});
        let run = |opts: Option<MergeOptions>| {
            let mut v = base.clone();
            merge_value(&mut v, &p, src.clone(), opts).unwrap();
            v["spec"]["tags"].clone()
        };
        let merge = |keep_map_values, append_slice| {
            Some(MergeOptions {
                keep_map_values,
                append_slice,
            })
        };
        for (name, opts, want) in [
            ("Replace", None, src.clone()),
            // Existing non-empty values kept, arrays kept.
            (
                "MergeObjects",
                merge(true, false),
                json!({"a": "1", "b": "3", "nested": {"x": 1, "y": 2}, "list": [1, 2], "empty": "filled"}),
            ),
            (
                "MergeObjectsAppendArrays",
                merge(true, true),
                json!({"a": "1", "b": "3", "nested": {"x": 1, "y": 2}, "list": [1, 2, 2, 3], "empty": "filled"}),
            ),
            (
                "ForceMergeObjects",
                merge(false, false),
                json!({"a": "2", "b": "3", "nested": {"x": 1, "y": 2}, "list": [2, 3], "empty": "filled"}),
            ),
            (
                "ForceMergeObjectsAppendArrays",
                merge(false, true),
                json!({"a": "2", "b": "3", "nested": {"x": 1, "y": 2}, "list": [1, 2, 2, 3], "empty": "filled"}),
            ),
        ] {
            assert_eq!(run(opts), want, "{name}");
        }
    }

    #[test]
    fn merge_top_level_arrays_dedupes_appended_elements() {
        let p = parse("spec.list").unwrap();
        let mut v = json!({"spec": {"list": [1, 2]}});
        merge_value(
            &mut v,
            &p,
            json!([2, 3]),
            Some(MergeOptions {
                keep_map_values: false,
                append_slice: true,
            }),
        )
        .unwrap();
        assert_eq!(v["spec"]["list"], json!([1, 2, 3]));
        // Appending an array onto a string is an error.
        let mut v = json!({"spec": {"list": "x"}});
        let e = merge_value(
            &mut v,
            &p,
            json!([1]),
            Some(MergeOptions {
                keep_map_values: false,
                append_slice: true,
            }),
        );
        assert!(e.is_err());
        // Missing destination: plain set.
        let mut v = json!({});
        merge_value(
            &mut v,
            &p,
            json!([1]),
            Some(MergeOptions {
                keep_map_values: true,
                append_slice: true,
            }),
        )
        .unwrap();
        assert_eq!(v["spec"]["list"], json!([1]));
    }

    #[test]
    fn wildcards_expand_over_existing_elements() {
        // Crossplane (crossplane-runtime fieldpath ExpandWildcards): an element is expanded
        // only when the rest of the path, leaf included, exists in it.
        let v = json!({"spec": {"rules": [{"a": 1, "groups": []}, {"a": 2}, {"a": 3, "groups": null}]}});
        let paths = expand_wildcards(&v, &parse("spec.rules[*].groups").unwrap()).unwrap();
        assert_eq!(
            paths,
            vec![
                vec![f("spec"), f("rules"), ix(0), f("groups")],
                vec![f("spec"), f("rules"), ix(2), f("groups")]
            ]
        );
        // Nothing exists: nothing expands (the caller reports it).
        assert!(
            expand_wildcards(&v, &parse("spec.missing[*].x").unwrap())
                .unwrap()
                .is_empty()
        );
        assert!(
            expand_wildcards(&v, &parse("spec.rules[*].b").unwrap())
                .unwrap()
                .is_empty()
        );
        // Objects expand over their fields.
        let o = json!({"m": {"x": {"k": 1}, "y": {}}});
        assert_eq!(
            expand_wildcards(&o, &parse("m.*.k").unwrap()).unwrap(),
            vec![vec![f("m"), f("x"), f("k")]]
        );
        // A wildcard on null is Crossplane's not-found; on a scalar, an error.
        let n = json!({"spec": {"rules": null, "s": "x"}});
        assert!(matches!(
            expand_wildcards(&n, &parse("spec.rules[*].a").unwrap()),
            Err(ExpandError::NotFound { .. })
        ));
        assert!(matches!(
            expand_wildcards(&n, &parse("spec.s[*]").unwrap()),
            Err(ExpandError::Scalar { .. })
        ));
    }

    #[test]
    fn indexes_above_1024_are_refused_like_crossplane() {
        // Crossplane: crossplane-runtime fieldpath DefaultMaxFieldPathIndex = 1024; SetValue
        // refuses a larger index ("index 1025 is greater than max allowed index 1024").
        let mut v = json!({});
        set(&mut v, &parse("a[1024]").unwrap(), json!(1)).unwrap();
        assert_eq!(v["a"].as_array().unwrap().len(), 1025);
        let e = set(&mut v, &parse("b[1025]").unwrap(), json!(1)).unwrap_err();
        assert!(matches!(
            e,
            SetError::IndexTooLarge {
                index: 1025,
                max: 1024,
                ..
            }
        ));
        let e = set(&mut v, &parse("c[1025].x").unwrap(), json!(1)).unwrap_err();
        assert!(matches!(e, SetError::IndexTooLarge { .. }));
    }

    #[test]
    fn normalizes_integral_floats() {
        let mut v = json!({"a": 2.0, "b": [1.5, -0.0, 1e300], "c": "2.0"});
        normalize_numbers(&mut v);
        assert_eq!(v, json!({"a": 2, "b": [1.5, 0, 1e300], "c": "2.0"}));
        assert!(v["a"].is_i64());
    }

    #[test]
    fn regression_lone_quote_in_brackets_is_an_error() {
        // Found by the fuzz test: `spec[']` parsed to [spec, ""], printed as `spec[]`.
        let e = parse("spec[']").unwrap_err();
        assert_eq!((e.position, e.message.as_str()), (5, "unterminated quote"));
    }

    #[test]
    fn regression_quote_field_prints_quoted() {
        // Found by the fuzz test: [Field("\"")] printed as `"`, which parsed as [""].
        let segs = vec![f("\"")];
        assert_eq!(to_string(&segs), "['\"']");
        assert_eq!(parse(&to_string(&segs)).unwrap(), segs);
    }

    #[test]
    fn prints_every_name_so_that_it_parses_back() {
        let cases: Vec<(Vec<Segment>, &str)> = vec![
            (vec![f("metadata"), f("name")], "metadata.name"),
            (
                vec![f("metadata"), f("labels"), f("a.b")],
                "metadata.labels[a.b]",
            ),
            (vec![f("a"), f("*"), f("b")], "a[*].b"),
            (vec![f("a"), ix(0), f("b")], "a[0].b"),
            (vec![f("a"), f("0")], "a.0"),
            (vec![f("a"), f("0.5")], "a[0.5]"),
            (vec![f("a"), f("")], "a['']"),
            (vec![f("")], "['']"),
            (vec![f("'")], "[\"'\"]"),
            (vec![f("\"")], "['\"']"),
            (vec![f("'\"")], "['''\"']"),
            (vec![f("a"), f("b]c")], "a['b]c']"),
            (vec![f("a"), f("[x")], "a['[x']"),
            (vec![f("a"), f("b'")], "a.b'"),
            (vec![f("a"), f("b'.c")], "a[b'.c]"),
            (vec![f("a"), f("'b.c")], "a[\"'b.c\"]"),
        ];
        for (segs, want) in cases {
            assert_eq!(to_string(&segs), want, "{segs:?}");
            assert_eq!(parse(want).unwrap(), segs, "{want}");
        }
    }

    /// Field names that conflict with the syntax: periods, brackets, quotes, `*`, digits, empty.
    fn awkward_name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z.\\[\\]'\"*0-9]{0,6}",
            prop::sample::select(vec![
                "",
                "'",
                "\"",
                "''",
                "'\"",
                "]",
                "[",
                ".",
                "*",
                "0",
                "4294967296"
            ])
            .prop_map(str::to_string),
            "\\PC{0,5}",
        ]
    }

    /// Segments a set can write (indexes up to 4).
    fn segment_strategy() -> impl Strategy<Value = Segment> {
        prop_oneof![
            "[a-zA-Z][a-zA-Z0-9_/-]{0,8}".prop_map(Segment::Field),
            "[a-z]{1,4}\\.[a-z]{1,4}".prop_map(Segment::Field),
            awkward_name().prop_map(Segment::Field),
            (0usize..5).prop_map(Segment::Index),
        ]
    }

    /// Any segment `parse` can produce, indexes up to `u32::MAX` included.
    fn any_segment() -> impl Strategy<Value = Segment> {
        prop_oneof![
            3 => segment_strategy(),
            1 => (0..=u64::from(u32::MAX)).prop_map(|i| Segment::Index(i as usize)),
        ]
    }

    proptest! {
        #[test]
        fn set_then_get_round_trips(
            segs in prop::collection::vec(segment_strategy(), 1..6),
            val in prop_oneof![any::<i64>().prop_map(Value::from), "[a-z]{0,5}".prop_map(Value::from), any::<bool>().prop_map(Value::from)],
        ) {
            // The root is an object, so the first segment must be a field.
            let mut segs = segs;
            if let Segment::Index(_) = segs[0] { segs[0] = Segment::Field("root".into()); }
            prop_assume!(!has_wildcard(&segs));
            let mut v = json!({});
            set(&mut v, &segs, val.clone()).unwrap();
            prop_assert_eq!(get(&v, &segs).unwrap(), &val);
            // And through the string form.
            let reparsed = parse(&to_string(&segs)).unwrap();
            prop_assert_eq!(&reparsed, &segs);
            prop_assert_eq!(get(&v, &reparsed).unwrap(), &val);
        }

        #[test]
        fn print_then_parse_round_trips(segs in prop::collection::vec(any_segment(), 0..8)) {
            let printed = to_string(&segs);
            prop_assert_eq!(parse(&printed), Ok(segs), "printed as {:?}", printed);
        }

        #[test]
        fn parse_then_print_round_trips(
            s in prop_oneof!["[a.\\[\\]'\"0-9*]{0,20}", "\\PC{0,20}"],
        ) {
            if let Ok(segs) = parse(&s) {
                let printed = to_string(&segs);
                prop_assert_eq!(parse(&printed), Ok(segs), "{:?} printed as {:?}", s, printed);
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_of_bracket_soup_never_panics(s in "[a.\\[\\]'\"0-9*]{0,20}") {
            if let Ok(segs) = parse(&s) {
                let mut v = json!({});
                let _ = set(&mut v, &segs, json!(1));
                let _ = get(&v, &segs);
            }
        }
    }
}
