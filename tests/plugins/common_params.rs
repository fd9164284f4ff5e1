// Parameter-tree lookup shared by the plugins that read their input
// (contrary, escape, recorder, snoop). Pulled in with `include!` after
// `wit_bindgen::generate!`.

/// The text value of top-level key `key` in a value tree (node 0 is the root
/// map, its entries the run of nodes its `children` names), if it is set and
/// is text. These plugins are hostile, not careless: anything out of range is
/// simply "not set", never a panic. (They do not check the rest of the
/// layout; a real plugin must, see tests/plugins/json-api.)
fn text_param(tree: &payhost::plugin::types::ValueTree, key: &str) -> Option<String> {
    // Five words per node: [tag, key-start, key-len, a, b]; tag 4 is text
    // (a, b its span), tag 6 a map (a, b its run of entries).
    let node = |i: usize| -> Option<&[u32]> { tree.nodes.get(i.checked_mul(5)?..i * 5 + 5) };
    let slice = |start: u32, len: u32| -> Option<&str> {
        let start = usize::try_from(start).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        tree.text.get(start..end)
    };
    let root = node(0)?;
    if root[0] != 6 {
        return None;
    }
    let first = usize::try_from(root[3]).ok()?;
    let end = first.checked_add(usize::try_from(root[4]).ok()?)?;
    let entry = (first..end)
        .filter_map(node)
        .find(|n| slice(n[1], n[2]) == Some(key))?;
    match entry[0] {
        4 => slice(entry[3], entry[4]).map(str::to_string),
        _ => None,
    }
}
