//! What pulls in flight rely on. Two pulls may share a blob or a layer that neither has
//! committed yet: when one fails, its rollback must leave what the other still needs.

use berth_store::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default, Clone)]
pub(crate) struct Leases {
    held: Arc<Mutex<HashMap<Digest, usize>>>,
}

/// Leases of one pull, given back when dropped.
pub(crate) struct LeaseGuard {
    leases: Leases,
    digests: Vec<Digest>,
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, usize>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn acquire(&self, digests: impl IntoIterator<Item = Digest>) -> LeaseGuard {
        let mut digests: Vec<Digest> = digests.into_iter().collect();
        digests.sort();
        digests.dedup();
        let mut held = self.lock();
        for d in &digests {
            *held.entry(d.clone()).or_default() += 1;
        }
        LeaseGuard {
            leases: self.clone(),
            digests,
        }
    }

    /// Someone besides the caller (who holds one lease on it) relies on `d`.
    pub fn shared(&self, d: &Digest) -> bool {
        self.lock().get(d).is_some_and(|n| *n > 1)
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let mut held = self.leases.lock();
        for d in &self.digests {
            if let Some(n) = held.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    held.remove(d);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_while_two_hold_it() {
        let l = Leases::default();
        let d = Digest::from_sha256_bytes(b"x");
        let a = l.acquire([d.clone(), d.clone()]);
        assert!(!l.shared(&d), "one pull naming it twice is not sharing");
        let b = l.acquire([d.clone()]);
        assert!(l.shared(&d));
        drop(b);
        assert!(!l.shared(&d));
        drop(a);
        assert!(l.held.lock().unwrap().is_empty());
    }
}
