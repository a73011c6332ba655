//! Eviction shared by the size-bounded caches ([`crate::days`], [`crate::results`]).

use std::collections::HashMap;
use std::hash::Hash;

/// Removes entries of `map`, in no particular order (a dashboard's queries come back on
/// their next request), until the size held, `held` at first, is at most `keep`; returns
/// the removed values and the size left. The caller drops the values after releasing its
/// lock: freeing hundreds of thousands of rows takes milliseconds, which every other
/// request would wait out.
pub(crate) fn evict<K: Clone + Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    mut held: usize,
    keep: usize,
    size: impl Fn(&V) -> usize,
) -> (Vec<V>, usize) {
    let doomed: Vec<K> = map
        .iter()
        .take_while(|(_, value)| {
            let over = held > keep;
            held -= size(value) * usize::from(over);
            over
        })
        .map(|(key, _)| key.clone())
        .collect();
    (doomed.iter().filter_map(|key| map.remove(key)).collect(), held)
}
