// Parameter-tree lookup shared by the plugins that read their input (escape,
// recorder). Pulled in with `include!` after `wit_bindgen::generate!`.

/// The text value of top-level key `key` in a value tree (node 0 is the root
/// map), if it is set and is text.
fn text_param(tree: &[payhost::plugin::types::ValueNode], key: &str) -> Option<String> {
    use payhost::plugin::types::ValueNode;
    let Some(ValueNode::Map(entries)) = tree.first() else {
        return None;
    };
    let (_, index) = entries.iter().find(|(k, _)| k == key)?;
    match tree.get(usize::try_from(*index).ok()?)? {
        ValueNode::Text(value) => Some(value.clone()),
        _ => None,
    }
}
