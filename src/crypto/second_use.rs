//! A small cache of values built only at the second use of their key: what the fixed-base
//! tables of public points need (the ECCSI KPAKs of pair validation, `eccsi/kpak_tables.rs`;
//! the SAKKE receiver points, `sakke/recipients.rs`). A table costs as much as a few uses
//! without it, so a key used once costs nothing extra and a stream of ever-new keys never
//! triggers a build. At most `capacity` keys are remembered (seen once, or with their value),
//! most recent first. Keys and values are public; the build runs outside the lock, so other
//! callers go on meanwhile.

use std::sync::{Arc, Mutex, PoisonError};

enum Slot<T> {
    Seen,
    Built(Arc<T>),
}

/// The remembered keys, most recent first.
pub(crate) struct SecondUse<K, T> {
    capacity: usize,
    slots: Mutex<Vec<(K, Slot<T>)>>,
}

impl<K: PartialEq + Clone, T> SecondUse<K, T> {
    pub(crate) const fn new(capacity: usize) -> Self {
        Self {
            capacity,
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The value of `key` if this is at least its second use (built now by `build` if it was
    /// only seen before; `None` if `build` gives none); `None` on its first use.
    pub(crate) fn get(&self, key: &K, build: impl FnOnce() -> Option<T>) -> Option<Arc<T>> {
        {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            match slots.iter().position(|(k, _)| k == key) {
                None => {
                    slots.insert(0, (key.clone(), Slot::Seen));
                    slots.truncate(self.capacity);
                    return None;
                }
                Some(i) => {
                    let entry = slots.remove(i);
                    let built = match &entry.1 {
                        Slot::Built(t) => Some(Arc::clone(t)),
                        Slot::Seen => None,
                    };
                    slots.insert(0, entry);
                    if built.is_some() {
                        return built;
                    }
                }
            }
        }
        let value = Arc::new(build()?);
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, slot)) = slots.iter_mut().find(|(k, _)| k == key) {
            *slot = Slot::Built(Arc::clone(&value));
        }
        Some(value)
    }

    /// Whether `key` has its value now (tests).
    #[cfg(test)]
    pub(crate) fn has(&self, key: &K) -> bool {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .iter()
            .any(|(k, s)| k == key && matches!(s, Slot::Built(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_at_the_second_use_and_forgets_the_least_recent() {
        let c: SecondUse<u8, u32> = SecondUse::new(2);
        let mut builds = 0;
        let mut build = |v| {
            builds += 1;
            Some(v)
        };
        assert!(
            c.get(&1, || build(10)).is_none(),
            "first use: nothing built"
        );
        assert_eq!(c.get(&1, || build(10)).as_deref(), Some(&10));
        assert_eq!(c.get(&1, || build(11)).as_deref(), Some(&10), "kept");
        assert!(c.has(&1));
        assert!(c.get(&2, || build(20)).is_none());
        assert!(c.get(&3, || build(30)).is_none(), "pushes 1 out");
        assert!(!c.has(&1));
        assert!(c.get(&1, || build(12)).is_none(), "seen anew");
        assert!(c.get(&4, || None).is_none());
        assert!(c.get(&4, || None).is_none(), "a build that gives nothing");
        assert!(!c.has(&4));
        assert_eq!(builds, 1);
    }
}
