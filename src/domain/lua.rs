//! What the Lua scripts' JSON needs on the way in.

use serde::{Deserialize, Deserializer};

/// Lua's cjson encodes an empty list as `{}`: read it as an empty list.
pub fn list_or_empty_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrMap<T> {
        List(Vec<T>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match ListOrMap::deserialize(d)? {
        ListOrMap::List(v) => v,
        ListOrMap::Other(_) => Vec::new(),
    })
}
