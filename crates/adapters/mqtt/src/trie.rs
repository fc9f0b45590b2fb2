//! The subscription tree of one tenant: topic filters by level, so a publish visits only
//! the branches its topic can match (its own levels, `+` and `#`), not every subscription.
//!
//! Each node keeps the subscriptions whose filter ends there: plain ones (one entry per
//! session) and shared groups (`$share/<group>/<filter>`, one entry per member). Empty
//! branches are pruned when the last subscription leaves, so the tree's size follows the
//! live subscriptions.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ingot_codec_mqtt::SubscriptionOptions;

use crate::broker::Session;

/// One session's subscription at a node.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub session: Arc<Session>,
    pub options: SubscriptionOptions,
    pub sub_id: Option<u32>,
}

/// The members of one shared subscription group at a node.
#[derive(Debug)]
pub(crate) struct Group {
    pub name: Box<str>,
    pub members: Vec<Entry>,
    /// Round-robin position.
    pub next: AtomicUsize,
}

impl Group {
    /// The member to deliver the next message to: round robin over the connected
    /// members, or over all members if none is connected.
    pub fn pick(&self) -> Option<&Entry> {
        let len = self.members.len();
        if len == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..len)
            .filter_map(|i| self.members.get((start + i) % len))
            .find(|e| e.session.is_online())
            .or_else(|| self.members.get(start % len))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Node {
    children: HashMap<Box<str>, Node>,
    subs: Vec<Entry>,
    groups: Vec<Group>,
}

/// A subscription a publish matched.
pub(crate) enum Hit<'a> {
    Plain(&'a Entry),
    Shared(&'a Group),
}

impl Node {
    pub fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subs.is_empty() && self.groups.is_empty()
    }

    /// Adds or replaces `entry` under `filter` (in `group` if shared); true if the session
    /// already had this subscription.
    pub fn insert(&mut self, filter: &str, group: Option<&str>, entry: Entry) -> bool {
        let mut node = self;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let list = match group {
            None => &mut node.subs,
            Some(name) => {
                let at = match node.groups.iter().position(|g| &*g.name == name) {
                    Some(at) => at,
                    None => {
                        node.groups.push(Group {
                            name: name.into(),
                            members: Vec::new(),
                            next: AtomicUsize::new(0),
                        });
                        node.groups.len() - 1
                    }
                };
                match node.groups.get_mut(at) {
                    Some(g) => &mut g.members,
                    None => return false,
                }
            }
        };
        match list.iter_mut().find(|e| e.session.id == entry.session.id) {
            Some(existing) => {
                *existing = entry;
                true
            }
            None => {
                list.push(entry);
                false
            }
        }
    }

    /// Removes session `session`'s subscription to `filter` (in `group`); true if it existed.
    pub fn remove(&mut self, filter: &str, group: Option<&str>, session: u64) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        self.remove_at(&levels, group, session)
    }

    fn remove_at(&mut self, levels: &[&str], group: Option<&str>, session: u64) -> bool {
        let Some((level, rest)) = levels.split_first() else {
            let list = match group {
                None => &mut self.subs,
                Some(name) => match self.groups.iter_mut().find(|g| &*g.name == name) {
                    Some(g) => &mut g.members,
                    None => return false,
                },
            };
            let before = list.len();
            list.retain(|e| e.session.id != session);
            let removed = list.len() != before;
            self.groups.retain(|g| !g.members.is_empty());
            return removed;
        };
        let Some(child) = self.children.get_mut(*level) else {
            return false;
        };
        let removed = child.remove_at(rest, group, session);
        if child.is_empty() {
            self.children.remove(*level);
        }
        removed
    }

    /// Calls `hit` for every subscription matching the topic `topic`.
    pub fn matches<'a>(&'a self, topic: &str, hit: &mut impl FnMut(Hit<'a>)) {
        self.match_at(topic.split('/'), topic.starts_with('$'), hit);
    }

    fn match_at<'a>(
        &'a self,
        mut levels: std::str::Split<'_, char>,
        at_dollar_root: bool,
        hit: &mut impl FnMut(Hit<'a>),
    ) {
        let Some(level) = levels.next() else {
            self.hits(hit);
            // `a/#` also matches `a`.
            if let Some(all) = self.children.get("#") {
                all.hits(hit);
            }
            return;
        };
        if let Some(child) = self.children.get(level) {
            child.match_at(levels.clone(), false, hit);
        }
        // Wildcards at the first level never match `$` topics.
        if at_dollar_root {
            return;
        }
        if let Some(one) = self.children.get("+") {
            one.match_at(levels, false, hit);
        }
        if let Some(all) = self.children.get("#") {
            all.hits(hit);
        }
    }

    fn hits<'a>(&'a self, hit: &mut impl FnMut(Hit<'a>)) {
        for e in &self.subs {
            hit(Hit::Plain(e));
        }
        for g in &self.groups {
            hit(Hit::Shared(g));
        }
    }
}

#[cfg(test)]
mod tests {
    use ingot_codec_mqtt::QoS;

    use super::*;
    use crate::broker::tests_support::session;

    fn entry(id: u64) -> Entry {
        Entry {
            session: session(id),
            options: SubscriptionOptions::qos(QoS::AtLeastOnce),
            sub_id: None,
        }
    }

    fn matched(root: &Node, topic: &str) -> Vec<u64> {
        let mut ids = Vec::new();
        root.matches(topic, &mut |h| match h {
            Hit::Plain(e) => ids.push(e.session.id),
            Hit::Shared(g) => ids.extend(g.members.iter().map(|e| e.session.id + 1000)),
        });
        ids.sort_unstable();
        ids
    }

    #[test]
    fn matching_agrees_with_the_codec_matcher() {
        let filters = [
            "#", "+", "a/#", "a/+", "a/b", "+/b", "+/+", "a/b/#", "$SYS/#", "$SYS/+", "/+", "a/+/c",
        ];
        let mut root = Node::default();
        for (i, f) in filters.iter().enumerate() {
            assert!(!root.insert(f, None, entry(i as u64)));
        }
        for topic in [
            "a", "a/b", "a/b/c", "b/b", "$SYS/x", "$SYS", "/x", "a/x/c", "x",
        ] {
            let mut expected: Vec<u64> = filters
                .iter()
                .enumerate()
                .filter(|(_, f)| ingot_codec_mqtt::topic::matches(f, topic))
                .map(|(i, _)| i as u64)
                .collect();
            expected.sort_unstable();
            assert_eq!(matched(&root, topic), expected, "{topic}");
        }
    }

    #[test]
    fn removal_prunes_and_replacing_reports_existing() {
        let mut root = Node::default();
        assert!(!root.insert("a/b/c", None, entry(1)));
        assert!(
            root.insert("a/b/c", None, entry(1)),
            "same session: replaced"
        );
        assert!(!root.insert("a/b/c", Some("g"), entry(2)));
        assert_eq!(matched(&root, "a/b/c"), vec![1, 1002]);
        assert!(root.remove("a/b/c", None, 1));
        assert!(!root.remove("a/b/c", None, 1));
        assert!(root.remove("a/b/c", Some("g"), 2));
        assert!(root.is_empty(), "pruned to nothing");
    }

    #[test]
    fn shared_groups_round_robin() {
        let mut root = Node::default();
        for id in 1..=3 {
            root.insert("t", Some("g"), entry(id));
        }
        let mut picks = Vec::new();
        for _ in 0..6 {
            root.matches("t", &mut |h| {
                if let Hit::Shared(g) = h {
                    picks.push(g.pick().map(|e| e.session.id));
                }
            });
        }
        let mut counts = [0; 4];
        for p in picks.into_iter().flatten() {
            counts[p as usize] += 1;
        }
        assert_eq!(&counts[1..], &[2, 2, 2], "each member twice");
    }
}
