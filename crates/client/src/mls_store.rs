//! MLS state in the profile store: `mls-rs` group states, epoch secrets and KeyPackage
//! private keys, each an encrypted record (see [`crate::store`]).
//!
//! Only [`PRIOR_EPOCH_RETENTION`] past epochs are kept per group; older epochs' records
//! are deleted (and, with `secure_delete`, overwritten) as soon as a new epoch is written.

use std::sync::Arc;

use mls_rs_codec::{MlsDecode, MlsEncode};
use mls_rs_core::error::IntoAnyError;
use mls_rs_core::group::{EpochRecord, GroupState, GroupStateStorage};
use mls_rs_core::key_package::{KeyPackageData, KeyPackageStorage};
use sotto_core::device::PRIOR_EPOCH_RETENTION;
use zeroize::Zeroizing;

use crate::error::{ClientError, Result};
use crate::store::{Slot, Store};

const GROUP: &str = "mls_group";
const EPOCH: &str = "mls_epoch";
const KEY_PACKAGE: &str = "mls_key_package";

impl IntoAnyError for ClientError {
    fn into_dyn_error(
        self,
    ) -> core::result::Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(Box::new(self))
    }
}

/// The group-state and KeyPackage storage of a profile, for `mls-rs`.
#[derive(Debug, Clone)]
pub struct MlsStore(pub Arc<Store>);

fn epoch_key(epoch: u64) -> [u8; 8] {
    epoch.to_be_bytes()
}

fn sort_of(epoch: u64) -> Result<i64> {
    i64::try_from(epoch).map_err(|_| ClientError::Store("epoch number out of range".into()))
}

impl GroupStateStorage for MlsStore {
    type Error = ClientError;

    fn state(&self, group_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let conn = self.0.conn()?;
        self.0.get_raw(&conn, Slot::new(GROUP, &[group_id]))
    }

    fn epoch(&self, group_id: &[u8], epoch_id: u64) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let conn = self.0.conn()?;
        let id = epoch_key(epoch_id);
        self.0
            .get_raw(&conn, Slot::in_group(EPOCH, &[group_id, &id], &[group_id]))
    }

    fn write(
        &mut self,
        state: GroupState,
        epoch_inserts: Vec<EpochRecord>,
        epoch_updates: Vec<EpochRecord>,
    ) -> Result<()> {
        let mut conn = self.0.conn()?;
        let tx = conn.transaction()?;
        let group_id = state.id.as_slice();
        self.0
            .put_raw(&tx, Slot::new(GROUP, &[group_id]), 0, None, &state.data)?;
        let mut newest = None;
        for record in epoch_inserts.iter().chain(epoch_updates.iter()) {
            let id = epoch_key(record.id);
            let key: [&[u8]; 2] = [group_id, &id];
            let group: [&[u8]; 1] = [group_id];
            let slot = Slot::in_group(EPOCH, &key, &group);
            self.0
                .put_raw(&tx, slot, sort_of(record.id)?, None, &record.data)?;
            newest = newest.max(Some(record.id));
        }
        if let Some(newest) = newest {
            let retention = PRIOR_EPOCH_RETENTION as u64;
            // As mls-rs's own storages do: keep the newest `retention` epoch records.
            if newest >= retention {
                let forget = sort_of(newest - retention)?;
                self.0.delete_group_up_to(&tx, EPOCH, &[group_id], forget)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn max_epoch_id(&self, group_id: &[u8]) -> Result<Option<u64>> {
        let conn = self.0.conn()?;
        Ok(self
            .0
            .max_sort(&conn, EPOCH, &[group_id])?
            .and_then(|n| u64::try_from(n).ok()))
    }
}

/// Deletes every MLS record of group `group_id` (after leaving it, or being removed).
pub(crate) fn forget_group(
    store: &Store,
    conn: &rusqlite::Connection,
    group_id: &[u8],
) -> Result<()> {
    store.delete(conn, Slot::new(GROUP, &[group_id]))?;
    store.delete_group(conn, EPOCH, &[group_id])?;
    Ok(())
}

impl KeyPackageStorage for MlsStore {
    type Error = ClientError;

    fn delete(&mut self, id: &[u8]) -> Result<()> {
        let conn = self.0.conn()?;
        self.0.delete(&conn, Slot::new(KEY_PACKAGE, &[id]))?;
        Ok(())
    }

    fn insert(&mut self, id: Vec<u8>, pkg: KeyPackageData) -> Result<()> {
        let bytes = Zeroizing::new(pkg.mls_encode_to_vec().map_err(ClientError::store)?);
        let conn = self.0.conn()?;
        self.0
            .put_raw(&conn, Slot::new(KEY_PACKAGE, &[&id]), 0, None, &bytes)
    }

    fn get(&self, id: &[u8]) -> Result<Option<KeyPackageData>> {
        let conn = self.0.conn()?;
        self.0
            .get_raw(&conn, Slot::new(KEY_PACKAGE, &[id]))?
            .map(|bytes| {
                KeyPackageData::mls_decode(&mut bytes.as_slice())
                    .map_err(|_| ClientError::Store("a stored KeyPackage is malformed".into()))
            })
            .transpose()
    }
}
