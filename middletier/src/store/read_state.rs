//! What one user has read of one feed, as a watermark and its exceptions.
//!
//! Storing a flag per (user, item) makes "mark everything read" write one
//! row per item of every feed: thousands of writes for one click. Instead,
//! as Google Reader and CommaFeed did, each (user, feed) keeps:
//!
//! - `read_before`: every item with a smaller id is read (ids grow with the
//!   time an item was first stored, so this is "everything that had
//!   arrived by then"); `0` for a new subscription, where nothing is read;
//! - `overrides`: items the user marked one by one, against the watermark
//!   (read above it, or unread below it).
//!
//! Marking a feed read moves the watermark and drops the overrides below
//! it: one write, whatever the number of items. [`ReadState`] is plain
//! data; stores persist its two parts.

use std::collections::BTreeMap;

use super::ids::ItemId;

/// One user's read state for one feed (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadState {
    /// Items below this id are read unless overridden.
    pub read_before: ItemId,
    /// Item id → read, where the user said otherwise than the watermark.
    pub overrides: BTreeMap<ItemId, bool>,
}

impl ReadState {
    /// Whether the item with `id` is read.
    pub fn is_read(&self, id: ItemId) -> bool {
        self.overrides
            .get(&id)
            .copied()
            .unwrap_or(id < self.read_before)
    }

    /// How many of `ids` are unread.
    pub fn unread(&self, ids: impl IntoIterator<Item = ItemId>) -> usize {
        ids.into_iter().filter(|id| !self.is_read(*id)).count()
    }

    /// Marks one item; returns whether an override must be stored (`Some`)
    /// or removed (`None`) for it.
    pub fn mark(&mut self, id: ItemId, read: bool) -> Option<bool> {
        if (id < self.read_before) == read {
            self.overrides.remove(&id);
            None
        } else {
            self.overrides.insert(id, read);
            Some(read)
        }
    }

    /// Marks read every item below `before`: the watermark moves up to it
    /// (never back), and the overrides below `before` go.
    pub fn mark_read_before(&mut self, before: ItemId) {
        self.read_before = self.read_before.max(before);
        self.overrides = self.overrides.split_off(&before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_subscription_has_nothing_read() {
        let state = ReadState::default();
        assert!(!state.is_read(1));
        assert_eq!(state.unread([1, 2, 3]), 3);
    }

    #[test]
    fn marking_one_item_overrides_the_watermark() {
        let mut state = ReadState::default();
        assert_eq!(state.mark(5, true), Some(true));
        assert!(state.is_read(5));
        assert_eq!(state.unread([4, 5, 6]), 2);
        // Back to what the watermark says: no override left.
        assert_eq!(state.mark(5, false), None);
        assert!(state.overrides.is_empty());
    }

    #[test]
    fn marking_a_feed_read_moves_the_watermark_and_keeps_newer_choices() {
        let mut state = ReadState::default();
        state.mark(2, true);
        state.mark(9, true);
        state.mark_read_before(5);
        assert_eq!(state.unread([1, 2, 3, 4, 6, 9, 10]), 2, "6 and 10");
        assert_eq!(
            state.overrides.keys().copied().collect::<Vec<_>>(),
            [9],
            "the override below the watermark is gone"
        );
        // Unread again below the watermark.
        assert_eq!(state.mark(3, false), Some(false));
        assert!(!state.is_read(3));
        // The watermark never moves back.
        state.mark_read_before(1);
        assert_eq!(state.read_before, 5);
        assert!(
            !state.is_read(3),
            "an earlier mark-read changes nothing above it"
        );
        state.mark_read_before(4);
        assert!(state.is_read(3));
    }
}
