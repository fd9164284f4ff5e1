//! What `build-request` receives and returns, as plain Rust: the WIT
//! `request-input` and `http-request` records. A plugin's own request code
//! fills an [`HttpRequest`] from an [`Input`]; the glue converts both.

use crate::schema::Method;
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
