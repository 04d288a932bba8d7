//! Rust type text (as the ABI records it) → TypeScript types.
//!
//! The ABI keeps parameter, return and field types as the source wrote
//! them (`Option<Vec<(String, i64)>>`, `&str`, `[u8; 32]`). [`parse`] reads
//! that text into a [`RustType`] tree with a small recursive-descent
//! parser; [`Mapper::map`] turns the tree into the TypeScript type of the
//! value's JSON form (serde's default encoding, which is what the node
//! sends and expects).

use std::fmt::Write;

/// A parsed Rust type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustType {
    /// `()`.
    Unit,
    /// `(A, B, ...)`.
    Tuple(Vec<RustType>),
    /// `&T`, `&'a T`, `&mut T`.
    Ref(Box<RustType>),
    /// `[T]`.
    Slice(Box<RustType>),
    /// `[T; N]`.
    Array(Box<RustType>),
    /// `a::b::Name<Args>`; lifetimes among the arguments are dropped.
    Path {
        /// The segments, `["std", "collections", "HashMap"]`.
        segments: Vec<String>,
        /// Type arguments of the last segment.
        args: Vec<RustType>,
    },
}

impl RustType {
    /// The last path segment, for a path type.
    pub fn name(&self) -> Option<&str> {
        match self {
            RustType::Path { segments, .. } => segments.last().map(String::as_str),
            _ => None,
        }
    }
}

/// Why a type's text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the Rust type `{text}`: {reason}")]
pub struct TypeError {
    /// The text.
    pub text: String,
    /// What was wrong.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Lifetime,
    Punct(char),
    /// `::`
    PathSep,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || c == '_' || c == '#' {
                    word.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Tok::Ident(word.trim_start_matches("r#").to_owned()));
        } else if c == '\'' {
            chars.next();
            while chars
                .peek()
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                chars.next();
            }
            out.push(Tok::Lifetime);
        } else if c == ':' {
            chars.next();
            if chars.next() != Some(':') {
                return Err("a single `:`".into());
            }
            out.push(Tok::PathSep);
        } else if c.is_ascii_punctuation() {
            // Only `<>,()[];&` mean something in a type; others may appear
            // in an array length (`[u8; N * 2]`) and are refused elsewhere.
            chars.next();
            out.push(Tok::Punct(c));
        } else {
            return Err(format!("unexpected `{c}`"));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected `{c}`"))
        }
    }

    fn ty(&mut self) -> Result<RustType, String> {
        match self.peek() {
            Some(Tok::Punct('&')) => {
                self.pos += 1;
                if self.peek() == Some(&Tok::Lifetime) {
                    self.pos += 1;
                }
                if self.peek() == Some(&Tok::Ident("mut".into())) {
                    self.pos += 1;
                }
                Ok(RustType::Ref(Box::new(self.ty()?)))
            }
            Some(Tok::Punct('(')) => {
                self.pos += 1;
                let mut items = Vec::new();
                let mut trailing_comma = false;
                while !self.eat(')') {
                    items.push(self.ty()?);
                    trailing_comma = self.eat(',');
                    if !trailing_comma && self.peek() != Some(&Tok::Punct(')')) {
                        return Err("expected `,` or `)` in a tuple".into());
                    }
                }
                Ok(match items.len() {
                    0 => RustType::Unit,
                    // `(T)` is T in parentheses; `(T,)` a one-tuple.
                    1 if !trailing_comma => items.pop().expect("one item"),
                    _ => RustType::Tuple(items),
                })
            }
            Some(Tok::Punct('[')) => {
                self.pos += 1;
                let elem = Box::new(self.ty()?);
                if self.eat(']') {
                    return Ok(RustType::Slice(elem));
                }
                self.expect(';')?;
                // The length is an expression: skip to the matching `]`.
                let mut depth = 0usize;
                loop {
                    match self.next() {
                        Some(Tok::Punct('[')) => depth += 1,
                        Some(Tok::Punct(']')) if depth == 0 => break,
                        Some(Tok::Punct(']')) => depth -= 1,
                        Some(_) => {}
                        None => return Err("unclosed `[`".into()),
                    }
                }
                Ok(RustType::Array(elem))
            }
            Some(Tok::Ident(_)) | Some(Tok::PathSep) => self.path(),
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end".into()),
        }
    }

    fn path(&mut self) -> Result<RustType, String> {
        let mut segments = Vec::new();
        let mut args = Vec::new();
        if self.peek() == Some(&Tok::PathSep) {
            self.pos += 1;
        }
        loop {
            match self.next() {
                Some(Tok::Ident(word)) => {
                    if matches!(word.as_str(), "dyn" | "impl" | "fn" | "mut") {
                        return Err(format!("`{word}` types have no JSON form"));
                    }
                    segments.push(word);
                }
                _ => return Err("expected a type name".into()),
            }
            // Generic arguments (`Name<..>` or `Name::<..>`) end the path
            // for our purposes; only the last segment's are kept.
            if self.peek() == Some(&Tok::PathSep)
                && self.toks.get(self.pos + 1) == Some(&Tok::Punct('<'))
            {
                self.pos += 1;
            }
            if self.eat('<') {
                args.clear();
                while !self.eat('>') {
                    if self.peek() == Some(&Tok::Lifetime) {
                        self.pos += 1;
                    } else {
                        args.push(self.ty()?);
                    }
                    if !self.eat(',') && self.peek() != Some(&Tok::Punct('>')) {
                        return Err("expected `,` or `>` in generic arguments".into());
                    }
                }
            }
            if self.peek() == Some(&Tok::PathSep) {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(RustType::Path { segments, args })
    }
}

/// Parses Rust type text.
///
/// ```
/// use cargo_mero::bindings::types::{parse, RustType};
/// let t = parse("Option<Vec<(String, i64)>>").unwrap();
/// assert_eq!(t.name(), Some("Option"));
/// assert!(parse("Vec<").is_err());
/// ```
pub fn parse(text: &str) -> Result<RustType, TypeError> {
    let fail = |reason: String| TypeError {
        text: text.to_owned(),
        reason,
    };
    let toks = tokenize(text).map_err(fail)?;
    let mut p = Parser { toks, pos: 0 };
    let ty = p.ty().map_err(fail)?;
    if p.pos != p.toks.len() {
        return Err(fail("unexpected text after the type".into()));
    }
    Ok(ty)
}

/// A TypeScript type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ts {
    /// `string`, `number`, `boolean`, `null`, `unknown`, `void`.
    Prim(&'static str),
    /// `unknown`, with a comment naming the Rust type it stands for.
    Opaque(String),
    /// `T[]`.
    Array(Box<Ts>),
    /// `[A, B]`.
    Tuple(Vec<Ts>),
    /// `Record<string, V>`.
    Record(Box<Ts>),
    /// `A | B`.
    Union(Vec<Ts>),
    /// A type these bindings define (`LedgerEvent`).
    Named(String),
    /// `{ "k": T; ... }` (field name, type, optional).
    Object(Vec<(String, Ts, bool)>),
    /// A string literal type.
    Literal(String),
}

impl Ts {
    fn is_union(&self) -> bool {
        matches!(self, Ts::Union(v) if v.len() > 1)
    }

    /// `T | null`, without doubling a `null` already there.
    pub fn nullable(self) -> Ts {
        match self {
            Ts::Prim("null" | "unknown") => self,
            Ts::Union(mut v) => {
                if !v.contains(&Ts::Prim("null")) {
                    v.push(Ts::Prim("null"));
                }
                Ts::Union(v)
            }
            t => Ts::Union(vec![t, Ts::Prim("null")]),
        }
    }

    /// The type as TypeScript source.
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    fn write(&self, out: &mut String) {
        match self {
            Ts::Prim(p) => out.push_str(p),
            Ts::Opaque(rust) => {
                let _ = write!(out, "unknown /* {} */", rust.replace("*/", "* /"));
            }
            Ts::Array(inner) => {
                if inner.is_union() {
                    out.push('(');
                    inner.write(out);
                    out.push(')');
                } else {
                    inner.write(out);
                }
                out.push_str("[]");
            }
            Ts::Tuple(items) => {
                out.push('[');
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    t.write(out);
                }
                out.push(']');
            }
            Ts::Record(v) => {
                out.push_str("Record<string, ");
                v.write(out);
                out.push('>');
            }
            Ts::Union(items) => {
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" | ");
                    }
                    t.write(out);
                }
            }
            Ts::Named(n) => out.push_str(n),
            Ts::Object(fields) => {
                if fields.is_empty() {
                    out.push_str("Record<string, never>");
                    return;
                }
                out.push_str("{ ");
                for (i, (name, t, optional)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str("; ");
                    }
                    out.push_str(&property_name(name));
                    out.push_str(if *optional { "?: " } else { ": " });
                    t.write(out);
                }
                out.push_str(" }");
            }
            Ts::Literal(s) => {
                out.push_str(&serde_json::to_string(s).expect("strings serialize"));
            }
        }
    }
}

/// A property name as TypeScript source: bare when it is an identifier,
/// else quoted.
pub fn property_name(name: &str) -> String {
    let ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident {
        name.to_owned()
    } else {
        serde_json::to_string(name).expect("strings serialize")
    }
}

/// Integer types whose values JavaScript numbers hold exactly only up to
/// 2^53.
const WIDE_INTS: &[&str] = &["i64", "u64", "i128", "u128"];

/// Turns Rust types into TypeScript ones, knowing the named types the
/// bindings define.
#[derive(Debug, Default)]
pub struct Mapper {
    /// Rust name → TypeScript type, for the app's own types the ABI
    /// describes (its event enum, its error enums).
    pub named: Vec<(String, Ts)>,
}

impl Mapper {
    /// The TypeScript type of a value of Rust type `text`; text that does
    /// not parse maps to `unknown` (with a comment naming it).
    ///
    /// ```
    /// use cargo_mero::bindings::types::Mapper;
    /// let m = Mapper::default();
    /// assert_eq!(m.map_text("Option<Vec<(String, u32)>>").render(), "[string, number][] | null");
    /// assert_eq!(m.map_text("MyStruct").render(), "unknown /* MyStruct */");
    /// ```
    pub fn map_text(&self, text: &str) -> Ts {
        match parse(text) {
            Ok(t) => self.map(&t),
            Err(_) => Ts::Opaque(text.to_owned()),
        }
    }

    /// The TypeScript type of a value of type `t`.
    pub fn map(&self, t: &RustType) -> Ts {
        match t {
            RustType::Unit => Ts::Prim("null"),
            RustType::Tuple(items) => Ts::Tuple(items.iter().map(|i| self.map(i)).collect()),
            RustType::Ref(inner) => self.map(inner),
            RustType::Slice(inner) | RustType::Array(inner) => Ts::Array(Box::new(self.map(inner))),
            RustType::Path { segments, args } => self.map_path(segments, args),
        }
    }

    fn map_path(&self, segments: &[String], args: &[RustType]) -> Ts {
        let name = segments.last().map(String::as_str).unwrap_or_default();
        let arg = |i: usize| args.get(i).map(|a| self.map(a));
        let opaque = || Ts::Opaque(render_path(segments, args));
        match (name, args.len()) {
            ("String" | "str" | "char" | "PathBuf" | "Path" | "OsString", 0) => Ts::Prim("string"),
            // SDK types whose JSON form is a string (`blob:…`, base58, a tree
            // node id).
            ("BlobId" | "ContextId" | "NodeId", 0) => Ts::Prim("string"),
            ("bool", 0) => Ts::Prim("boolean"),
            (
                "u8" | "u16" | "u32" | "i8" | "i16" | "i32" | "f32" | "f64" | "usize" | "isize"
                | "i64" | "u64" | "i128" | "u128",
                0,
            ) => Ts::Prim("number"),
            (n, 0) if n.starts_with("NonZero") => Ts::Prim("number"),
            ("Value", 0) if segments.len() == 1 || segments[0] == "serde_json" => {
                Ts::Prim("unknown")
            }
            ("Option", 1) => arg(0).expect("one argument").nullable(),
            ("Box" | "Rc" | "Arc" | "Cow", 1) => arg(0).expect("one argument"),
            (
                "Vec" | "VecDeque" | "LinkedList" | "HashSet" | "BTreeSet" | "BinaryHeap"
                | "IndexSet",
                1..=2,
            ) => Ts::Array(Box::new(arg(0).expect("an argument"))),
            ("HashMap" | "BTreeMap" | "IndexMap" | "Map", 2..=3) => {
                // serde_json writes string and integer keys as strings;
                // any other key type fails to serialize.
                let key_ok = match &args[0] {
                    RustType::Ref(inner) => key_type(inner),
                    k => key_type(k),
                };
                if key_ok {
                    Ts::Record(Box::new(arg(1).expect("two arguments")))
                } else {
                    opaque()
                }
            }
            ("Result", 2) => Ts::Union(vec![
                Ts::Object(vec![("Ok".into(), arg(0).expect("two"), false)]),
                Ts::Object(vec![("Err".into(), arg(1).expect("two"), false)]),
            ]),
            (n, 0) => self
                .named
                .iter()
                .find(|(rust, _)| rust == n)
                .map(|(_, ts)| ts.clone())
                .unwrap_or_else(opaque),
            _ => opaque(),
        }
    }

    /// Whether a value of `text` may lose precision as a JavaScript number.
    pub fn is_wide(text: &str) -> bool {
        fn wide(t: &RustType) -> bool {
            match t {
                RustType::Unit => false,
                RustType::Tuple(v) => v.iter().any(wide),
                RustType::Ref(i) | RustType::Slice(i) | RustType::Array(i) => wide(i),
                RustType::Path { segments, args } => {
                    segments
                        .last()
                        .is_some_and(|n| WIDE_INTS.contains(&n.as_str()))
                        || args.iter().any(wide)
                }
            }
        }
        parse(text).is_ok_and(|t| wide(&t))
    }
}

fn key_type(t: &RustType) -> bool {
    matches!(
        t.name(),
        Some(
            "String"
                | "str"
                | "char"
                | "u8"
                | "u16"
                | "u32"
                | "u64"
                | "u128"
                | "usize"
                | "i8"
                | "i16"
                | "i32"
                | "i64"
                | "i128"
                | "isize"
                | "BlobId"
                | "ContextId"
                | "NodeId"
        )
    )
}

fn render_path(segments: &[String], args: &[RustType]) -> String {
    let mut s = segments.join("::");
    if !args.is_empty() {
        s.push('<');
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&render_rust(a));
        }
        s.push('>');
    }
    s
}

fn render_rust(t: &RustType) -> String {
    match t {
        RustType::Unit => "()".into(),
        RustType::Tuple(v) => format!(
            "({})",
            v.iter().map(render_rust).collect::<Vec<_>>().join(", ")
        ),
        RustType::Ref(i) => format!("&{}", render_rust(i)),
        RustType::Slice(i) => format!("[{}]", render_rust(i)),
        RustType::Array(i) => format!("[{}; _]", render_rust(i)),
        RustType::Path { segments, args } => render_path(segments, args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> String {
        Mapper::default().map_text(text).render()
    }

    #[test]
    fn parses_generics_references_tuples_and_arrays() {
        let path = |s: &[&str], args: Vec<RustType>| RustType::Path {
            segments: s.iter().map(|s| s.to_string()).collect(),
            args,
        };
        assert_eq!(
            parse("std::collections::HashMap<String, Vec<u8>>").unwrap(),
            path(
                &["std", "collections", "HashMap"],
                vec![
                    path(&["String"], vec![]),
                    path(&["Vec"], vec![path(&["u8"], vec![])])
                ]
            )
        );
        assert_eq!(
            parse("&'a mut str").unwrap(),
            RustType::Ref(Box::new(path(&["str"], vec![])))
        );
        assert_eq!(parse("( )").unwrap(), RustType::Unit);
        assert_eq!(parse("(u8)").unwrap(), path(&["u8"], vec![]));
        assert_eq!(
            parse("(u8,)").unwrap(),
            RustType::Tuple(vec![path(&["u8"], vec![])])
        );
        assert_eq!(
            parse("[u8 ; 32]").unwrap(),
            RustType::Array(Box::new(path(&["u8"], vec![])))
        );
        assert_eq!(
            parse("[[u8; N * 2]; M]").unwrap(),
            RustType::Array(Box::new(RustType::Array(Box::new(path(&["u8"], vec![])))))
        );
        // `>>` closes two lists; lifetimes among arguments are dropped.
        assert_eq!(
            parse("Cow<'static, Option<Vec<i64>>>").unwrap(),
            path(
                &["Cow"],
                vec![path(
                    &["Option"],
                    vec![path(&["Vec"], vec![path(&["i64"], vec![])])]
                )]
            )
        );
        assert_eq!(parse("Vec::<r#type>").unwrap().name(), Some("Vec"));
        for bad in [
            "",
            "Vec<",
            "Vec<u8",
            "(u8",
            "[u8; 3",
            "a:b",
            "u8 u8",
            "dyn Fn()",
            "impl Iterator",
            "fn(u8)",
            "Vec<u8>>",
            "Vec<u8> + Send",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn maps_rust_types_to_their_json_forms() {
        for (rust, want) in [
            ("String", "string"),
            ("&str", "string"),
            ("&'a str", "string"),
            ("char", "string"),
            ("bool", "boolean"),
            ("u8", "number"),
            ("i32", "number"),
            ("f64", "number"),
            ("usize", "number"),
            ("i64", "number"),
            ("u128", "number"),
            ("std::num::NonZeroU32", "number"),
            ("()", "null"),
            ("Option<String>", "string | null"),
            ("Option<Option<u8>>", "number | null"),
            ("Vec<String>", "string[]"),
            ("&[u8]", "number[]"),
            ("[u8; 32]", "number[]"),
            ("Vec<Option<u8>>", "(number | null)[]"),
            ("std::collections::VecDeque<bool>", "boolean[]"),
            ("HashSet<String>", "string[]"),
            ("BTreeSet<u32>", "number[]"),
            ("HashMap<String, i64>", "Record<string, number>"),
            ("BTreeMap<u32, Vec<String>>", "Record<string, string[]>"),
            ("BTreeMap<&str, bool>", "Record<string, boolean>"),
            (
                "HashMap<(u8, u8), bool>",
                "unknown /* HashMap<(u8, u8), bool> */",
            ),
            ("(String, i64)", "[string, number]"),
            ("Vec<(String, String, bool)>", "[string, string, boolean][]"),
            ("serde_json::Value", "unknown"),
            ("Value", "unknown"),
            ("Box<str>", "string"),
            ("std::sync::Arc<Vec<u8>>", "number[]"),
            ("BlobId", "string"),
            ("mero_sdk::blob::BlobId", "string"),
            ("ContextId", "string"),
            ("Option<NodeId>", "string | null"),
            ("Result<u8, String>", "{ Ok: number } | { Err: string }"),
            ("Item", "unknown /* Item */"),
            ("Vec<my::Item>", "unknown /* my::Item */[]"),
            ("Wrapper<u8>", "unknown /* Wrapper<u8> */"),
            ("dyn Any", "unknown /* dyn Any */"),
        ] {
            assert_eq!(ts(rust), want, "{rust}");
        }
    }

    #[test]
    fn named_types_of_the_abi_are_used_and_wide_integers_noticed() {
        let m = Mapper {
            named: vec![("Event".into(), Ts::Named("LedgerEvent".into()))],
        };
        assert_eq!(m.map_text("Vec<Event>").render(), "LedgerEvent[]");
        assert_eq!(m.map_text("crate::Event").render(), "LedgerEvent");
        assert!(Mapper::is_wide("Vec<(String, i64)>"));
        assert!(Mapper::is_wide("u64"));
        assert!(!Mapper::is_wide("Vec<(String, i32)>"));
        assert!(!Mapper::is_wide("Option<usize>"));
    }

    #[test]
    fn objects_quote_names_that_are_not_identifiers() {
        let t = Ts::Object(vec![
            ("key".into(), Ts::Prim("string"), false),
            ("0".into(), Ts::Prim("number"), true),
            ("a-b".into(), Ts::Prim("null"), false),
        ]);
        assert_eq!(t.render(), r#"{ key: string; "0"?: number; "a-b": null }"#);
        assert_eq!(Ts::Object(vec![]).render(), "Record<string, never>");
        assert_eq!(
            Ts::Prim("string").nullable().nullable().render(),
            "string | null"
        );
    }
}
