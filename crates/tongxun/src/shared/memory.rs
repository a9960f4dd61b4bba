//! The shared state of a single node: maps in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::{Claim, Entry, Holder, Member};
use crate::lock;

#[derive(Default)]
pub(super) struct Memory {
    maps: Mutex<Maps>,
}

/// Everything by `(scope, name)`.
#[derive(Default)]
struct Maps {
    names: HashMap<(String, String), Holder>,
    groups: HashMap<(String, String), HashMap<String, String>>,
    logs: HashMap<(String, String), VecDeque<Entry>>,
    next_ids: HashMap<String, u64>,
}

fn key(scope: &str, name: &str) -> (String, String) {
    (scope.to_owned(), name.to_owned())
}

impl Memory {
    pub(super) fn claim(&self, scope: &str, name: &str, owner: &str, value: &str) -> Claim {
        let mut maps = lock(&self.maps);
        let held = maps
            .names
            .entry(key(scope, name))
            .or_insert_with(|| Holder {
                owner: owner.to_owned(),
                value: value.to_owned(),
            });
        if held.owner != owner {
            return Claim::Held(held.clone());
        }
        value.clone_into(&mut held.value);
        Claim::Claimed
    }

    pub(super) fn release(&self, scope: &str, name: &str, owner: &str) -> bool {
        let mut maps = lock(&self.maps);
        let key = key(scope, name);
        if maps.names.get(&key).is_some_and(|held| held.owner == owner) {
            maps.names.remove(&key);
            return true;
        }
        false
    }

    pub(super) fn holder(&self, scope: &str, name: &str) -> Option<Holder> {
        lock(&self.maps).names.get(&key(scope, name)).cloned()
    }

    pub(super) fn add(&self, scope: &str, group: &str, member: &str, value: &str) {
        lock(&self.maps)
            .groups
            .entry(key(scope, group))
            .or_default()
            .insert(member.to_owned(), value.to_owned());
    }

    pub(super) fn remove(&self, scope: &str, group: &str, member: &str) -> bool {
        let mut maps = lock(&self.maps);
        let key = key(scope, group);
        let Some(members) = maps.groups.get_mut(&key) else {
            return false;
        };
        let removed = members.remove(member).is_some();
        if members.is_empty() {
            maps.groups.remove(&key);
        }
        removed
    }

    pub(super) fn members(&self, scope: &str, group: &str) -> Vec<Member> {
        lock(&self.maps)
            .groups
            .get(&key(scope, group))
            .map(|members| {
                members
                    .iter()
                    .map(|(key, value)| Member {
                        key: key.clone(),
                        value: value.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn next_id(&self, scope: &str) -> u64 {
        let mut maps = lock(&self.maps);
        Self::next_id_in(&mut maps, scope)
    }

    fn next_id_in(maps: &mut Maps, scope: &str) -> u64 {
        let next = maps
            .next_ids
            .entry(scope.to_owned())
            .or_insert_with(super::first_id);
        *next += 1;
        *next
    }

    pub(super) fn append(&self, scope: &str, name: &str, data: &str, max_len: usize) -> u64 {
        let mut maps = lock(&self.maps);
        let id = Self::next_id_in(&mut maps, scope);
        let log = maps.logs.entry(key(scope, name)).or_default();
        log.push_back(Entry {
            id,
            data: data.to_owned(),
        });
        while log.len() > max_len {
            log.pop_front();
        }
        id
    }

    pub(super) fn recent(&self, scope: &str, name: &str) -> Vec<Entry> {
        lock(&self.maps)
            .logs
            .get(&key(scope, name))
            .map(|log| log.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn forget(&self, scope: &str, name: &str) {
        lock(&self.maps).logs.remove(&key(scope, name));
    }
}
