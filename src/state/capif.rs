//! Apply and read the CAPIF state (version 7, tree `capif`; TS 29.222): the CCF's `apiId` of
//! our publication of an API (key `api/<apiName>` → the id as UTF-8) and the invokers the CCF
//! revoked (key `revoked/<apiInvokerId>` → bincode `u64`, the revocation time). Every node
//! reads both after its read barrier, so a revocation is in force on every node at once.

use super::machine::{dec, enc, StateError, StateMachine, Tx, TxResult};

fn api_key(api_name: &str) -> Vec<u8> {
    format!("api/{api_name}").into_bytes()
}

fn revoked_key(invoker: &str) -> Vec<u8> {
    format!("revoked/{invoker}").into_bytes()
}

/// Apply of `SetCapifPublication`.
pub(super) fn set_publication(tx: &Tx, api_name: &str, api_id: Option<&str>) -> TxResult<()> {
    match api_id {
        Some(id) => tx.capif.insert(api_key(api_name), id.as_bytes())?,
        None => tx.capif.remove(api_key(api_name))?,
    };
    Ok(())
}

/// Apply of `RevokeCapifInvoker` (the first revocation's time is kept).
pub(super) fn revoke_invoker(tx: &Tx, invoker: &str, at_unix: u64) -> TxResult<()> {
    let key = revoked_key(invoker);
    if tx.capif.get(&key)?.is_none() {
        tx.capif.insert(key, enc(&at_unix)?)?;
    }
    Ok(())
}

/// Apply of `ReinstateCapifInvoker`.
pub(super) fn reinstate_invoker(tx: &Tx, invoker: &str) -> TxResult<()> {
    tx.capif.remove(revoked_key(invoker))?;
    Ok(())
}

impl StateMachine {
    /// The CCF's `apiId` of our publication of `api_name`, as applied here.
    pub fn capif_api_id(&self, api_name: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .read()
            .capif
            .get(api_key(api_name))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// When the CCF revoked `invoker`, if it did (as applied here).
    pub fn capif_revoked(&self, invoker: &str) -> Result<Option<u64>, StateError> {
        self.read()
            .capif
            .get(revoked_key(invoker))?
            .map(|v| dec("capif revocation", &v))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use crate::state::command::Command;
    use crate::state::test_util::Log;

    #[test]
    fn publication_and_revocation_apply() {
        let mut log = Log::new();
        let set = |id: Option<&str>| Command::SetCapifPublication {
            api_name: "ss-kir".into(),
            api_id: id.map(str::to_owned),
        };
        log.apply(set(Some("A1")));
        assert_eq!(log.s.capif_api_id("ss-kir").unwrap().as_deref(), Some("A1"));
        log.apply(set(None));
        assert_eq!(log.s.capif_api_id("ss-kir").unwrap(), None);
        for at in [100, 200] {
            log.apply(Command::RevokeCapifInvoker {
                api_invoker_id: "INV".into(),
                at_unix: at,
            });
        }
        assert_eq!(log.s.capif_revoked("INV").unwrap(), Some(100));
        assert_eq!(log.s.capif_revoked("other").unwrap(), None);
        log.apply(Command::ReinstateCapifInvoker {
            api_invoker_id: "INV".into(),
        });
        assert_eq!(log.s.capif_revoked("INV").unwrap(), None);
    }
}
