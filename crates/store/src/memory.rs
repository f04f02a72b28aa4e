//! An in-memory backend: a `BTreeMap` behind a mutex. Nothing survives the process, so it is
//! for tests and `--dev` servers only.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::backend::{Action, Entries, Expect, Export, Import, Op, Storage, StoreError};
use crate::keys::{child_of, folder_end, validate_key, validate_prefix};

/// A [`Storage`] that keeps every entry in memory. Writes are "durable" only for the life
/// of the value.
#[derive(Default)]
pub struct MemoryStorage {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries the store holds.
    pub fn len(&self) -> Result<usize, StoreError> {
        Ok(self.lock()?.len())
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.lock()?.is_empty())
    }

    fn lock(&self) -> Result<MutexGuard<'_, BTreeMap<String, Vec<u8>>>, StoreError> {
        // A panic while holding the lock can only come from a bug in this file; report it
        // as a backend failure rather than propagating the panic to every later caller.
        self.entries
            .lock()
            .map_err(|_| StoreError::Backend("in-memory storage lock poisoned".into()))
    }
}

// Values are ciphertext, but Debug shows no entry anyway.
impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.lock().map(|entries| entries.len()).ok();
        f.debug_struct("MemoryStorage")
            .field("entries", &len)
            .finish()
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        validate_key(key)?;
        Ok(self.lock()?.get(key).cloned())
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        validate_key(key)?;
        self.lock()?.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        self.lock()?.remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        let entries = self.lock()?;
        let end = folder_end(prefix);
        let mut children: Vec<String> = Vec::new();
        let mut start = prefix.to_owned();
        loop {
            let upper = match &end {
                Some(end) => Bound::Excluded(end.as_str()),
                None => Bound::Unbounded,
            };
            let mut next_start = None;
            for key in entries
                .range::<str, _>((Bound::Included(start.as_str()), upper))
                .map(|(key, _)| key)
            {
                let Some(child) = child_of(prefix, key) else {
                    continue;
                };
                if children.last().map(String::as_str) != Some(child) {
                    children.push(child.to_owned());
                }
                if child.ends_with('/') {
                    // Skip the rest of this sub-folder instead of walking all of it.
                    next_start = folder_end(&format!("{prefix}{child}"));
                    break;
                }
            }
            match next_start {
                Some(next) => start = next,
                None => break,
            }
        }
        Ok(children)
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        for op in &ops {
            validate_key(&op.key)?;
        }
        let mut entries = self.lock()?;
        // Every condition is judged against the state before the commit, then every action
        // applies in order: the same semantics as the SQL backends.
        for op in &ops {
            let holds = match &op.expect {
                Expect::Any => true,
                Expect::Absent => !entries.contains_key(&op.key),
                Expect::Value(expected) => entries.get(&op.key) == Some(expected),
            };
            if !holds {
                return Err(StoreError::Conflict);
            }
        }
        for op in ops {
            match op.action {
                Action::Put(value) => {
                    entries.insert(op.key, value);
                }
                Action::Delete => {
                    entries.remove(&op.key);
                }
                Action::Check => {}
            }
        }
        Ok(())
    }

    /// A copy of the map taken under its lock: consistent, though held whole (this backend
    /// holds everything in memory anyway).
    async fn export(&self) -> Result<Export, StoreError> {
        let entries: Vec<(String, Vec<u8>)> = self
            .lock()?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let count = entries.len() as u64;
        let (sender, batches) = tokio::sync::mpsc::channel(crate::backend::EXPORT_QUEUE);
        tokio::spawn(async move {
            let mut entries = entries.into_iter();
            loop {
                let batch: Entries = entries.by_ref().take(crate::EXPORT_BATCH).collect();
                if batch.is_empty() || sender.send(Ok(batch)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Export { count, batches })
    }

    async fn replace_all(
        &self,
        mut steps: tokio::sync::mpsc::Receiver<Import>,
    ) -> Result<u64, StoreError> {
        let mut staged = BTreeMap::new();
        loop {
            match steps.recv().await {
                Some(Import::Entries(batch)) => {
                    for (key, value) in batch {
                        validate_key(&key)?;
                        staged.insert(key, value);
                    }
                }
                Some(Import::Commit) => break,
                None => return Err(StoreError::ImportAborted),
            }
        }
        let count = staged.len() as u64;
        *self.lock()? = staged;
        Ok(count)
    }
}
