//! Helpers shared by the state tests: a temporary state and a log that applies commands at
//! consecutive indexes.

use super::command::{Command, Envelope, Outcome};
use super::machine::StateMachine;
use crate::kms::acl::Role;
use crate::kms::period::PeriodParams;

pub(crate) fn temp_state() -> StateMachine {
    StateMachine::open(sled::Config::new().temporary(true).open().unwrap()).unwrap()
}

/// A state and the index of the next entry.
pub(crate) struct Log {
    pub s: StateMachine,
    pub next: u64,
}

impl Log {
    pub fn new() -> Self {
        Self {
            s: temp_state(),
            next: 1,
        }
    }

    /// Applies `command` (with the version it needs) at the next index.
    pub fn apply(&mut self, command: Command) -> Outcome {
        let index = self.next;
        self.next += 1;
        self.s
            .apply(index, &Envelope::new(index, command))
            .unwrap()
            .expect("a new index is applied")
    }

    /// Applies and asserts the command was applied.
    pub fn ok(&mut self, command: Command) {
        let shown = format!("{command:?}");
        assert_eq!(self.apply(command), Outcome::Applied, "{shown}");
    }

    /// Applies and returns the rejection reason (panics if applied).
    pub fn rejected(&mut self, command: Command) -> String {
        let shown = format!("{command:?}");
        match self.apply(command) {
            Outcome::Rejected(why) => why,
            Outcome::Applied => panic!("applied: {shown}"),
        }
    }

    pub fn community(&mut self, kms_uri: &str) {
        self.ok(Command::CreateCommunity {
            kms_uri: kms_uri.into(),
            period: PeriodParams {
                period_s: 100,
                offset_s: 0,
            },
        });
    }

    pub fn acl(&mut self, principal: &str, role: Role, groups: &[&str]) {
        self.ok(Command::PutAclEntry {
            principal: principal.into(),
            role,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        });
    }
}
