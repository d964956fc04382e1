//! A small evaluator for the subset of Go's text/template that docker `--format` users write:
//! `{{.A.B}}`, `{{json .X}}`, `{{index .X "k"}}`, `{{join .X ","}}`, `{{range .X}}…{{end}}`,
//! `{{if}}…{{else}}…{{end}}`, `{{with}}`, pipes (`{{.X | json}}`), `{{- -}}` trimming,
//! variables `$` and `$x := …` inside range, and docker's helper functions.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Range(
        Option<(Option<String>, String)>,
        Pipeline,
        Vec<Node>,
        Vec<Node>,
    ),
}

#[derive(Debug, Clone)]
struct Pipeline {
    decl: Option<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.` followed by field names (empty = dot itself)
    Field(Vec<String>),
    /// `$name.f.g` (`$` alone is the root)
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Ident(String),
    Paren(Pipeline, Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

// ---- lexing of the action text ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Ident(String),
    Pipe,
    LParen,
    RParen,
    Declare,
    Comma,
    /// field access following a `)`
    Fields(Vec<String>),
}

fn lex(s: &str) -> Result<Vec<Tok>> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let fields = |cs: &[char], i: &mut usize| -> Vec<String> {
        let mut v = Vec::new();
        while *i < cs.len() && cs[*i] == '.' {
            *i += 1;
            let st = *i;
            while *i < cs.len() && (cs[*i].is_alphanumeric() || cs[*i] == '_') {
                *i += 1;
            }
            if *i > st {
                v.push(cs[st..*i].iter().collect());
            }
        }
        v
    };
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            out.push(Tok::Pipe);
            i += 1;
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
            if i < cs.len() && cs[i] == '.' {
                out.push(Tok::Fields(fields(&cs, &mut i)));
            }
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if c == ':' && i + 1 < cs.len() && cs[i + 1] == '=' {
            out.push(Tok::Declare);
            i += 2;
        } else if c == '=' {
            out.push(Tok::Declare);
            i += 1;
        } else if c == '.' {
            out.push(Tok::Dot(fields(&cs, &mut i)));
        } else if c == '$' {
            i += 1;
            let st = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            let name: String = cs[st..i].iter().collect();
            out.push(Tok::Var(name, fields(&cs, &mut i)));
        } else if c == '"' {
            i += 1;
            let mut s = String::new();
            while i < cs.len() && cs[i] != '"' {
                if cs[i] == '\\' && i + 1 < cs.len() {
                    i += 1;
                    s.push(match cs[i] {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        c => c,
                    });
                } else {
                    s.push(cs[i]);
                }
                i += 1;
            }
            if i >= cs.len() {
                bail!("unterminated quoted string");
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c == '`' {
            i += 1;
            let st = i;
            while i < cs.len() && cs[i] != '`' {
                i += 1;
            }
            out.push(Tok::Str(cs[st..i].iter().collect()));
            i += 1;
        } else if c.is_ascii_digit() || (c == '-' && i + 1 < cs.len() && cs[i + 1].is_ascii_digit())
        {
            let st = i;
            i += 1;
            while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.' || cs[i] == 'e') {
                i += 1;
            }
            let t: String = cs[st..i].iter().collect();
            out.push(Tok::Num(
                t.parse().map_err(|_| anyhow!("bad number syntax: {t}"))?,
            ));
        } else if c.is_alphabetic() || c == '_' {
            let st = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(cs[st..i].iter().collect()));
        } else {
            bail!("unexpected {c:?} in command");
        }
    }
    Ok(out)
}

fn parse_pipeline(toks: &[Tok], pos: &mut usize, allow_decl: bool) -> Result<Pipeline> {
    let mut decl = None;
    if allow_decl {
        if let (Some(Tok::Var(n, f)), Some(Tok::Declare)) = (toks.get(*pos), toks.get(*pos + 1)) {
            if f.is_empty() {
                decl = Some(n.clone());
                *pos += 2;
            }
        }
    }
    let mut cmds = Vec::new();
    let mut cur = Vec::new();
    while *pos < toks.len() {
        let t = toks[*pos].clone();
        *pos += 1;
        match t {
            Tok::Pipe => {
                if cur.is_empty() {
                    bail!("missing command before |");
                }
                cmds.push(std::mem::take(&mut cur));
            }
            Tok::RParen => {
                *pos -= 1;
                break;
            }
            Tok::LParen => {
                let p = parse_pipeline(toks, pos, false)?;
                if toks.get(*pos) != Some(&Tok::RParen) {
                    bail!("unclosed left paren");
                }
                *pos += 1;
                let f = if let Some(Tok::Fields(f)) = toks.get(*pos) {
                    *pos += 1;
                    f.clone()
                } else {
                    vec![]
                };
                cur.push(Arg::Paren(p, f));
            }
            Tok::Dot(f) => cur.push(Arg::Field(f)),
            Tok::Var(n, f) => cur.push(Arg::Var(n, f)),
            Tok::Str(s) => cur.push(Arg::Str(s)),
            Tok::Num(n) => cur.push(Arg::Num(n)),
            Tok::Ident(s) => cur.push(match s.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ => Arg::Ident(s),
            }),
            Tok::Declare | Tok::Comma | Tok::Fields(_) => bail!("unexpected token in pipeline"),
        }
    }
    if !cur.is_empty() {
        cmds.push(cur);
    }
    if cmds.is_empty() {
        bail!("missing value for command");
    }
    Ok(Pipeline { decl, cmds })
}

fn parse_pipe_str(s: &str) -> Result<Pipeline> {
    let toks = lex(s)?;
    let mut pos = 0;
    let p = parse_pipeline(&toks, &mut pos, true)?;
    if pos != toks.len() {
        bail!("unexpected \")\" in command");
    }
    Ok(p)
}

enum Item {
    Text(String),
    Action(String),
}

fn split_items(src: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner_start = start + 2;
        let trim_left = rest[inner_start..].starts_with("- ")
            || rest[inner_start..].starts_with("-\t")
            || rest[inner_start..].starts_with("-\n");
        if trim_left {
            text = text.trim_end();
            inner_start += 1;
        }
        // find closing }} outside of quotes
        let bytes = rest.as_bytes();
        let mut j = inner_start;
        let mut in_q: Option<u8> = None;
        let mut end = None;
        while j + 1 < bytes.len() + 1 && j < bytes.len() {
            let b = bytes[j];
            if let Some(q) = in_q {
                if b == b'\\' && q == b'"' {
                    j += 2;
                    continue;
                }
                if b == q {
                    in_q = None;
                }
            } else if b == b'"' || b == b'`' {
                in_q = Some(b);
            } else if b == b'}' && j + 1 < bytes.len() && bytes[j + 1] == b'}' {
                end = Some(j);
                break;
            }
            j += 1;
        }
        let end = end.ok_or_else(|| anyhow!("unclosed action"))?;
        let mut inner = &rest[inner_start..end];
        trim_next = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
            inner = &inner[..inner.len() - 1];
            trim_next = true;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            items.push(Item::Action(inner.to_string()));
        }
        rest = &rest[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
    Ok(items)
}

fn keyword(a: &str) -> (&str, &str) {
    let a = a.trim();
    let end = a.find(|c: char| c.is_whitespace()).unwrap_or(a.len());
    let (k, r) = a.split_at(end);
    match k {
        "if" | "range" | "with" | "else" | "end" => (k, r.trim()),
        _ => ("", a),
    }
}

/// Parses nodes until `end`/`else`; returns (nodes, terminator).
fn parse_nodes(items: &[Item], pos: &mut usize) -> Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let it = &items[*pos];
        *pos += 1;
        match it {
            Item::Text(t) => nodes.push(Node::Text(t.clone())),
            Item::Action(a) => {
                let (k, rest) = keyword(a);
                match k {
                    "end" => return Ok((nodes, Some("end".into()))),
                    "else" => return Ok((nodes, Some(format!("else {rest}").trim().to_string()))),
                    "if" | "with" | "range" => {
                        let (pipe, vars) = if k == "range" {
                            parse_range_head(rest)?
                        } else {
                            (parse_pipe_str(rest)?, None)
                        };
                        let (body, term) = parse_nodes(items, pos)?;
                        let mut else_body = Vec::new();
                        match term.as_deref() {
                            Some("end") => {}
                            Some("else") => {
                                let (eb, t2) = parse_nodes(items, pos)?;
                                if t2.as_deref() != Some("end") {
                                    bail!("unexpected EOF");
                                }
                                else_body = eb;
                            }
                            Some(t) if t.starts_with("else if ") && k == "if" => {
                                // `else if X` chains: desugar into a nested if.
                                let cond = parse_pipe_str(&t["else if ".len()..])?;
                                let (eb, t2) = parse_nodes(items, pos)?;
                                let mut nested_else = Vec::new();
                                match t2.as_deref() {
                                    Some("end") => {}
                                    Some("else") => {
                                        let (x, t3) = parse_nodes(items, pos)?;
                                        if t3.as_deref() != Some("end") {
                                            bail!("unexpected EOF");
                                        }
                                        nested_else = x;
                                    }
                                    _ => bail!("unsupported else-if chain"),
                                }
                                else_body = vec![Node::If(cond, eb, nested_else)];
                            }
                            _ => bail!("unexpected EOF"),
                        }
                        nodes.push(match k {
                            "if" => Node::If(pipe, body, else_body),
                            "with" => Node::With(pipe, body, else_body),
                            _ => Node::Range(vars, pipe, body, else_body),
                        });
                    }
                    _ => nodes.push(Node::Action(parse_pipe_str(rest)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

type RangeVars = Option<(Option<String>, String)>;

fn parse_range_head(s: &str) -> Result<(Pipeline, RangeVars)> {
    let toks = lex(s)?;
    // `$i, $v := pipeline` or `$v := pipeline`
    if let Some(dpos) = toks.iter().position(|t| *t == Tok::Declare) {
        let names: Vec<String> = toks[..dpos]
            .iter()
            .filter_map(|t| match t {
                Tok::Var(n, _) => Some(n.clone()),
                _ => None,
            })
            .collect();
        let mut pos = dpos + 1;
        let p = parse_pipeline(&toks, &mut pos, false)?;
        let vars = match names.len() {
            1 => Some((None, names[0].clone())),
            2 => Some((Some(names[0].clone()), names[1].clone())),
            _ => bail!("too many declarations in range"),
        };
        return Ok((p, vars));
    }
    let mut pos = 0;
    Ok((parse_pipeline(&toks, &mut pos, false)?, None))
}

/// Go's "truth" of a value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().map(|f| f != 0.0).unwrap_or(false),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Go's default `%v` printing of a value, as text/template prints it.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    if f.abs() < 1e21 && f.abs() >= 1e20 {
                        super::go_fmt_g(f, 17)
                    } else {
                        format!("{}", f as i64)
                    }
                } else {
                    format!("{f}")
                }
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{}:{}", k, go_print(&o[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// Marker for "missing key" so that printing gives Go's "<no value>".
const NO_VALUE: &str = "\u{0}<no value>";

fn field(v: &Value, names: &[String]) -> Result<Value> {
    let mut cur = v.clone();
    for n in names {
        cur = match cur {
            Value::Object(ref o) => match o.get(n) {
                Some(x) => x.clone(),
                None => {
                    // Accept case-insensitive matches (API "Id" vs docker's ".ID").
                    match o.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)) {
                        Some((_, x)) => x.clone(),
                        None => Value::String(NO_VALUE.into()),
                    }
                }
            },
            Value::Null => return Err(anyhow!("nil pointer evaluating .{n}")),
            Value::String(ref s) if s == NO_VALUE => return Ok(Value::String(NO_VALUE.into())),
            other => {
                return Err(anyhow!(
                    "can't evaluate field {n} in type {}",
                    type_name(&other)
                ))
            }
        };
    }
    Ok(cur)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn as_str(v: &Value) -> String {
    match v {
        Value::String(s) if s == NO_VALUE => "<no value>".into(),
        other => go_print(other),
    }
}

struct Scope<'a> {
    dot: Value,
    root: &'a Value,
    vars: HashMap<String, Value>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        let items = split_items(src).map_err(|e| anyhow!("template parsing error: {e}"))?;
        let mut pos = 0;
        let (nodes, term) =
            parse_nodes(&items, &mut pos).map_err(|e| anyhow!("template parsing error: {e}"))?;
        if let Some(t) = term {
            bail!("template parsing error: unexpected {{{{{t}}}}}");
        }
        Ok(Template { nodes })
    }

    pub fn render(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        let mut scope = Scope {
            dot: data.clone(),
            root: data,
            vars: HashMap::new(),
        };
        exec_nodes(&self.nodes, &mut scope, &mut out)
            .map_err(|e| anyhow!("template: executing \"\" : {e}"))?;
        Ok(out)
    }
}

fn exec_nodes(nodes: &[Node], sc: &mut Scope, out: &mut String) -> Result<()> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipeline(p, sc)?;
                if p.decl.is_none() {
                    out.push_str(&as_str(&v));
                }
            }
            Node::If(p, body, els) => {
                let v = eval_pipeline(p, sc)?;
                if truthy_nv(&v) {
                    exec_nodes(body, sc, out)?;
                } else {
                    exec_nodes(els, sc, out)?;
                }
            }
            Node::With(p, body, els) => {
                let v = eval_pipeline(p, sc)?;
                if truthy_nv(&v) {
                    let saved = std::mem::replace(&mut sc.dot, v);
                    exec_nodes(body, sc, out)?;
                    sc.dot = saved;
                } else {
                    exec_nodes(els, sc, out)?;
                }
            }
            Node::Range(vars, p, body, els) => {
                let v = eval_pipeline(p, sc)?;
                let entries: Vec<(Value, Value)> = match v {
                    Value::Array(a) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x))
                        .collect(),
                    Value::Object(o) => {
                        let mut keys: Vec<String> = o.keys().cloned().collect();
                        keys.sort();
                        keys.into_iter()
                            .map(|k| (Value::String(k.clone()), o[&k].clone()))
                            .collect()
                    }
                    Value::Number(n) => {
                        let c = n.as_i64().unwrap_or(0).max(0);
                        (0..c).map(|i| (Value::from(i), Value::from(i))).collect()
                    }
                    Value::Null => vec![],
                    Value::String(ref s) if s == NO_VALUE => vec![],
                    other => bail!("range can't iterate over {}", go_print(&other)),
                };
                if entries.is_empty() {
                    exec_nodes(els, sc, out)?;
                    continue;
                }
                let saved = sc.dot.clone();
                for (k, x) in entries {
                    if let Some((kn, vn)) = vars {
                        if let Some(kn) = kn {
                            sc.vars.insert(kn.clone(), k.clone());
                        }
                        sc.vars.insert(vn.clone(), x.clone());
                    }
                    sc.dot = x;
                    exec_nodes(body, sc, out)?;
                }
                sc.dot = saved;
            }
        }
    }
    Ok(())
}

fn truthy_nv(v: &Value) -> bool {
    match v {
        Value::String(s) if s == NO_VALUE => false,
        other => truthy(other),
    }
}

fn eval_pipeline(p: &Pipeline, sc: &mut Scope) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for cmd in &p.cmds {
        prev = Some(eval_cmd(cmd, prev.take(), sc)?);
    }
    let v = prev.unwrap_or(Value::Null);
    if let Some(d) = &p.decl {
        sc.vars.insert(d.clone(), v.clone());
    }
    Ok(v)
}

fn eval_arg(a: &Arg, sc: &mut Scope) -> Result<Value> {
    Ok(match a {
        Arg::Field(f) => field(&sc.dot, f)?,
        Arg::Var(n, f) => {
            let base = if n.is_empty() {
                sc.root.clone()
            } else {
                sc.vars
                    .get(n)
                    .cloned()
                    .ok_or_else(|| anyhow!("undefined variable: ${n}"))?
            };
            field(&base, f)?
        }
        Arg::Str(s) => Value::String(s.clone()),
        Arg::Num(n) => serde_json::Number::from_f64(*n)
            .map(|x| {
                if n.fract() == 0.0 {
                    Value::from(*n as i64)
                } else {
                    Value::Number(x)
                }
            })
            .unwrap_or(Value::Null),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Nil => Value::Null,
        Arg::Ident(name) => call(name, vec![])?,
        Arg::Paren(p, f) => {
            let v = eval_pipeline(p, sc)?;
            field(&v, f)?
        }
    })
}

fn eval_cmd(cmd: &[Arg], piped: Option<Value>, sc: &mut Scope) -> Result<Value> {
    if let Arg::Ident(name) = &cmd[0] {
        let mut args = Vec::new();
        for a in &cmd[1..] {
            args.push(eval_arg(a, sc)?);
        }
        if let Some(p) = piped {
            args.push(p);
        }
        return call(name, args);
    }
    if cmd.len() > 1 || piped.is_some() {
        bail!("can't give argument to non-function {:?}", cmd[0]);
    }
    eval_arg(&cmd[0], sc)
}

fn clean(v: Value) -> Value {
    match v {
        Value::String(s) if s == NO_VALUE => Value::Null,
        other => other,
    }
}

fn call(name: &str, args: Vec<Value>) -> Result<Value> {
    let args: Vec<Value> = args.into_iter().map(clean).collect();
    let s = |i: usize| -> String { args.get(i).map(go_print).unwrap_or_default() };
    let need = |n: usize| -> Result<()> {
        if args.len() < n {
            bail!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            );
        }
        Ok(())
    };
    Ok(match name {
        "json" => {
            need(1)?;
            Value::String(serde_json::to_string(&args[0])?)
        }
        "index" => {
            need(1)?;
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match (&cur, k) {
                    (Value::Object(o), _) => o
                        .get(&go_print(k))
                        .cloned()
                        .unwrap_or(Value::String(NO_VALUE.into())),
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_i64().unwrap_or(-1);
                        if i < 0 || i as usize >= a.len() {
                            bail!("error calling index: index out of range: {i}");
                        }
                        a[i as usize].clone()
                    }
                    (Value::Null, _) => Value::String(NO_VALUE.into()),
                    _ => bail!(
                        "error calling index: can't index item of type {}",
                        type_name(&cur)
                    ),
                };
            }
            cur
        }
        "join" => {
            need(2)?;
            let items: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(go_print).collect(),
                Value::Null => vec![],
                other => vec![go_print(other)],
            };
            Value::String(items.join(&s(1)))
        }
        "split" => {
            need(2)?;
            Value::Array(s(0).split(&s(1)).map(|x| Value::String(x.into())).collect())
        }
        "upper" => Value::String(s(0).to_uppercase()),
        "lower" => Value::String(s(0).to_lowercase()),
        "title" => Value::String(
            s(0).split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    match c.next() {
                        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                        None => String::new(),
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "pad" => {
            need(3)?;
            let n = |v: &Value| v.as_i64().unwrap_or(0).max(0) as usize;
            Value::String(format!(
                "{}{}{}",
                " ".repeat(n(&args[1])),
                s(0),
                " ".repeat(n(&args[2]))
            ))
        }
        "truncate" => {
            need(2)?;
            let n = args[1].as_i64().unwrap_or(0).max(0) as usize;
            Value::String(s(0).chars().take(n).collect())
        }
        "len" => {
            need(1)?;
            Value::from(match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(x) => x.len(),
                other => bail!("error calling len: len of type {}", type_name(other)),
            })
        }
        "print" => Value::String(go_sprint(&args)),
        "println" => Value::String(args.iter().map(go_print).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            need(1)?;
            Value::String(go_printf(&s(0), &args[1..]))
        }
        "not" => Value::Bool(!args.first().map(truthy).unwrap_or(false)),
        "and" => args
            .iter()
            .find(|v| !truthy(v))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => args
            .iter()
            .find(|v| truthy(v))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "eq" => {
            need(2)?;
            Value::Bool(args[1..].iter().any(|b| values_eq(&args[0], b)))
        }
        "ne" => {
            need(2)?;
            Value::Bool(!values_eq(&args[0], &args[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            need(2)?;
            let ord = match (args[0].as_f64(), args[1].as_f64()) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => Some(s(0).cmp(&s(1))),
            }
            .unwrap_or(std::cmp::Ordering::Equal);
            use std::cmp::Ordering::*;
            Value::Bool(match name {
                "lt" => ord == Less,
                "le" => ord != Greater,
                "gt" => ord == Greater,
                _ => ord != Less,
            })
        }
        _ => bail!("function \"{name}\" not defined"),
    })
}

fn values_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn go_sprint(args: &[Value]) -> String {
    // Sprint adds spaces between operands when neither is a string.
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_print(a));
    }
    out
}

fn go_printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // flags/width (ignored except '-' and width)
        let mut spec = String::new();
        while let Some(&d) = it.peek() {
            if d.is_ascii_digit() || d == '-' || d == '.' || d == '+' || d == ' ' {
                spec.push(d);
                it.next();
            } else {
                break;
            }
        }
        let Some(verb) = it.next() else { break };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args.get(ai).cloned();
        ai += 1;
        let Some(arg) = arg else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let text = match verb {
            'q' => super::go_quote(&go_print(&arg)),
            'd' => arg
                .as_f64()
                .map(|f| (f as i64).to_string())
                .unwrap_or_else(|| go_print(&arg)),
            _ => go_print(&arg),
        };
        let left = spec.starts_with('-');
        let width: usize = spec
            .trim_start_matches('-')
            .split('.')
            .next()
            .unwrap_or("")
            .parse()
            .unwrap_or(0);
        let n = text.chars().count();
        if n < width {
            if left {
                out.push_str(&text);
                out.push_str(&" ".repeat(width - n));
            } else {
                out.push_str(&" ".repeat(width - n));
                out.push_str(&text);
            }
        } else {
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn fields_and_functions() {
        let v = json!({
            "Id": "abc",
            "State": {"ExitCode": 3, "Running": false, "Health": null},
            "Config": {"Labels": {"a.b": "x", "k": "v"}, "Env": ["A=1", "B=2"], "Cmd": ["sh", "-c"]},
            "Names": "web",
        });
        assert_eq!(r("{{.State.ExitCode}}", &v), "3");
        assert_eq!(r("{{.Id}}", &v), "abc");
        assert_eq!(r("{{.ID}}", &v), "abc");
        assert_eq!(
            r("id={{.Id}} rc={{.State.ExitCode}}\n", &v),
            "id=abc rc=3\n"
        );
        assert_eq!(r("{{json .Config.Labels}}", &v), r#"{"a.b":"x","k":"v"}"#);
        assert_eq!(r(r#"{{index .Config.Labels "a.b"}}"#, &v), "x");
        assert_eq!(r(r#"{{index .Config.Env 1}}"#, &v), "B=2");
        assert_eq!(r(r#"{{join .Config.Cmd " "}}"#, &v), "sh -c");
        assert_eq!(r("{{.Config.Cmd}}", &v), "[sh -c]");
        assert_eq!(r("{{.Config.Labels}}", &v), "map[a.b:x k:v]");
        assert_eq!(r("{{.State.Running}}", &v), "false");
        assert_eq!(r("{{.State.Health}}", &v), "<nil>");
        assert_eq!(r("{{.Nope}}", &v), "<no value>");
        assert_eq!(r("{{.Config.Labels | json}}", &v), r#"{"a.b":"x","k":"v"}"#);
        assert_eq!(r("{{upper .Names}}", &v), "WEB");
        assert_eq!(
            r("{{printf \"%s-%d\" .Names .State.ExitCode}}", &v),
            "web-3"
        );
        assert_eq!(r("{{json .}}", &json!({"a": [1, 2]})), r#"{"a":[1,2]}"#);
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{nofunc .A}}")
            .unwrap()
            .render(&v)
            .is_err());
    }

    #[test]
    fn control_flow() {
        let v = json!({"Env": ["A=1", "B=2"], "Labels": {"x": "1", "y": "2"}, "On": true, "Off": false});
        assert_eq!(r("{{range .Env}}{{.}};{{end}}", &v), "A=1;B=2;");
        assert_eq!(
            r("{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}", &v),
            "x=1 y=2 "
        );
        assert_eq!(
            r("{{range $i, $e := .Env}}{{$i}}:{{$e}},{{end}}", &v),
            "0:A=1,1:B=2,"
        );
        assert_eq!(r("{{if .On}}yes{{else}}no{{end}}", &v), "yes");
        assert_eq!(r("{{if .Off}}yes{{else}}no{{end}}", &v), "no");
        assert_eq!(r("{{if .Off}}a{{else if .On}}b{{else}}c{{end}}", &v), "b");
        assert_eq!(r("{{with .Labels}}{{.x}}{{end}}", &v), "1");
        assert_eq!(r("{{range .Nope}}x{{else}}empty{{end}}", &v), "empty");
        assert_eq!(r("a  {{- .On -}}  b", &v), "atrueb");
        assert_eq!(r("{{if eq .On true}}t{{end}}", &v), "t");
        assert_eq!(r("{{len .Env}}", &v), "2");
        assert_eq!(r("{{range .Env}}{{$.On}}{{end}}", &v), "truetrue");
        assert_eq!(r("{{(index .Env 0)}}", &v), "A=1");
        assert_eq!(r("{{/* c */}}x", &v), "x");
    }
}
