//! A small in-process cache of query results, keyed by the query.
//!
//! Counts before `complete_until` no longer change in the stream, so a result whose
//! whole range lies before it is kept longer ([`FINAL_TTL`], bounding how long a batch
//! backfill correction can go unseen); any other result is kept only [`OPEN_TTL`],
//! about one attribution batch. Concurrent misses of one key share a single database
//! query, so an expiring entry never sends a burst of identical scans to the database,
//! and while that query runs the others get the previous result (stale by at most the
//! query's own time): only the one caller who found the entry expired waits for it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// How long a result over a range that is complete stays cached.
pub const FINAL_TTL: Duration = Duration::from_secs(60);
/// How long a result over a range that may still change stays cached.
pub const OPEN_TTL: Duration = Duration::from_secs(1);
/// How long a result over a range ending at `to_ms` may be reused.
pub fn ttl(to_ms: i64, complete_until_ms: Option<i64>) -> Duration {
    let complete = complete_until_ms.is_some_and(|until| to_ms <= until);
    if complete { FINAL_TTL } else { OPEN_TTL }
}

/// Most entries kept by default; past this, expired entries go, then everything.
const CAPACITY: usize = 512;

#[derive(Debug)]
struct Entry<V> {
    expires: Instant,
    /// This period's result; empty until its computation succeeds.
    value: Arc<OnceCell<Arc<V>>>,
    /// The previous period's result, served while this period's is computed.
    stale: Option<Arc<V>>,
}

/// What a lookup does once the lock is released.
enum Lookup<V> {
    Ready(Arc<V>),
    Compute(Arc<OnceCell<Arc<V>>>),
}

/// Results by key, each computed at most once at a time.
#[derive(Debug)]
pub struct Cache<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
    capacity: usize,
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl<K, V> Cache<K, V> {
    /// A cache keeping at most `capacity` entries (for large values).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), capacity }
    }
}

impl<K: Eq + Hash + Clone, V> Cache<K, V> {
    /// The cached value of `key`, or the one `compute` gives (cached for `ttl` if it succeeds).
    pub async fn get_or_try<E, F, Fut>(&self, key: K, ttl: Duration, compute: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let lookup = {
            let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            match entries.get(&key) {
                Some(entry) if entry.expires > now => match (entry.value.get(), &entry.stale) {
                    (Some(value), _) => Lookup::Ready(value.clone()),
                    // Someone is computing this period's result.
                    (None, Some(stale)) => Lookup::Ready(stale.clone()),
                    (None, None) => Lookup::Compute(entry.value.clone()),
                },
                expired => {
                    let stale = expired.and_then(|e| e.value.get().cloned().or_else(|| e.stale.clone()));
                    if entries.len() >= self.capacity {
                        entries.retain(|_, e| e.expires > now);
                        if entries.len() >= self.capacity {
                            entries.clear();
                        }
                    }
                    let value = Arc::new(OnceCell::new());
                    entries.insert(key, Entry { expires: now + ttl, value: value.clone(), stale });
                    Lookup::Compute(value)
                }
            }
        };
        match lookup {
            Lookup::Ready(value) => Ok(value),
            // A failed computation leaves the cell empty: the next caller tries again.
            Lookup::Compute(cell) => {
                cell.get_or_try_init(|| async { compute().await.map(Arc::new) }).await.cloned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_misses_compute_once_and_errors_are_not_kept() {
        let cache: Cache<u32, u32> = Cache::default();
        let calls = AtomicUsize::new(0);
        let compute = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, ()>(7)
        };
        let (a, b) = tokio::join!(
            cache.get_or_try(1, Duration::from_secs(60), compute),
            cache.get_or_try(1, Duration::from_secs(60), compute)
        );
        assert_eq!((*a.unwrap(), *b.unwrap()), (7, 7));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        assert_eq!(
            cache.get_or_try(2, Duration::from_secs(60), || async { Err::<u32, _>("down") }).await,
            Err("down")
        );
        assert_eq!(
            *cache.get_or_try(2, Duration::from_secs(60), || async { Ok::<_, ()>(9) }).await.unwrap(),
            9
        );

        // An expired entry is computed again.
        cache.get_or_try(3, Duration::ZERO, || async { Ok::<_, ()>(1) }).await.unwrap();
        assert_eq!(*cache.get_or_try(3, Duration::ZERO, || async { Ok::<_, ()>(2) }).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn while_a_result_is_recomputed_the_others_get_the_previous_one() {
        let cache: Cache<u32, u32> = Cache::default();
        cache.get_or_try(1, Duration::ZERO, || async { Ok::<_, ()>(1) }).await.unwrap();

        let release = tokio::sync::Notify::new();
        let refresh = cache.get_or_try(1, Duration::from_secs(60), || async {
            release.notified().await;
            Ok::<_, ()>(2)
        });
        let others = async {
            tokio::task::yield_now().await;
            let stale = cache
                .get_or_try(1, Duration::from_secs(60), || async {
                    panic!("computed twice") as Result<u32, ()>
                })
                .await
                .unwrap();
            release.notify_one();
            stale
        };
        let (refreshed, stale) = tokio::join!(refresh, others);
        assert_eq!((*refreshed.unwrap(), *stale), (2, 1), "the refresher waits, the others do not");
        let now = cache.get_or_try(1, Duration::from_secs(60), || async { Ok::<_, ()>(3) }).await.unwrap();
        assert_eq!(*now, 2);
    }
}
