//! What `build-request` receives and returns, as plain Rust: the WIT
//! `request-input` and `http-request` records. A plugin's own request code
//! fills an [`HttpRequest`] from an [`Input`]; the glue converts both.
//! [`fill_ids`] is the one step of that every plugin takes the same way.

use crate::params::{self, PluginError};
use crate::schema::{Method, Object, Operation};
use crate::tree::Tree;

/// What a script asked for (WIT `request-input`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    pub id: Option<String>,
    pub parent: Option<String>,
    pub params: Tree,
    pub extra: Tree,
}

/// The request for the host to send (WIT `http-request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// `path` with `{id}` and `{parent}` filled in from `input`, where the
/// operation needs them; each is checked by [`params::path_id`] first, so
/// a missing or crafted id is refused (`missing-id`, `invalid-id`) before
/// it can reach a path.
pub fn fill_ids(
    object: &Object,
    operation: &Operation,
    path: &str,
    input: &Input,
) -> Result<String, PluginError> {
    let mut path = path.to_string();
    if operation.needs_id {
        path = path.replace("{id}", params::path_id(object, input.id.as_deref(), None)?);
    }
    if operation.needs_parent {
        let parent = params::path_id(object, input.parent.as_deref(), Some("parent"))?;
        path = path.replace("{parent}", parent);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ErrorCode;

    const OPERATION: Operation = Operation {
        name: "refund",
        method: Method::Post,
        path: "/payments/{parent}/refunds/{id}",
        needs_id: true,
        needs_parent: true,
        accepts: &[],
        required: &[],
        filled_by: &[],
        doc: "",
    };

    const OBJECT: Object = Object {
        name: "refund",
        doc: "",
        operations: &[OPERATION],
        fields: &[],
    };

    fn input(id: Option<&str>, parent: Option<&str>) -> Input {
        Input {
            id: id.map(str::to_string),
            parent: parent.map(str::to_string),
            ..Input::default()
        }
    }

    #[test]
    fn ids_are_checked_then_filled_in() {
        let fill = |id, parent| {
            fill_ids(&OBJECT, &OPERATION, OPERATION.path, &input(id, parent))
                .map_err(|e| (e.code, e.field))
        };
        assert_eq!(
            fill(Some("re_1"), Some("pay_1")),
            Ok("/payments/pay_1/refunds/re_1".to_string())
        );
        assert_eq!(fill(None, Some("pay_1")), Err((ErrorCode::MissingId, None)));
        assert_eq!(
            fill(Some("re_1"), None),
            Err((ErrorCode::MissingId, Some("parent".to_string())))
        );
        assert_eq!(
            fill(Some("../x"), Some("pay_1")),
            Err((ErrorCode::InvalidId, None))
        );
    }
}
