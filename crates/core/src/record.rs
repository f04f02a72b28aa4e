//! Records an engine keeps whole under one storage key (a user, a role), as JSON behind the
//! barrier, and changes by compare-and-set.

use serde::Serialize;
use serde::de::DeserializeOwned;
use ward_store::{Expect, Op};

use crate::{Core, CoreError, CoreResult};

/// Compare-and-set attempts of a change to one record before it gives up.
pub(crate) const CHANGE_ATTEMPTS: usize = 16;

/// The record JSON `bytes` hold; `record` names its kind in the error, never its content.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], record: &'static str) -> CoreResult<T> {
    serde_json::from_slice(bytes).map_err(CoreError::corrupt_json(record))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> CoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(CoreError::Encode)
}

/// The record stored at `key`, if any.
pub(crate) async fn read<T: DeserializeOwned>(
    core: &Core,
    key: &str,
    record: &'static str,
) -> CoreResult<Option<T>> {
    match core.barrier.get(key).await? {
        Some(bytes) => decode(bytes.expose(), record).map(Some),
        None => Ok(None),
    }
}

/// Stores at `key` the record `change` makes of the stored one (`None`: absent), by
/// compare-and-set, so that of two concurrent changes to one record neither is lost.
pub(crate) async fn change<T: Serialize + DeserializeOwned>(
    core: &Core,
    key: &str,
    record: &'static str,
    change: impl Fn(Option<T>) -> CoreResult<T>,
) -> CoreResult<()> {
    for _ in 0..CHANGE_ATTEMPTS {
        let (stored, expect) = match core.barrier.get_entry(key).await? {
            Some(entry) => (
                Some(decode(entry.value.expose(), record)?),
                Expect::Value(entry.stamp()),
            ),
            None => (None, Expect::Absent),
        };
        let bytes = encode(&change(stored)?)?;
        let op = Op::put(key.to_owned(), expect, bytes);
        if core.barrier.try_commit(vec![op]).await? {
            return Ok(());
        }
    }
    Err(CoreError::Contended { record })
}
