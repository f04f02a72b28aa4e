//! Reading policy text (HCL or JSON) into format-neutral raw rules.
//!
//! Both syntaxes end up as [`RawRule`]s: a pattern, the line of its block when known, and
//! its keys as JSON values. The rule semantics (capabilities, constraints) are checked in
//! one place, [`crate::policy`], so HCL and JSON cannot drift apart.

use hcl::edit::Span;
use hcl::edit::expr::{Expression, ObjectKey};
use hcl::edit::structure::{Body, Structure};
use serde_json::{Map, Value};

use crate::error::{PolicyError, PolicyFormat};

/// One `path` block before validation.
#[derive(Debug)]
pub(crate) struct RawRule {
    /// The pattern exactly as written.
    pub(crate) path: String,
    /// 1-based line of the block, for HCL.
    pub(crate) line: Option<usize>,
    /// The block's keys in order; `None` marks an HCL expression that is not a literal.
    pub(crate) keys: Vec<(String, Option<Value>)>,
}

/// Reads HCL, or JSON when the text starts with `{` (an HCL body never does).
pub(crate) fn parse_rules(text: &str) -> Result<Vec<RawRule>, PolicyError> {
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_hcl(text)
    }
}

fn parse_hcl(text: &str) -> Result<Vec<RawRule>, PolicyError> {
    let body = hcl::edit::parser::parse_body(text).map_err(|err| PolicyError::Syntax {
        format: PolicyFormat::Hcl,
        line: err.location().line(),
        column: err.location().column(),
        message: err.message().to_owned(),
    })?;
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|range| {
            let end = range.start.min(text.len());
            text.as_bytes()[..end]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1
        })
    };

    let mut rules = Vec::new();
    for structure in body.iter() {
        match structure {
            // Vault accepts a top-level `name` and then ignores it: the API path names the policy.
            Structure::Attribute(attr) if attr.key.as_str() == "name" => {}
            Structure::Attribute(attr) => {
                return Err(PolicyError::UnexpectedTopLevel {
                    found: format!("unexpected top-level attribute {:?}", attr.key.as_str()),
                    line: line_of(attr.span()),
                });
            }
            Structure::Block(block) if block.ident.as_str() == "path" => {
                let line = line_of(block.span());
                let [label] = block.labels.as_slice() else {
                    return Err(PolicyError::UnexpectedTopLevel {
                        found: format!(
                            "a path block has {} labels instead of one quoted pattern",
                            block.labels.len()
                        ),
                        line,
                    });
                };
                rules.push(RawRule {
                    path: label.as_str().to_owned(),
                    line,
                    keys: body_keys(&block.body),
                });
            }
            Structure::Block(block) => {
                return Err(PolicyError::UnexpectedTopLevel {
                    found: format!("unexpected top-level block {:?}", block.ident.as_str()),
                    line: line_of(block.span()),
                });
            }
        }
    }
    Ok(rules)
}

/// The keys of a block body: attributes, and nested blocks (HCL1's `key { ... }` object
/// form) as objects.
fn body_keys(body: &Body) -> Vec<(String, Option<Value>)> {
    body.iter()
        .map(|structure| match structure {
            Structure::Attribute(attr) => (attr.key.as_str().to_owned(), literal(&attr.value)),
            Structure::Block(block) => {
                let mut value = body_object(&block.body);
                for label in block.labels.iter().rev() {
                    value = value.map(|inner| {
                        let mut map = Map::new();
                        map.insert(label.as_str().to_owned(), inner);
                        Value::Object(map)
                    });
                }
                (block.ident.as_str().to_owned(), value)
            }
        })
        .collect()
}

fn body_object(body: &Body) -> Option<Value> {
    let mut map = Map::new();
    for (key, value) in body_keys(body) {
        map.insert(key, value?);
    }
    Some(Value::Object(map))
}

/// Converts a literal HCL expression to JSON; `None` for anything that would need
/// evaluation (templates, variables, function calls, operators).
fn literal(expr: &Expression) -> Option<Value> {
    Some(match expr {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(**b),
        Expression::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64()?)
            }
        }
        Expression::String(s) => Value::String(s.as_str().to_owned()),
        Expression::Array(array) => {
            Value::Array(array.iter().map(literal).collect::<Option<Vec<_>>>()?)
        }
        Expression::Object(object) => {
            let mut map = Map::new();
            for (key, value) in object.iter() {
                let key = match key {
                    ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                    ObjectKey::Expression(Expression::String(s)) => s.as_str().to_owned(),
                    ObjectKey::Expression(_) => return None,
                };
                map.insert(key, literal(value.expr())?);
            }
            Value::Object(map)
        }
        Expression::Parenthesis(inner) => literal(inner.inner())?,
        _ => return None,
    })
}

fn parse_json(text: &str) -> Result<Vec<RawRule>, PolicyError> {
    let document: Value = serde_json::from_str(text).map_err(|err| {
        let full = err.to_string();
        // serde_json appends " at line L column C"; the variant carries those separately.
        let message = match full.rsplit_once(" at line ") {
            Some((message, _)) => message.to_owned(),
            None => full,
        };
        PolicyError::Syntax {
            format: PolicyFormat::Json,
            line: err.line(),
            column: err.column(),
            message,
        }
    })?;
    let Value::Object(top) = document else {
        return Err(PolicyError::UnexpectedTopLevel {
            found: "the JSON document is not an object".to_owned(),
            line: None,
        });
    };
    let mut rules = Vec::new();
    for (key, value) in top {
        match key.as_str() {
            "name" => {}
            "path" => collect_json_paths(value, &mut rules)?,
            other => {
                return Err(PolicyError::UnexpectedTopLevel {
                    found: format!("unexpected top-level key {other:?}"),
                    line: None,
                });
            }
        }
    }
    Ok(rules)
}

/// `"path"` holds an object of pattern → rule body; HCL1's JSON flavour also allows a list
/// of such objects, and a list of bodies for one pattern.
fn collect_json_paths(value: Value, rules: &mut Vec<RawRule>) -> Result<(), PolicyError> {
    match value {
        Value::Object(patterns) => {
            for (path, body) in patterns {
                push_json_rule(path, body, rules)?;
            }
            Ok(())
        }
        Value::Array(items) => items
            .into_iter()
            .try_for_each(|item| collect_json_paths(item, rules)),
        _ => Err(PolicyError::UnexpectedTopLevel {
            found: "\"path\" is not an object of pattern → rule".to_owned(),
            line: None,
        }),
    }
}

fn push_json_rule(path: String, body: Value, rules: &mut Vec<RawRule>) -> Result<(), PolicyError> {
    match body {
        Value::Object(keys) => {
            rules.push(RawRule {
                path,
                line: None,
                keys: keys.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            });
            Ok(())
        }
        Value::Array(bodies) => bodies
            .into_iter()
            .try_for_each(|body| push_json_rule(path.clone(), body, rules)),
        _ => Err(PolicyError::UnexpectedTopLevel {
            found: format!("the rule for path {path:?} is not an object"),
            line: None,
        }),
    }
}
