//! Transforms (map, match, math, string, convert) with Crossplane v1 semantics.
//!
//! A transform is first *prepared* (validated, regular expressions compiled: errors there are
//! Composition errors, reported whether or not a value ever flows through it), then *applied*
//! to values (errors there depend on the value and name it).

use std::collections::BTreeMap;

use base64::Engine as _;
use regex::Regex;
use serde_json::{Map, Value};
use sha1::Digest as _;

use super::gofmt::{Num, format_v, go_json, num, sprintf};
use crate::api::composition::{
    ConvertTransformFormat, MatchFallbackTo, MatchTransformPatternType, MathTransformType,
    StringConversionType, StringTransformType, Transform, TransformIoType, TransformType,
};

/// A transform ready to run.
#[derive(Debug)]
pub(crate) enum Prepared<'a> {
    Map(&'a BTreeMap<String, Value>),
    Match {
        patterns: Vec<(Pattern<'a>, &'a Value)>,
        fallback: Fallback<'a>,
    },
    Math(MathOp),
    String(StringOp<'a>),
    Convert {
        to: TransformIoType,
        format: ConvertTransformFormat,
    },
}

#[derive(Debug)]
pub(crate) enum Pattern<'a> {
    Literal(&'a str),
    Regexp(Regex),
}

#[derive(Debug)]
pub(crate) enum Fallback<'a> {
    Input,
    Value(Option<&'a Value>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum MathOp {
    Multiply(i64),
    ClampMin(i64),
    ClampMax(i64),
}

#[derive(Debug)]
pub(crate) enum StringOp<'a> {
    Format(&'a str),
    Convert(StringConversionType),
    TrimPrefix(&'a str),
    TrimSuffix(&'a str),
    Regexp {
        re: Regex,
        group: usize,
        source: &'a str,
    },
    Join(&'a str),
    Replace {
        search: &'a str,
        replace: &'a str,
    },
}

/// Validate a transform and compile what it needs. The error is a sentence about the
/// transform's configuration.
pub(crate) fn prepare(t: &Transform) -> Result<Prepared<'_>, String> {
    match t.type_ {
        TransformType::Map => {
            let m = t.map.as_ref().ok_or("type map requires the map field")?;
            if m.is_empty() {
                return Err("map must have at least one entry".into());
            }
            Ok(Prepared::Map(m))
        }
        TransformType::Match => {
            let m = t
                .match_
                .as_ref()
                .ok_or("type match requires the match field")?;
            if m.patterns.is_empty() {
                return Err("match.patterns must have at least one pattern".into());
            }
            let mut patterns = Vec::with_capacity(m.patterns.len());
            for (i, p) in m.patterns.iter().enumerate() {
                let pat = match p.type_.unwrap_or_default() {
                    MatchTransformPatternType::Literal => {
                        Pattern::Literal(p.literal.as_deref().ok_or_else(|| {
                            format!("match.patterns[{i}]: type literal requires literal")
                        })?)
                    }
                    MatchTransformPatternType::Regexp => {
                        let src = p.regexp.as_deref().ok_or_else(|| {
                            format!("match.patterns[{i}]: type regexp requires regexp")
                        })?;
                        Pattern::Regexp(compile(src).map_err(|e| {
                            format!(
                                "match.patterns[{i}]: invalid regexp {src:?}: {}",
                                one_line(&e)
                            )
                        })?)
                    }
                };
                patterns.push((pat, &p.result));
            }
            let fallback = match m.fallback_to.unwrap_or_default() {
                MatchFallbackTo::Input => {
                    if m.fallback_value.is_some() {
                        return Err(
                            "cannot set both match.fallbackValue and match.fallbackTo Input".into(),
                        );
                    }
                    Fallback::Input
                }
                MatchFallbackTo::Value => Fallback::Value(m.fallback_value.as_ref()),
            };
            Ok(Prepared::Match { patterns, fallback })
        }
        TransformType::Math => {
            let m = t.math.as_ref().ok_or("type math requires the math field")?;
            let ty = m
                .type_
                .unwrap_or(match (m.multiply, m.clamp_min, m.clamp_max) {
                    (None, Some(_), None) => MathTransformType::ClampMin,
                    (None, None, Some(_)) => MathTransformType::ClampMax,
                    _ => MathTransformType::Multiply,
                });
            let op = match ty {
                MathTransformType::Multiply => MathOp::Multiply(
                    m.multiply
                        .ok_or("math type Multiply requires math.multiply")?,
                ),
                MathTransformType::ClampMin => MathOp::ClampMin(
                    m.clamp_min
                        .ok_or("math type ClampMin requires math.clampMin")?,
                ),
                MathTransformType::ClampMax => MathOp::ClampMax(
                    m.clamp_max
                        .ok_or("math type ClampMax requires math.clampMax")?,
                ),
            };
            Ok(Prepared::Math(op))
        }
        TransformType::String => {
            let s = t
                .string
                .as_ref()
                .ok_or("type string requires the string field")?;
            let op = match s.type_.unwrap_or_default() {
                StringTransformType::Format => StringOp::Format(
                    s.format
                        .as_deref()
                        .ok_or("string type Format requires string.fmt")?,
                ),
                StringTransformType::Convert => StringOp::Convert(
                    s.convert
                        .ok_or("string type Convert requires string.convert")?,
                ),
                StringTransformType::TrimPrefix => StringOp::TrimPrefix(
                    s.trim
                        .as_deref()
                        .ok_or("string type TrimPrefix requires string.trim")?,
                ),
                StringTransformType::TrimSuffix => StringOp::TrimSuffix(
                    s.trim
                        .as_deref()
                        .ok_or("string type TrimSuffix requires string.trim")?,
                ),
                StringTransformType::Regexp => {
                    let r = s
                        .regexp
                        .as_ref()
                        .ok_or("string type Regexp requires string.regexp")?;
                    if r.match_.is_empty() {
                        return Err("string type Regexp requires string.regexp.match".into());
                    }
                    let re = compile(&r.match_)
                        .map_err(|e| format!("invalid regexp {:?}: {}", r.match_, one_line(&e)))?;
                    let group = r.group.unwrap_or(0);
                    let group = usize::try_from(group).map_err(|_| {
                        format!("string.regexp.group must not be negative, got {group}")
                    })?;
                    StringOp::Regexp {
                        re,
                        group,
                        source: &r.match_,
                    }
                }
                StringTransformType::Join => StringOp::Join(
                    &s.join
                        .as_ref()
                        .ok_or("string type Join requires string.join")?
                        .separator,
                ),
                StringTransformType::Replace => {
                    let r = s
                        .replace
                        .as_ref()
                        .ok_or("string type Replace requires string.replace")?;
                    StringOp::Replace {
                        search: &r.search,
                        replace: &r.replace,
                    }
                }
            };
            Ok(Prepared::String(op))
        }
        TransformType::Convert => {
            let c = t
                .convert
                .as_ref()
                .ok_or("type convert requires the convert field")?;
            Ok(Prepared::Convert {
                to: c.to_type,
                format: c.format.unwrap_or_default(),
            })
        }
    }
}

/// Compile a regular expression, reusing earlier compilations: Compositions are rendered on
/// every reconcile, and compiling dominates otherwise. The cache is bounded and holds only
/// compiled patterns, so results never depend on it.
fn compile(src: &str) -> Result<Regex, regex::Error> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    const MAX_CACHED: usize = 256;
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(c) = cache.lock()
        && let Some(re) = c.get(src)
    {
        return Ok(re.clone());
    }
    let re = Regex::new(src)?;
    if let Ok(mut c) = cache.lock() {
        if c.len() >= MAX_CACHED {
            c.clear();
        }
        c.insert(src.to_string(), re.clone());
    }
    Ok(re)
}

fn one_line(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `string "abc"`, `integer 20`, `object {"a":1}` (truncated) for messages.
pub(crate) fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "boolean",
        Value::Number(n) => match num(n) {
            Num::Int(_) => "integer",
            Num::Float(_) => "number",
        },
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    format!("{kind} {}", preview(v))
}

/// Compact JSON of a value, cut at 100 characters.
pub(crate) fn preview(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if s.chars().count() > 100 {
        let cut: String = s.chars().take(97).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl Prepared<'_> {
    /// Apply to a value.
    pub(crate) fn apply(&self, input: Value) -> Result<Value, String> {
        match self {
            Prepared::Map(m) => match &input {
                Value::String(s) => m.get(s).cloned().ok_or_else(|| {
                    let keys: Vec<&str> = m.keys().take(10).map(String::as_str).collect();
                    let more = if m.len() > 10 { ", ..." } else { "" };
                    format!(
                        "key {s:?} is not in the map (keys: {}{more})",
                        keys.join(", ")
                    )
                }),
                other => Err(format!("map needs a string input, got {}", describe(other))),
            },
            Prepared::Match { patterns, fallback } => {
                for (i, (pat, result)) in patterns.iter().enumerate() {
                    let Value::String(s) = &input else {
                        return Err(format!(
                            "pattern {i}: match needs a string input, got {}",
                            describe(&input)
                        ));
                    };
                    let hit = match pat {
                        Pattern::Literal(l) => s == l,
                        Pattern::Regexp(re) => re.is_match(s),
                    };
                    if hit {
                        return Ok((*result).clone());
                    }
                }
                match fallback {
                    Fallback::Input => Ok(input),
                    Fallback::Value(v) => Ok(v.cloned().unwrap_or(Value::Null)),
                }
            }
            Prepared::Math(op) => apply_math(*op, &input),
            Prepared::String(op) => apply_string(op, &input).map(Value::String),
            Prepared::Convert { to, format } => convert(&input, *to, *format),
        }
    }
}

fn apply_math(op: MathOp, input: &Value) -> Result<Value, String> {
    let n = match input {
        Value::Number(n) => num(n),
        other => {
            return Err(format!(
                "math needs a number input, got {}",
                describe(other)
            ));
        }
    };
    match op {
        MathOp::Multiply(m) => match n {
            Num::Int(i) => i
                .checked_mul(m)
                .map(Value::from)
                .ok_or_else(|| format!("{i} multiplied by {m} overflows a 64-bit integer")),
            Num::Float(f) => {
                let r = f * m as f64;
                serde_json::Number::from_f64(r)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{f} multiplied by {m} is not a finite number"))
            }
        },
        MathOp::ClampMin(min) => {
            if as_i64_truncated(n) < min {
                Ok(Value::from(min))
            } else {
                Ok(input.clone())
            }
        }
        MathOp::ClampMax(max) => {
            if as_i64_truncated(n) > max {
                Ok(Value::from(max))
            } else {
                Ok(input.clone())
            }
        }
    }
}

/// Go's `int64(f)` (saturating where Go's is undefined).
fn as_i64_truncated(n: Num) -> i64 {
    match n {
        Num::Int(i) => i,
        Num::Float(f) => f as i64,
    }
}

/// Go's rune-wise strings.ToUpper/ToLower: a rune whose case mapping is not a single rune is
/// kept (Go maps `ß` to itself, not to `SS`).
fn map_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut it: Box<dyn Iterator<Item = char>> = if upper {
                Box::new(c.to_uppercase())
            } else {
                Box::new(c.to_lowercase())
            };
            match (it.next(), it.next()) {
                (Some(m), None) => m,
                _ => c,
            }
        })
        .collect()
}

fn go_base64_decode(s: &str) -> Result<Vec<u8>, String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    // Go's decoder skips newlines.
    let cleaned: String = s.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    ENGINE
        .decode(cleaned.as_bytes())
        .map_err(|e| format!("{:?} is not valid base64: {e}", truncate(s)))
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 60 {
        let t: String = s.chars().take(57).collect();
        format!("{t}...")
    } else {
        s.to_string()
    }
}

/// Bytes that the hash conversions hash: strings as is, anything else as Go JSON.
fn hash_input(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        other => go_json(other).into_bytes(),
    }
}

fn apply_string(op: &StringOp<'_>, input: &Value) -> Result<String, String> {
    match op {
        StringOp::Format(f) => Ok(sprintf(f, &[input])),
        StringOp::Convert(c) => {
            let s = || match input {
                Value::String(s) => s.clone(),
                other => format_v(other),
            };
            Ok(match c {
                StringConversionType::ToUpper => map_case(&s(), true),
                StringConversionType::ToLower => map_case(&s(), false),
                StringConversionType::ToBase64 => {
                    base64::engine::general_purpose::STANDARD.encode(s().as_bytes())
                }
                StringConversionType::FromBase64 => {
                    String::from_utf8_lossy(&go_base64_decode(&s())?).into_owned()
                }
                StringConversionType::ToJson => go_json(input),
                StringConversionType::ToSha1 => hex::encode(sha1::Sha1::digest(hash_input(input))),
                StringConversionType::ToSha256 => {
                    hex::encode(sha2::Sha256::digest(hash_input(input)))
                }
                StringConversionType::ToSha512 => {
                    hex::encode(sha2::Sha512::digest(hash_input(input)))
                }
                StringConversionType::ToAdler32 => {
                    let mut a = adler2::Adler32::new();
                    a.write_slice(&hash_input(input));
                    a.checksum().to_string()
                }
            })
        }
        StringOp::TrimPrefix(p) => {
            let s = format_v(input);
            Ok(s.strip_prefix(p).map(str::to_string).unwrap_or(s))
        }
        StringOp::TrimSuffix(p) => {
            let s = format_v(input);
            Ok(s.strip_suffix(p).map(str::to_string).unwrap_or(s))
        }
        StringOp::Regexp { re, group, source } => {
            let s = format_v(input);
            let caps = re.captures(&s);
            match caps {
                Some(c) if *group < c.len() => Ok(c
                    .get(*group)
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default()),
                Some(c) => Err(format!(
                    "regexp {source:?} has no group {group} (it has {})",
                    c.len().saturating_sub(1)
                )),
                None => Err(format!(
                    "regexp {source:?} does not match {:?}",
                    truncate(&s)
                )),
            }
        }
        StringOp::Join(sep) => match input {
            Value::Array(a) => Ok(a.iter().map(format_v).collect::<Vec<_>>().join(sep)),
            other => Err(format!(
                "join needs an array input, got {}",
                describe(other)
            )),
        },
        StringOp::Replace { search, replace } => Ok(format_v(input).replace(search, replace)),
    }
}

fn io_type_of(v: &Value) -> Option<TransformIoType> {
    match v {
        Value::String(_) => Some(TransformIoType::String),
        Value::Bool(_) => Some(TransformIoType::Bool),
        Value::Number(n) => Some(match num(n) {
            Num::Int(_) => TransformIoType::Int64,
            Num::Float(_) => TransformIoType::Float64,
        }),
        _ => None,
    }
}

/// Go's strconv.ParseBool.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn float_value(f: f64, what: &str) -> Result<Value, String> {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("{what} is not a finite number"))
}

/// The convert transform.
pub(crate) fn convert(
    input: &Value,
    to: TransformIoType,
    format: ConvertTransformFormat,
) -> Result<Value, String> {
    use TransformIoType as T;
    let Some(from) = io_type_of(input) else {
        return Err(format!(
            "cannot convert {} to {}: convert accepts strings, numbers and booleans",
            describe(input),
            to.as_str()
        ));
    };
    let to = if to == T::Int { T::Int64 } else { to };
    if from == to {
        return Ok(input.clone());
    }
    let unsupported = || {
        format!(
            "conversion from {} to {} is not supported with format {} (value {})",
            from.as_str(),
            to.as_str(),
            format.as_str(),
            preview(input)
        )
    };
    let cannot = || format!("cannot convert {} to {}", describe(input), to.as_str());
    match (input, to, format) {
        (Value::String(s), T::Int64, ConvertTransformFormat::None) => {
            s.parse::<i64>().map(Value::from).map_err(|_| cannot())
        }
        (Value::String(s), T::Bool, ConvertTransformFormat::None) => {
            parse_go_bool(s).map(Value::Bool).ok_or_else(cannot)
        }
        (Value::String(s), T::Float64, ConvertTransformFormat::None) => {
            let f = parse_go_float(s).ok_or_else(cannot)?;
            float_value(f, &format!("{s:?}"))
        }
        (Value::String(s), T::Float64, ConvertTransformFormat::Quantity) => {
            let f = parse_quantity(s).map_err(|e| format!("{}: {e}", cannot()))?;
            float_value(f, &format!("{s:?}"))
        }
        (Value::String(s), T::Object, ConvertTransformFormat::Json) => {
            match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => Ok(Value::Object(m)),
                Ok(Value::Null) => Ok(Value::Object(Map::new())),
                Ok(other) => Err(format!("{}: the JSON is {}", cannot(), describe(&other))),
                Err(e) => Err(format!("{}: invalid JSON: {e}", cannot())),
            }
        }
        (Value::String(s), T::Array, ConvertTransformFormat::Json) => {
            match serde_json::from_str::<Value>(s) {
                Ok(Value::Array(a)) => Ok(Value::Array(a)),
                Ok(Value::Null) => Ok(Value::Null),
                Ok(other) => Err(format!("{}: the JSON is {}", cannot(), describe(&other))),
                Err(e) => Err(format!("{}: invalid JSON: {e}", cannot())),
            }
        }
        (Value::Number(n), _, ConvertTransformFormat::None) => match (num(n), to) {
            (Num::Int(i), T::String) => Ok(Value::String(i.to_string())),
            (Num::Int(i), T::Bool) => Ok(Value::Bool(i == 1)),
            (Num::Int(i), T::Float64) => float_value(i as f64, &i.to_string()),
            (Num::Float(f), T::String) => {
                Ok(Value::String(super::gofmt::format_float(f, 'f', None)))
            }
            (Num::Float(f), T::Int64) => {
                const TWO_63: f64 = 9_223_372_036_854_775_808.0;
                if f.is_finite() && (-TWO_63..TWO_63).contains(&f.trunc()) {
                    Ok(Value::from(f.trunc() as i64))
                } else {
                    Err(format!("{}: out of the int64 range", cannot()))
                }
            }
            (Num::Float(f), T::Bool) => Ok(Value::Bool(f == 1.0)),
            _ => Err(unsupported()),
        },
        (Value::Bool(b), T::String, ConvertTransformFormat::None) => {
            Ok(Value::String(b.to_string()))
        }
        (Value::Bool(b), T::Int64, ConvertTransformFormat::None) => Ok(Value::from(i64::from(*b))),
        (Value::Bool(b), T::Float64, ConvertTransformFormat::None) => {
            float_value(f64::from(u8::from(*b)), "bool")
        }
        _ => Err(unsupported()),
    }
}

/// Go's strconv.ParseFloat(s, 64) for decimal input (Rust's parser, minus the spellings Go
/// does not accept; NaN and infinities are refused since JSON cannot carry them).
fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// A Kubernetes quantity (`1Gi`, `500m`, `1.5e3`, `2k`) as a float64, like
/// `resource.ParseQuantity(s).AsApproximateFloat64()`.
pub(crate) fn parse_quantity(s: &str) -> Result<f64, String> {
    if s.is_empty() {
        return Err("empty quantity".into());
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    if matches!(bytes[0], b'+' | b'-') {
        i = 1;
    }
    let num_start = i;
    let mut digits = 0;
    let mut dots = 0;
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        if bytes[i] == b'.' {
            dots += 1;
        } else {
            digits += 1;
        }
        i += 1;
    }
    if digits == 0 || dots > 1 {
        return Err(format!("{s:?} is not a quantity: expected a number"));
    }
    let number: f64 = {
        let n = &s[..i];
        let n = if n[num_start..].starts_with('.') {
            format!("{}0{}", &n[..num_start], &n[num_start..])
        } else {
            n.to_string()
        };
        n.trim_end_matches('.')
            .parse()
            .map_err(|_| format!("{s:?} is not a quantity"))?
    };
    let suffix = &s[i..];
    let mult: f64 = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            let exp = suffix
                .strip_prefix(['e', 'E'])
                .filter(|e| {
                    let d = e.strip_prefix(['+', '-']).unwrap_or(e);
                    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
                })
                .and_then(|e| e.parse::<i32>().ok())
                .ok_or_else(|| format!("{s:?} is not a quantity: unknown suffix {suffix:?}"))?;
            10f64.powi(exp)
        }
    };
    // Multiplying by 1e-3 is inexact; divide for the decimal fractions as Kubernetes' scaled
    // arithmetic effectively does ("500m" is exactly 0.5).
    let v = match suffix {
        "n" => number / 1e9,
        "u" => number / 1e6,
        "m" => number / 1e3,
        _ if mult < 1.0 => number / (1.0 / mult),
        _ => number * mult,
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{s:?} is out of range"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(v: Value) -> Transform {
        serde_json::from_value(v).unwrap()
    }

    fn run(tr: Value, input: Value) -> Result<Value, String> {
        let tr = t(tr);
        let p = prepare(&tr)?;
        p.apply(input)
    }

    /// One row of a transform table: the transform, its input, and what it gives: the value,
    /// or an error whose message contains the text (any error for "").
    type Case = (Value, Value, Result<Value, &'static str>);

    fn check(cases: Vec<Case>) {
        for (tr, input, want) in cases {
            let got = run(tr.clone(), input.clone());
            match want {
                Ok(v) => assert_eq!(got, Ok(v), "{tr} on {input}"),
                Err(part) => match got {
                    Err(e) => assert!(e.contains(part), "{tr} on {input}: {e}"),
                    Ok(v) => panic!("{tr} on {input}: {v}, want an error with {part:?}"),
                },
            }
        }
    }

    #[test]
    fn map_transform() {
        let tr = json!({"type": "map", "map": {"small": "db.t3.micro", "large": {"class": "db.r6g.xlarge"}, "n": 5}});
        check(vec![
            (tr.clone(), json!("small"), Ok(json!("db.t3.micro"))),
            (
                tr.clone(),
                json!("large"),
                Ok(json!({"class": "db.r6g.xlarge"})),
            ),
            (tr.clone(), json!("n"), Ok(json!(5))),
            (
                tr.clone(),
                json!("huge"),
                Err("key \"huge\" is not in the map"),
            ),
            (
                tr,
                json!(20),
                Err("map needs a string input, got integer 20"),
            ),
            (json!({"type": "map", "map": {}}), json!("x"), Err("")),
            (json!({"type": "map"}), json!("x"), Err("")),
        ]);
    }

    #[test]
    fn match_transform() {
        let tr = json!({"type": "match", "match": {
            "patterns": [
                {"type": "literal", "literal": "prod", "result": "db.r6g.large"},
                {"type": "regexp", "regexp": "^stag", "result": {"size": 2}},
                {"literal": "dev", "result": 1}
            ],
            "fallbackValue": "db.t3.micro"
        }});
        let m = |v: Value| json!({"type": "match", "match": v});
        let a1 = json!([{"literal": "a", "result": 1}]);
        check(vec![
            (tr.clone(), json!("prod"), Ok(json!("db.r6g.large"))),
            (tr.clone(), json!("staging"), Ok(json!({"size": 2}))),
            (tr.clone(), json!("dev"), Ok(json!(1))),
            (tr.clone(), json!("other"), Ok(json!("db.t3.micro"))),
            (
                tr,
                json!(5),
                Err("match needs a string input, got integer 5"),
            ),
            // No fallbackValue: null.
            (m(json!({"patterns": a1})), json!("b"), Ok(Value::Null)),
            // fallbackTo Input.
            (
                m(json!({"patterns": a1, "fallbackTo": "Input"})),
                json!("b"),
                Ok(json!("b")),
            ),
            // Invalid configurations.
            (
                m(json!({"patterns": a1, "fallbackTo": "Input", "fallbackValue": 2})),
                json!("a"),
                Err("cannot set both"),
            ),
            (
                m(json!({"patterns": [{"type": "regexp", "regexp": "(", "result": 1}]})),
                json!("a"),
                Err("invalid regexp"),
            ),
            (
                m(json!({"patterns": [{"type": "literal", "result": 1}]})),
                json!("a"),
                Err("requires literal"),
            ),
            (m(json!({"patterns": []})), json!("a"), Err("")),
        ]);
    }

    #[test]
    fn math_transform() {
        let math = |v: Value| json!({"type": "math", "math": v});
        let mul = math(json!({"multiply": 1024}));
        let min = math(json!({"type": "ClampMin", "clampMin": 20}));
        let max = math(json!({"type": "ClampMax", "clampMax": 100}));
        check(vec![
            (mul.clone(), json!(20), Ok(json!(20480))),
            (mul.clone(), json!(1.5), Ok(json!(1536.0))),
            (
                mul,
                json!("20"),
                Err("math needs a number input, got string \"20\""),
            ),
            (
                math(json!({"multiply": 2})),
                json!(i64::MAX),
                Err("overflows"),
            ),
            (
                math(json!({"type": "Multiply", "multiply": -2})),
                json!(3),
                Ok(json!(-6)),
            ),
            (min.clone(), json!(10), Ok(json!(20))),
            (min.clone(), json!(30), Ok(json!(30))),
            (min.clone(), json!(19.5), Ok(json!(20))),
            (min, json!(20.5), Ok(json!(20.5))),
            (max.clone(), json!(200), Ok(json!(100))),
            (max, json!(50), Ok(json!(50))),
            // Type inferred from the field set.
            (math(json!({"clampMax": 5})), json!(9), Ok(json!(5))),
            (math(json!({"type": "ClampMin"})), json!(1), Err("clampMin")),
            (math(json!({})), json!(1), Err("multiply")),
        ]);
    }

    #[test]
    fn string_transforms() {
        let s = |v: Value| json!({"type": "string", "string": v});
        let conv = |to: &str| s(json!({"type": "Convert", "convert": to}));
        let re =
            s(json!({"type": "Regexp", "regexp": {"match": "^db-(\\w+)-(\\d+)$", "group": 2}}));
        let join = s(json!({"type": "Join", "join": {"separator": ","}}));
        check(vec![
            (s(json!({"fmt": "db-%s"})), json!("x"), Ok(json!("db-x"))),
            (
                s(json!({"type": "Format", "fmt": "%d GiB"})),
                json!(20),
                Ok(json!("20 GiB")),
            ),
            (
                s(json!({"fmt": "%s"})),
                json!(20),
                Ok(json!("%!s(int64=20)")),
            ),
            (conv("ToUpper"), json!("abc"), Ok(json!("ABC"))),
            (conv("ToLower"), json!("AbC"), Ok(json!("abc"))),
            (conv("ToUpper"), json!(true), Ok(json!("TRUE"))),
            (conv("ToBase64"), json!("hello"), Ok(json!("aGVsbG8="))),
            (conv("FromBase64"), json!("aGVsbG8="), Ok(json!("hello"))),
            (conv("FromBase64"), json!("!!"), Err("not valid base64")),
            (
                conv("ToJson"),
                json!({"b": [1, "x"], "a": null}),
                Ok(json!(r#"{"a":null,"b":[1,"x"]}"#)),
            ),
            (conv("ToJson"), json!("x"), Ok(json!("\"x\""))),
            (
                conv("ToSha1"),
                json!("abc"),
                Ok(json!("a9993e364706816aba3e25717850c26c9cd0d89d")),
            ),
            (
                conv("ToSha256"),
                json!("abc"),
                Ok(json!(
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                )),
            ),
            (
                conv("ToSha512"),
                json!("abc"),
                Ok(json!(
                    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
                )),
            ),
            // Non-strings are hashed as their JSON: sha256("20").
            (
                conv("ToSha256"),
                json!(20),
                Ok(json!(
                    "f5ca38f748a1d6eaf726b8a42fb575c3c71f1864a8143301782de13da2d9202b"
                )),
            ),
            (
                conv("ToAdler32"),
                json!("Wikipedia"),
                Ok(json!("300286872")),
            ),
            (
                s(json!({"type": "TrimPrefix", "trim": "db-"})),
                json!("db-main"),
                Ok(json!("main")),
            ),
            (
                s(json!({"type": "TrimPrefix", "trim": "x"})),
                json!("db-main"),
                Ok(json!("db-main")),
            ),
            (
                s(json!({"type": "TrimSuffix", "trim": "-main"})),
                json!("db-main"),
                Ok(json!("db")),
            ),
            (re.clone(), json!("db-main-42"), Ok(json!("42"))),
            (re, json!("nope"), Err("does not match")),
            (
                s(json!({"type": "Regexp", "regexp": {"match": "[0-9]+"}})),
                json!("abc123def"),
                Ok(json!("123")),
            ),
            (
                s(json!({"type": "Regexp", "regexp": {"match": "a", "group": 3}})),
                json!("a"),
                Err("no group 3"),
            ),
            (
                s(json!({"type": "Regexp", "regexp": {"match": "("}})),
                json!("a"),
                Err("invalid regexp"),
            ),
            (join.clone(), json!(["a", 1, true]), Ok(json!("a,1,true"))),
            (
                join,
                json!("a"),
                Err("join needs an array input, got string \"a\""),
            ),
            (
                s(json!({"type": "Replace", "replace": {"search": "-", "replace": "_"}})),
                json!("a-b-c"),
                Ok(json!("a_b_c")),
            ),
            (s(json!({"type": "Format"})), json!("a"), Err("string.fmt")),
            (s(json!({"type": "Join"})), json!("a"), Err("")),
        ]);
    }

    #[test]
    fn convert_transform() {
        let c = |to: &str| json!({"type": "convert", "convert": {"toType": to}});
        let cf =
            |to: &str, f: &str| json!({"type": "convert", "convert": {"toType": to, "format": f}});
        check(vec![
            (c("int64"), json!("42"), Ok(json!(42))),
            (c("int"), json!("-42"), Ok(json!(-42))),
            (
                c("int64"),
                json!("abc"),
                Err("cannot convert string \"abc\" to int64"),
            ),
            (c("int64"), json!(2.9), Ok(json!(2))),
            (c("int64"), json!(-2.9), Ok(json!(-2))),
            (c("int64"), json!(true), Ok(json!(1))),
            (c("int64"), json!(7), Ok(json!(7))),
            (c("string"), json!(20), Ok(json!("20"))),
            (c("string"), json!(2.5), Ok(json!("2.5"))),
            (
                c("string"),
                json!(1e21),
                Ok(json!("1000000000000000000000")),
            ),
            (c("string"), json!(false), Ok(json!("false"))),
            (c("bool"), json!("true"), Ok(json!(true))),
            (c("bool"), json!("F"), Ok(json!(false))),
            (c("bool"), json!("yes"), Err("")),
            (c("bool"), json!(1), Ok(json!(true))),
            (c("bool"), json!(2), Ok(json!(false))),
            (c("bool"), json!(1.0), Ok(json!(true))),
            (c("float64"), json!("2.5"), Ok(json!(2.5))),
            (c("float64"), json!(3), Ok(json!(3.0))),
            (c("float64"), json!(true), Ok(json!(1.0))),
            (c("float64"), json!("NaN"), Err("")),
            (
                cf("float64", "quantity"),
                json!("1Gi"),
                Ok(json!(1073741824.0)),
            ),
            (cf("float64", "quantity"), json!("500m"), Ok(json!(0.5))),
            (cf("float64", "quantity"), json!("2k"), Ok(json!(2000.0))),
            (cf("float64", "quantity"), json!("1.5e3"), Ok(json!(1500.0))),
            (
                cf("float64", "quantity"),
                json!("1Gb"),
                Err("unknown suffix"),
            ),
            (
                cf("int64", "quantity"),
                json!("1Gi"),
                Err("not supported with format quantity"),
            ),
            (
                cf("object", "json"),
                json!(r#"{"a":1}"#),
                Ok(json!({"a": 1})),
            ),
            (cf("array", "json"), json!("[1,\"x\"]"), Ok(json!([1, "x"]))),
            (cf("object", "json"), json!("[1]"), Err("")),
            (cf("object", "json"), json!("{"), Err("invalid JSON")),
            (
                c("object"),
                json!("{}"),
                Err("not supported with format none"),
            ),
            (c("string"), json!({"a": 1}), Err("cannot convert object")),
            (c("string"), Value::Null, Err("cannot convert null")),
            // Same type passes through, whatever the format.
            (cf("string", "json"), json!("x"), Ok(json!("x"))),
        ]);
    }

    #[test]
    fn quantities() {
        for (q, want) in [
            ("1", 1.0),
            ("1Ki", 1024.0),
            ("1Mi", 1048576.0),
            ("1.5Gi", 1610612736.0),
            ("100m", 0.1),
            ("-2", -2.0),
            (".5", 0.5),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("5n", 5e-9),
            ("3u", 3e-6),
            ("1T", 1e12),
        ] {
            assert_eq!(parse_quantity(q), Ok(want), "{q}");
        }
        for bad in ["", "Gi", "1.2.3", "1 Gi", "1K", "abc", "1e", "-"] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
    }
}
