//! A unit's list of needs (需求清单): the need list of [`crate::lists`],
//! with the narrow signature the `gongjian need` commands use.

use automerge::Automerge;

use crate::lists::{Item, ItemError, ItemFields, ItemStatus, ListDoc, ListKind};

pub type Need = Item;
pub type NeedStatus = ItemStatus;
pub type NeedError = ItemError;

/// Typed reads and writes of a needs document.
#[derive(Debug)]
pub struct NeedsDoc<'a>(pub &'a mut Automerge);

impl NeedsDoc<'_> {
    /// Adds a need in one local change; returns the change's raw bytes.
    pub fn add(
        &mut self,
        id: &str,
        title: &str,
        category: &str,
        description: &str,
        now: i64,
    ) -> Result<Vec<u8>, NeedError> {
        let fields = ItemFields {
            title: Some(title.to_owned()),
            category: Some(category.to_owned()),
            description: Some(description.to_owned()),
            ..ItemFields::default()
        };
        ListDoc::new(self.0, ListKind::Need).add(id, &fields, now)
    }

    /// Sets the status of a need in one local change.
    pub fn set_status(
        &mut self,
        id: &str,
        status: NeedStatus,
        now: i64,
    ) -> Result<Vec<u8>, NeedError> {
        ListDoc::new(self.0, ListKind::Need).set_status(id, status, now)
    }

    /// Every need, by creation time then id.
    pub fn list(&mut self) -> Vec<Need> {
        ListDoc::new(self.0, ListKind::Need).list()
    }
}
