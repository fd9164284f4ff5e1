//! Which fields of its payload a flow can read, found in its compiled AST.
//!
//! A provider's object has forty-odd fields and a flow typically reads two
//! or three (`parsed_data.id`, `parsed_data.status`). Building the other
//! fields into Rhai values, and dropping them after the flow, was the largest
//! cost of running a response flow. So each flow is read once, when it is
//! compiled: if every use of its payload variable names a top-level field
//! (`parsed_data.id`, `parsed_data.metadata.order_id`, `parsed_data["id"]`,
//! reading or assigning), only those fields are built; the rest of the
//! payload is still checked as JSON, and skipped (see
//! [`crate::script_value::from_json_projected`]).
//!
//! Any other use gives the flow the whole value: the variable passed to a
//! function or method (`print(parsed_data)`, `parsed_data.keys()`), bound
//! to another name, indexed by a computed key, interpolated, compared,
//! iterated, captured by a closure, or a flow that
//! calls `eval` (whose text could read anything). Uses in the flow's own
//! functions count too: a function called with `!` sees the caller's scope.
//! The rule errs one way only: a flow may get more than it reads, never
//! less, so what any flow sees is what it saw with the whole value.

use rhai::{AST, ASTNode, Expr, Stmt};

/// What of a payload a flow gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// All of it.
    Whole,
    /// An object payload's top-level fields of these names (possibly none);
    /// a payload that is not an object is given whole. Plain strings: every
    /// key of every payload is compared with them ([`Projection::keeps`]),
    /// and a Rhai `Identifier` (a small-string type) costs a check of where
    /// its bytes are at each comparison.
    Fields(Vec<Box<str>>),
}

impl Projection {
    /// What `ast` can read of the value bound to `variable`.
    pub fn of(ast: &AST, variable: &str) -> Projection {
        let mut fields: Vec<Box<str>> = Vec::new();
        let mut whole = false;
        ast.walk(&mut |path: &[ASTNode]| {
            let Some((node, parents)) = path.split_last() else {
                return true;
            };
            match node {
                ASTNode::Expr(Expr::FnCall(call, _)) | ASTNode::Stmt(Stmt::FnCall(call, _))
                    if call.name == "eval" =>
                {
                    whole = true
                }
                ASTNode::Expr(expr @ Expr::Variable(name, ..)) if name.1 == variable => {
                    match parents.last().and_then(|parent| field_named(parent, expr)) {
                        Some(field) if !fields.iter().any(|f| &**f == field) => {
                            fields.push(field.into())
                        }
                        Some(_) => {}
                        None => whole = true,
                    }
                }
                _ => {}
            }
            // Once the whole value is needed, nothing else matters.
            !whole
        });
        if whole {
            Projection::Whole
        } else {
            Projection::Fields(fields)
        }
    }

    /// Whether a top-level field of this name is built.
    pub fn keeps(&self, field: &str) -> bool {
        match self {
            Projection::Whole => true,
            Projection::Fields(fields) => fields.iter().any(|f| &**f == field),
        }
    }
}

/// The field `variable` (at the head of `parent`'s chain) is read by, when
/// that is all `parent` does with it: `variable.field...` or
/// `variable["field"]...`.
fn field_named<'a>(parent: &'a ASTNode, variable: &Expr) -> Option<&'a str> {
    match parent {
        ASTNode::Expr(Expr::Dot(chain, ..)) if std::ptr::eq(&chain.lhs, variable) => {
            // `.field`, `.field.more`, `.field[...]`; a method call is no field.
            match &chain.rhs {
                Expr::Property(property, _) => Some(property.2.as_str()),
                Expr::Dot(next, ..) | Expr::Index(next, ..) => match &next.lhs {
                    Expr::Property(property, _) => Some(property.2.as_str()),
                    _ => None,
                },
                _ => None,
            }
        }
        ASTNode::Expr(Expr::Index(chain, ..)) if std::ptr::eq(&chain.lhs, variable) => {
            // `["field"]`, `["field"].more`, `["field"][...]`.
            match &chain.rhs {
                Expr::StringConstant(field, _) => Some(field.as_str()),
                Expr::Dot(next, ..) | Expr::Index(next, ..) => match &next.lhs {
                    Expr::StringConstant(field, _) => Some(field.as_str()),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn projection(script: &str) -> Projection {
        let ast = rhai::Engine::new().compile(script).unwrap();
        Projection::of(&ast, "parsed_data")
    }

    fn fields(names: &[&str]) -> Projection {
        Projection::Fields(names.iter().map(|n| (*n).into()).collect())
    }

    #[test]
    fn named_fields_are_all_a_flow_reads() {
        assert_eq!(
            projection("let id = parsed_data.id; print(`${id} ${parsed_data.status}`);"),
            fields(&["id", "status"])
        );
        assert_eq!(
            projection(
                r#"let a = parsed_data.metadata.order_id; let b = parsed_data["customer"];
                   let c = parsed_data.payment_method_types[0]; let d = parsed_data["x"].y;
                   let e = parsed_data.charges.data[0].id.len(); let f = parsed_data?.amount;
                   parsed_data.status = "seen"; parsed_data.id += "!"; parsed_data["k"]["j"] = 1;
                   fn unrelated(x) { x.id }"#
            ),
            fields(&[
                "metadata",
                "customer",
                "payment_method_types",
                "x",
                "charges",
                "amount",
                "status",
                "id",
                "k"
            ])
        );
        assert_eq!(projection("print(CONTEXT_ID);"), fields(&[]));
    }

    #[test]
    fn any_other_use_takes_the_whole_value() {
        for script in [
            "print(parsed_data);",
            "let copy = parsed_data; print(copy.id);",
            "parsed_data.keys()",
            "parsed_data.id; parsed_data.len()",
            "let k = \"id\"; parsed_data[k]",
            "parsed_data[0]",
            "`${parsed_data}`",
            "parsed_data == #{}",
            "\"id\" in parsed_data",
            "for (v, k) in parsed_data {}",
            "type_of(parsed_data)",
            "parsed_data = #{}; parsed_data.id",
            "let f = || parsed_data; f.call()",
            // A closure captures the variable whole, whatever it reads.
            "let f = || parsed_data.id; f.call()",
            "fn peek() { parsed_data } peek!()",
            "fn peek() { parsed_data.id } let x = peek!(); eval(\"1\")",
            "eval(\"parsed_data.secret\")",
            "parsed_data.id.to_string(); parsed_data",
        ] {
            assert_eq!(projection(script), Projection::Whole, "{script}");
        }
    }

    #[test]
    fn a_caller_scope_function_reads_fields_by_the_same_rule() {
        assert_eq!(
            projection("fn peek() { parsed_data.status } peek!()"),
            fields(&["status"])
        );
    }
}
