//! Go's `fmt.Sprintf` and `encoding/json.Marshal`, as they behave on the values Crossplane
//! patches carry (JSON decoded the Kubernetes way: `string`, `int64`, `float64`, `bool`, `nil`,
//! `map[string]interface{}` and `[]interface{}`). Compositions written for Crossplane use Go
//! format strings (`string.fmt`, `combine.string.fmt`) and rely on Go's `%v` rendering of
//! numbers, arrays and objects, and on Go's JSON for `ToJson` and the hash conversions.
//!
//! Supported verbs: `%v %+v %#v %T %s %q %d %x %X %o %O %b %c %U %t %f %F %e %E %g %G %%`, flags
//! `+ - # 0 space`, width, precision (also `*`) and explicit argument indexes (`%[2]s`).
//! Mismatches are rendered the way Go renders them: `%!d(string=abc)`, `%!s(MISSING)`,
//! `%!(EXTRA string=x)`. Not supported: hexadecimal float formatting (`%x` of a float64 is
//! rendered as a bad verb).

use serde_json::{Number, Value};

/// A number the way Kubernetes' JSON decoder produces it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// int64
    Int(i64),
    /// float64 (also integers beyond the int64 range)
    Float(f64),
}

/// Classify a JSON number.
pub fn num(n: &Number) -> Num {
    match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// Go's `%T` of a decoded JSON value.
pub fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) => match num(n) {
            Num::Int(_) => "int64",
            Num::Float(_) => "float64",
        },
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// `fmt.Sprintf("%v", v)`.
pub fn format_v(v: &Value) -> String {
    let mut p = Printer::default();
    p.print_arg(Some(v), 'v', 0);
    p.buf
}

/// `fmt.Sprintf(format, args...)`.
pub fn sprintf(format: &str, args: &[&Value]) -> String {
    let mut p = Printer::default();
    p.do_printf(format, args);
    p.buf
}

#[derive(Clone, Copy, Default)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

#[derive(Default)]
struct Printer {
    buf: String,
    f: Flags,
    reordered: bool,
    good_arg_num: bool,
}

/// Parse a decimal number at `s[i..end]`; returns (value, found, new index).
fn parse_num(s: &[char], mut i: usize, end: usize) -> (usize, bool, usize) {
    let mut n: usize = 0;
    let mut found = false;
    while i < end && s[i].is_ascii_digit() {
        // Go stops at 1e6 to avoid overflow.
        if n > 1_000_000 {
            return (0, false, end);
        }
        n = n * 10 + (s[i] as usize - '0' as usize);
        found = true;
        i += 1;
    }
    (n, found, i)
}

impl Printer {
    fn do_printf(&mut self, format: &str, args: &[&Value]) {
        let s: Vec<char> = format.chars().collect();
        let end = s.len();
        let mut arg_num = 0usize;
        let mut after_index;
        self.reordered = false;
        let mut i = 0;
        'outer: while i < end {
            self.good_arg_num = true;
            let lasti = i;
            while i < end && s[i] != '%' {
                i += 1;
            }
            if i > lasti {
                self.buf.extend(&s[lasti..i]);
            }
            if i >= end {
                break;
            }
            i += 1; // skip %
            self.f = Flags::default();
            while i < end {
                match s[i] {
                    '#' => self.f.sharp = true,
                    '0' => self.f.zero = !self.f.minus,
                    '+' => self.f.plus = true,
                    '-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    ' ' => self.f.space = true,
                    _ => break,
                }
                i += 1;
            }
            // Argument index, then width.
            (arg_num, i, after_index) = self.arg_number(arg_num, &s, i, args.len());
            if i < end && s[i] == '*' {
                i += 1;
                let (w, ok) = int_from_arg(args, &mut arg_num);
                if !ok {
                    self.buf.push_str("%!(BADWIDTH)");
                }
                match w {
                    Some(w) if w < 0 => {
                        self.f.minus = true;
                        self.f.zero = false;
                        self.f.wid = Some(w.unsigned_abs() as usize);
                    }
                    Some(w) => self.f.wid = Some(w as usize),
                    None => {}
                }
                after_index = false;
            } else {
                let (w, found, ni) = parse_num(&s, i, end);
                i = ni;
                if found {
                    self.f.wid = Some(w);
                    if after_index {
                        self.good_arg_num = false;
                    }
                }
            }
            // Precision.
            if i < end && s[i] == '.' {
                i += 1;
                if after_index {
                    self.good_arg_num = false;
                }
                (arg_num, i, after_index) = self.arg_number(arg_num, &s, i, args.len());
                if i < end && s[i] == '*' {
                    i += 1;
                    let (p, ok) = int_from_arg(args, &mut arg_num);
                    match p {
                        Some(p) if p >= 0 && ok => self.f.prec = Some(p as usize),
                        _ => {
                            self.f.prec = None;
                            self.buf.push_str("%!(BADPREC)");
                        }
                    }
                    after_index = false;
                } else {
                    let (p, found, ni) = parse_num(&s, i, end);
                    i = ni;
                    self.f.prec = Some(if found { p } else { 0 });
                }
            }
            if !after_index {
                (arg_num, i, after_index) = self.arg_number(arg_num, &s, i, args.len());
            }
            let _ = after_index;
            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break 'outer;
            }
            let verb = s[i];
            i += 1;
            match verb {
                '%' => self.buf.push('%'),
                _ if !self.good_arg_num => self.bad_arg_num(verb),
                _ if arg_num >= args.len() => self.missing_arg(verb),
                'w' => {
                    self.bad_verb_for(verb, Some(args[arg_num]));
                    arg_num += 1;
                }
                _ => {
                    let mut verb = verb;
                    if verb == 'v' {
                        if self.f.sharp {
                            self.f.sharp = false;
                            self.f.sharp_v = true;
                        }
                        if self.f.plus {
                            self.f.plus = false;
                            self.f.plus_v = true;
                        }
                    }
                    if verb == 'F' {
                        verb = 'f';
                    }
                    self.print_arg(Some(args[arg_num]), verb, 0);
                    arg_num += 1;
                }
            }
        }
        if !self.reordered && arg_num < args.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (k, a) in args[arg_num..].iter().enumerate() {
                if k > 0 {
                    self.buf.push_str(", ");
                }
                if a.is_null() {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(go_type(a));
                    self.buf.push('=');
                    self.print_arg(Some(a), 'v', 0);
                }
            }
            self.buf.push(')');
        }
    }

    fn arg_number(
        &mut self,
        arg_num: usize,
        s: &[char],
        i: usize,
        num_args: usize,
    ) -> (usize, usize, bool) {
        if i >= s.len() || s[i] != '[' {
            return (arg_num, i, false);
        }
        self.reordered = true;
        let rest = &s[i..];
        // parseArgNumber
        let (index, wid, ok) = {
            if rest.len() < 3 {
                (0usize, 1usize, false)
            } else {
                let mut res = (0usize, 1usize, false);
                for j in 1..rest.len() {
                    if rest[j] == ']' {
                        let (n, found, newi) = parse_num(rest, 1, j);
                        res = if !found || newi != j || n == 0 {
                            (0, j + 1, found && newi == j)
                        } else {
                            (n - 1, j + 1, true)
                        };
                        // n == 0 means index -1: ok but out of range.
                        if found && newi == j && n == 0 {
                            res = (usize::MAX, j + 1, true);
                        }
                        break;
                    }
                }
                res
            }
        };
        if ok && index < num_args {
            return (index, i + wid, true);
        }
        self.good_arg_num = false;
        (arg_num, i + wid, ok)
    }

    fn bad_arg_num(&mut self, verb: char) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push_str("(BADINDEX)");
    }

    fn missing_arg(&mut self, verb: char) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push_str("(MISSING)");
    }

    fn bad_verb_for(&mut self, verb: char, arg: Option<&Value>) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        match arg {
            Some(a) if !a.is_null() => {
                self.buf.push_str(go_type(a));
                self.buf.push('=');
                let saved = self.f;
                self.print_arg(Some(a), 'v', 0);
                self.f = saved;
            }
            _ => self.buf.push_str("<nil>"),
        }
        self.buf.push(')');
    }

    fn print_arg(&mut self, arg: Option<&Value>, verb: char, depth: usize) {
        let Some(arg) = arg else {
            self.pad_str("<nil>");
            return;
        };
        if verb == 'T' {
            self.fmt_s(go_type(arg));
            return;
        }
        match arg {
            Value::Null => {
                if depth > 0 {
                    // Nested nil interface values print as <nil> whatever the verb.
                    if self.f.sharp_v {
                        self.pad_str("interface {}(nil)");
                    } else {
                        self.pad_str("<nil>");
                    }
                } else {
                    match verb {
                        'v' => self.pad_str("<nil>"),
                        _ => self.bad_verb_for(verb, None),
                    }
                }
            }
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad_str(if *b { "true" } else { "false" }),
                _ => self.bad_verb_for(verb, Some(arg)),
            },
            Value::Number(n) => match num(n) {
                Num::Int(i) => self.fmt_integer(i, verb, arg),
                Num::Float(x) => self.fmt_float(x, verb, arg),
            },
            Value::String(s) => match verb {
                'v' => {
                    if self.f.sharp_v {
                        self.fmt_q(s);
                    } else {
                        self.fmt_s(s);
                    }
                }
                's' => self.fmt_s(s),
                'x' => self.fmt_sx(s, false),
                'X' => self.fmt_sx(s, true),
                'q' => self.fmt_q(s),
                _ => self.bad_verb_for(verb, Some(arg)),
            },
            Value::Array(a) => {
                let (open, sep, close) = if self.f.sharp_v {
                    ("[]interface {}{", ", ", "}")
                } else {
                    ("[", " ", "]")
                };
                self.buf.push_str(open);
                for (k, e) in a.iter().enumerate() {
                    if k > 0 {
                        self.buf.push_str(sep);
                    }
                    self.print_arg(Some(e), verb, depth + 1);
                }
                self.buf.push_str(close);
            }
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let (open, sep, close) = if self.f.sharp_v {
                    ("map[string]interface {}{", ", ", "}")
                } else {
                    ("map[", " ", "]")
                };
                self.buf.push_str(open);
                for (k, key) in keys.iter().enumerate() {
                    if k > 0 {
                        self.buf.push_str(sep);
                    }
                    let kv = Value::String((*key).clone());
                    self.print_arg(Some(&kv), verb, depth + 1);
                    self.buf.push(':');
                    self.print_arg(m.get(*key), verb, depth + 1);
                }
                self.buf.push_str(close);
            }
        }
    }

    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero { '0' } else { ' ' };
        for _ in 0..n {
            self.buf.push(c);
        }
    }

    /// Pad to the width (counted in runes), left or right.
    fn pad_str(&mut self, s: &str) {
        let Some(w) = self.f.wid else {
            self.buf.push_str(s);
            return;
        };
        let n = s.chars().count();
        if n >= w {
            self.buf.push_str(s);
        } else if self.f.minus {
            self.buf.push_str(s);
            // Left-justified: always pad with spaces.
            for _ in 0..w - n {
                self.buf.push(' ');
            }
        } else {
            self.write_padding(w - n);
            self.buf.push_str(s);
        }
    }

    fn fmt_s(&mut self, s: &str) {
        match self.f.prec {
            Some(p) => {
                let t: String = s.chars().take(p).collect();
                self.pad_str(&t);
            }
            None => self.pad_str(s),
        }
    }

    fn fmt_sx(&mut self, s: &str, upper: bool) {
        let bytes = s.as_bytes();
        let bytes = match self.f.prec {
            Some(p) if p < bytes.len() => &bytes[..p],
            _ => bytes,
        };
        let mut out = String::new();
        for (k, b) in bytes.iter().enumerate() {
            if self.f.space && k > 0 {
                out.push(' ');
            }
            if self.f.sharp && (self.f.space || k == 0) {
                out.push_str(if upper { "0X" } else { "0x" });
            }
            if upper {
                out.push_str(&format!("{b:02X}"));
            } else {
                out.push_str(&format!("{b:02x}"));
            }
        }
        self.pad_str(&out);
    }

    fn fmt_q(&mut self, s: &str) {
        let s: String = match self.f.prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.to_string(),
        };
        if self.f.sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || !c.is_control()) {
            self.pad_str(&format!("`{s}`"));
            return;
        }
        let q = go_quote(&s, self.f.plus, '"');
        self.pad_str(&q);
    }

    fn fmt_integer(&mut self, i: i64, verb: char, arg: &Value) {
        let neg = i < 0;
        let u = i.unsigned_abs();
        let digits = match verb {
            'v' if self.f.sharp_v => u.to_string(),
            'v' | 'd' => u.to_string(),
            'b' => format!("{u:b}"),
            'o' | 'O' => format!("{u:o}"),
            'x' => format!("{u:x}"),
            'X' => format!("{u:X}"),
            'c' => {
                let c = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                self.pad_str(&c.to_string());
                return;
            }
            'q' => {
                let c = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                let q = go_quote(&c.to_string(), self.f.plus, '\'');
                self.pad_str(&q);
                return;
            }
            'U' => {
                let mut s = format!("U+{u:04X}");
                if let Some(c) = u32::try_from(i).ok().and_then(char::from_u32)
                    && self.f.sharp
                    && !c.is_control()
                {
                    s.push_str(&format!(" '{c}'"));
                }
                self.pad_str(&s);
                return;
            }
            _ => {
                self.bad_verb_for(verb, Some(arg));
                return;
            }
        };
        // Precision: minimum digits; %.0d of 0 is empty.
        let mut body = digits;
        let mut zero_pad_to = None;
        match self.f.prec {
            Some(0) if i == 0 => body.clear(),
            Some(p) => {
                if body.len() < p {
                    body = "0".repeat(p - body.len()) + &body;
                }
            }
            None => {
                if self.f.zero && !self.f.minus {
                    zero_pad_to = self.f.wid;
                }
            }
        }
        let mut prefix = String::new();
        if neg {
            prefix.push('-');
        } else if self.f.plus {
            prefix.push('+');
        } else if self.f.space {
            prefix.push(' ');
        }
        if self.f.sharp {
            match verb {
                'b' => prefix.push_str("0b"),
                'o' if !body.starts_with('0') => prefix.push('0'),
                'x' => prefix.push_str("0x"),
                'X' => prefix.push_str("0X"),
                _ => {}
            }
        }
        if verb == 'O' {
            prefix.push_str("0o");
        }
        if let Some(w) = zero_pad_to {
            let len = prefix.chars().count() + body.len();
            if w > len {
                body = "0".repeat(w - len) + &body;
            }
        }
        let s = prefix + &body;
        let saved_zero = self.f.zero;
        self.f.zero = false;
        self.pad_str(&s);
        self.f.zero = saved_zero;
    }

    fn fmt_float(&mut self, x: f64, verb: char, arg: &Value) {
        let (fverb, prec) = match verb {
            'v' => ('g', None),
            'g' | 'G' => (verb, self.f.prec),
            'f' | 'e' | 'E' => (verb, Some(self.f.prec.unwrap_or(6))),
            _ => {
                self.bad_verb_for(verb, Some(arg));
                return;
            }
        };
        let mut num = format_float(x, fverb, prec);
        if self.f.sharp && verb != 'v' && !num.contains('.') {
            // %#g / %#f / %#e always have a decimal point.
            if let Some(epos) = num.find(['e', 'E']) {
                num.insert(epos, '.');
            } else {
                num.push('.');
            }
        }
        let (sign, digits) = match num.strip_prefix('-') {
            Some(rest) => ("-", rest.to_string()),
            None => ("+", num),
        };
        let sign = if sign == "+" && self.f.space && !self.f.plus {
            " "
        } else {
            sign
        };
        if self.f.plus || sign != "+" {
            let show = if sign == "+" && !self.f.plus {
                ""
            } else {
                sign
            };
            if let Some(w) = self.f.wid
                && self.f.zero
                && !self.f.minus
                && w > 1 + digits.len()
            {
                self.buf.push_str(sign);
                self.write_padding(w - 1 - digits.len());
                self.buf.push_str(&digits);
                return;
            }
            let s = format!("{show}{digits}");
            self.pad_str(&s);
            return;
        }
        self.pad_str(&digits);
    }
}

fn int_from_arg(args: &[&Value], arg_num: &mut usize) -> (Option<i64>, bool) {
    if *arg_num >= args.len() {
        return (None, false);
    }
    let v = args[*arg_num];
    *arg_num += 1;
    match v {
        Value::Number(n) => match num(n) {
            Num::Int(i) if i.unsigned_abs() <= 1_000_000 => (Some(i), true),
            _ => (None, false),
        },
        _ => (None, false),
    }
}

/// strconv.Quote-like quoting (`'` for runes, `"` for strings); `ascii` escapes non-ASCII.
fn go_quote(s: &str, ascii: bool, quote: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || (ascii && !c.is_ascii()) => {
                let u = c as u32;
                if u < 0x10000 {
                    out.push_str(&format!("\\u{u:04x}"));
                } else {
                    out.push_str(&format!("\\U{u:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Decimal digits and decimal-point position of `x` (|x|), rounded to `sig` significant digits
/// (shortest round-trip digits when None), trailing zeros trimmed. `x = 0.d1d2... * 10^dp`.
fn digits_of(x: f64, sig: Option<usize>) -> (String, i32) {
    let x = x.abs();
    if x == 0.0 {
        return ("0".to_string(), 1);
    }
    let s = match sig {
        None => format!("{x:e}"),
        Some(p) => format!("{:.*e}", p.saturating_sub(1), x),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (digits, exp + 1)
}

fn fmt_e(neg: bool, digits: &str, prec: usize, e: char, dp: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let mut it = digits.chars();
    out.push(it.next().unwrap_or('0'));
    if prec > 0 {
        out.push('.');
        let rest: Vec<char> = it.collect();
        for k in 0..prec {
            out.push(rest.get(k).copied().unwrap_or('0'));
        }
    }
    out.push(e);
    let exp = if digits == "0" { 0 } else { dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

fn fmt_f(neg: bool, digits: &str, prec: usize, dp: i32) -> String {
    let d: Vec<char> = digits.chars().collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if dp > 0 {
        let dpu = dp as usize;
        for k in 0..dpu {
            out.push(d.get(k).copied().unwrap_or('0'));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for k in 1..=prec {
            let j = dp as i64 + k as i64 - 1;
            let c = if j >= 0 {
                d.get(j as usize).copied().unwrap_or('0')
            } else {
                '0'
            };
            out.push(c);
        }
    }
    out
}

/// strconv.FormatFloat(x, verb, prec, 64) for verbs f, e, E, g, G (prec None = shortest).
pub fn format_float(x: f64, verb: char, prec: Option<usize>) -> String {
    let neg = x.is_sign_negative();
    match verb {
        'f' => match prec {
            Some(p) => format!("{x:.p$}"),
            None => {
                let s = format!("{x}");
                if s == "-0" || (neg && x == 0.0) {
                    "-0".to_string()
                } else {
                    s
                }
            }
        },
        'e' | 'E' => {
            let (digits, dp) = match prec {
                Some(p) => digits_of(x, Some(p + 1)),
                None => digits_of(x, None),
            };
            let p = prec.unwrap_or(digits.len().saturating_sub(1));
            fmt_e(neg, &digits, p, verb, dp)
        }
        _ => {
            // g / G
            let e = if verb == 'G' { 'E' } else { 'e' };
            let shortest = prec.is_none();
            let mut p = match prec {
                Some(0) => 1,
                Some(p) => p,
                None => 0,
            };
            let (digits, dp) = digits_of(x, if shortest { None } else { Some(p) });
            let nd = digits.len() as i32;
            if shortest {
                p = nd as usize;
            }
            let mut eprec = p as i32;
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            if exp < -4 || exp >= eprec {
                let pp = (p as i32).min(nd);
                return fmt_e(neg, &digits, (pp - 1).max(0) as usize, e, dp);
            }
            let pp = if p as i32 > dp { nd } else { p as i32 };
            fmt_f(neg, &digits, (pp - dp).max(0) as usize, dp)
        }
    }
}

/// `encoding/json.Marshal(v)` as Go writes it: sorted object keys, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped, floats in Go's shortest form (`2.5`, `1e+21`, `1e-7`).
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match num(n) {
            Num::Int(i) => out.push_str(&i.to_string()),
            Num::Float(f) => out.push_str(&go_json_float(f)),
        },
        Value::String(s) => write_json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (k, e) in a.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                write_json(e, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (k, key) in keys.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                if let Some(val) = m.get(*key) {
                    write_json(val, out);
                }
            }
            out.push('}');
        }
    }
}

/// Go's JSON float encoding.
pub fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format_float(f, 'e', None);
        // Clean up e-09 to e-9.
        let b = s.as_bytes();
        let n = b.len();
        if n >= 4 && b[n - 4] == b'e' && b[n - 3] == b'-' && b[n - 2] == b'0' {
            let mut t = s[..n - 2].to_string();
            t.push(b[n - 1] as char);
            return t;
        }
        return s;
    }
    format_float(f, 'f', None)
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sp(f: &str, args: &[Value]) -> String {
        let refs: Vec<&Value> = args.iter().collect();
        sprintf(f, &refs)
    }

    #[test]
    fn go_fmt_verbs() {
        // Expected outputs are what Go's fmt.Sprintf prints for the same arguments.
        let cases: Vec<(&str, Vec<Value>, &str)> = vec![
            ("db-%s", vec![json!("x")], "db-x"),
            ("%s-%s", vec![json!("a"), json!("b")], "a-b"),
            ("%d GiB", vec![json!(20)], "20 GiB"),
            ("%v", vec![json!(20)], "20"),
            ("%v", vec![json!(2.5)], "2.5"),
            ("%v", vec![json!(1e6)], "1e+06"),
            ("%v", vec![json!(123456.0)], "123456"),
            ("%v", vec![json!(1234567.0)], "1.234567e+06"),
            ("%v", vec![json!(0.0001)], "0.0001"),
            ("%v", vec![json!(0.00001)], "1e-05"),
            ("%v", vec![json!(true)], "true"),
            ("%v", vec![Value::Null], "<nil>"),
            ("%v", vec![json!(["a", 1, 2.5])], "[a 1 2.5]"),
            ("%v", vec![json!({"b": 1, "a": "x"})], "map[a:x b:1]"),
            (
                "%v",
                vec![json!({"a": [1, {"c": null}]})],
                "map[a:[1 map[c:<nil>]]]",
            ),
            ("%+v", vec![json!(5)], "5"),
            ("%q", vec![json!("a\"b\n")], "\"a\\\"b\\n\""),
            ("%x", vec![json!("hi")], "6869"),
            ("%X", vec![json!(255)], "FF"),
            ("%x", vec![json!(-255)], "-ff"),
            ("%#x", vec![json!(255)], "0xff"),
            ("%o", vec![json!(8)], "10"),
            ("%b", vec![json!(5)], "101"),
            ("%c", vec![json!(65)], "A"),
            ("%q", vec![json!(65)], "'A'"),
            ("%U", vec![json!(65)], "U+0041"),
            ("%f", vec![json!(2.5)], "2.500000"),
            ("%.2f", vec![json!(2.345)], "2.35"),
            ("%.2f", vec![json!(0.125)], "0.12"),
            ("%.0f", vec![json!(2.5)], "2"),
            ("%.1f", vec![json!(3.0)], "3.0"),
            ("%e", vec![json!(123456.0)], "1.234560e+05"),
            ("%E", vec![json!(0.5)], "5.000000E-01"),
            ("%g", vec![json!(0.5)], "0.5"),
            ("%.3g", vec![json!(1.0)], "1"),
            ("%.3g", vec![json!(1234.5)], "1.23e+03"),
            ("%t", vec![json!(false)], "false"),
            ("%T", vec![json!("x")], "string"),
            ("%T", vec![json!(1)], "int64"),
            ("%T", vec![json!(1.5)], "float64"),
            ("%T", vec![json!({})], "map[string]interface {}"),
            ("%T", vec![json!([])], "[]interface {}"),
            ("%T", vec![Value::Null], "<nil>"),
            ("%%", vec![], "%"),
            ("100%%", vec![], "100%"),
            ("%5s|", vec![json!("ab")], "   ab|"),
            ("%-5s|", vec![json!("ab")], "ab   |"),
            ("%.2s", vec![json!("abcd")], "ab"),
            ("%05d", vec![json!(42)], "00042"),
            ("%05d", vec![json!(-42)], "-0042"),
            ("%+d", vec![json!(42)], "+42"),
            ("% d", vec![json!(42)], " 42"),
            ("%.3d", vec![json!(7)], "007"),
            ("%6.2f", vec![json!(4.56789)], "  4.57"),
            ("%06.2f", vec![json!(-4.56789)], "-04.57"),
            ("%+.1f", vec![json!(2.0)], "+2.0"),
            ("%#v", vec![json!("x")], "\"x\""),
            ("%#v", vec![json!([1, "a"])], "[]interface {}{1, \"a\"}"),
            ("%[2]s-%[1]s", vec![json!("a"), json!("b")], "b-a"),
            ("%[1]s-%[1]s", vec![json!("a")], "a-a"),
            ("%*d", vec![json!(4), json!(7)], "   7"),
            // Mismatches, the Go way.
            ("%d", vec![json!("abc")], "%!d(string=abc)"),
            ("%s", vec![json!(20)], "%!s(int64=20)"),
            ("%s", vec![json!(2.5)], "%!s(float64=2.5)"),
            ("%d", vec![json!(2.5)], "%!d(float64=2.5)"),
            ("%f", vec![json!(2)], "%!f(int64=2)"),
            ("%t", vec![json!("x")], "%!t(string=x)"),
            ("%s", vec![Value::Null], "%!s(<nil>)"),
            ("%d", vec![json!(["a", 1])], "[%!d(string=a) 1]"),
            ("%s-%s", vec![json!("a")], "a-%!s(MISSING)"),
            ("%s", vec![json!("a"), json!(1)], "a%!(EXTRA int64=1)"),
            (
                "x",
                vec![json!("a"), Value::Null],
                "x%!(EXTRA string=a, <nil>)",
            ),
            ("%[3]s", vec![json!("a")], "%!s(BADINDEX)"),
            ("%", vec![], "%!(NOVERB)"),
            ("%z", vec![json!(1)], "%!z(int64=1)"),
            ("héllo %s", vec![json!("wörld")], "héllo wörld"),
        ];
        for (f, args, want) in cases {
            assert_eq!(sp(f, &args), want, "format {f:?} args {args:?}");
        }
    }

    #[test]
    fn go_json_marshal() {
        assert_eq!(
            go_json(&json!({"b": 1, "a": [true, null, 2.5]})),
            r#"{"a":[true,null,2.5],"b":1}"#
        );
        assert_eq!(go_json(&json!("<a&b>")), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(go_json(&json!("tab\there\u{1}")), r#""tab\there\u0001""#);
        assert_eq!(go_json(&json!(1e21)), "1e+21");
        assert_eq!(go_json(&json!(1e-7)), "1e-7");
        assert_eq!(go_json(&json!(0.000001)), "0.000001");
        assert_eq!(go_json(&json!(123456789.5)), "123456789.5");
        assert_eq!(go_json(&json!(-0.5)), "-0.5");
    }

    #[test]
    fn format_float_shortest() {
        assert_eq!(format_float(1e21, 'f', None), "1000000000000000000000");
        assert_eq!(format_float(0.1, 'f', None), "0.1");
        assert_eq!(format_float(2.0, 'f', None), "2");
        assert_eq!(format_float(1.5e-7, 'e', None), "1.5e-07");
        assert_eq!(format_float(0.0, 'g', None), "0");
        assert_eq!(format_float(100.0, 'g', None), "100");
    }
}
