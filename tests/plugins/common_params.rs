// Parameter-tree lookup shared by the plugins that read their input (escape,
// recorder, snoop). Pulled in with `include!` after `wit_bindgen::generate!`.

/// The text value of top-level key `key` in a value tree (node 0 is the root
/// map, its entries the run of nodes its `children` names), if it is set and
/// is text. These plugins are hostile, not careless: anything out of range is
/// simply "not set", never a panic. (They do not check the rest of the
/// layout; a real plugin must, see tests/plugins/json-api.)
fn text_param(tree: &payhost::plugin::types::ValueTree, key: &str) -> Option<String> {
    use payhost::plugin::types::{NodeValue, Span};
    let slice = |span: &Span| -> Option<&str> {
        let start = usize::try_from(span.start).ok()?;
        let end = start.checked_add(usize::try_from(span.len).ok()?)?;
        tree.text.get(start..end)
    };
    let NodeValue::Map(entries) = &tree.nodes.first()?.value else {
        return None;
    };
    let first = usize::try_from(entries.first).ok()?;
    let end = first.checked_add(usize::try_from(entries.count).ok()?)?;
    let node = tree
        .nodes
        .get(first..end)?
        .iter()
        .find(|node| slice(&node.key) == Some(key))?;
    match &node.value {
        NodeValue::Text(span) => slice(span).map(str::to_string),
        _ => None,
    }
}
