//! [`Parties`]: what the parties of the service listener manage (TS 33.434 5.1, 5.8): the
//! access control list (`acl`), SEAL key provisioning pushes (`key_provisioning`) and key
//! event subscriptions (`subscriptions`, our extension). Each of those modules holds one part
//! of its `impl`.

use std::ops::Deref;
use std::sync::Arc;

use super::core::NodeCore;

/// The party service of a node.
pub struct Parties {
    core: Arc<NodeCore>,
}

impl Deref for Parties {
    type Target = NodeCore;
    fn deref(&self) -> &NodeCore {
        &self.core
    }
}

impl Parties {
    pub(super) fn new(core: Arc<NodeCore>) -> Self {
        Self { core }
    }
}
