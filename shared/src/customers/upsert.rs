//! The bulk planner: many customers' changes (an AIXON chunk, a Monetate POST, an Optimove
//! UpsertCustomer call) applied with few requests.
//!
//! A round reads what it needs in two batched reads — every named identifier's index entry,
//! then the profiles of the customers found — plans each customer's writes from them,
//! reserves listing ordinals for the customers it creates with one atomic add, and commits
//! the plans as transactions that group several customers, several in flight. A group that
//! meets a concurrent change is planned again in the next round, each of its customers
//! alone, after a jittered pause; one busy customer never holds up the rest.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt;
use serde_json::{Value, json};

use super::CustomerStore;
use super::Tid;
use super::attributes::{changes, history_actions};
use super::identity::{Customer, Entry, Identifier, MAX_IDENTIFIERS, index_item};
use super::{CustomerError, listing};
use crate::domain::TenantId;
use crate::retry::{contention_backoff, is_contention};
use crate::storage::{
    Condition, Item, Key, MAX_TRANSACTION_ACTIONS, StorageError, TransactAction, Update,
    approximate_attrs_bytes, batch, keys,
};

/// One customer's changes in a bulk upsert: found (or created) by its customer `key`, its
/// further `identifiers` linked, its `attributes` set, and the calling surface's own `items`
/// (stamped with the customer's `tid`) written in the same transaction as the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Upsert {
    pub key: Identifier,
    pub identifiers: Vec<Identifier>,
    pub attributes: BTreeMap<String, Value>,
    pub items: Vec<Item>,
}

impl Upsert {
    /// The customer key, then the further identifiers.
    fn named(&self) -> impl Iterator<Item = &Identifier> {
        std::iter::once(&self.key).chain(self.identifiers.iter())
    }
}

/// What became of one [`Upsert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// Applied; `not_linked` are identifiers that already belong to another customer (or
    /// would exceed [`MAX_IDENTIFIERS`]) and were left out.
    Applied {
        tid: Tid,
        created: bool,
        not_linked: Vec<Identifier>,
    },
    /// Not applied, and why (a suppressed customer).
    Refused(String),
}

/// Transactions stay under about this many bytes (DynamoDB's limit is 4 MB).
const MAX_TRANSACTION_BYTES: usize = 3_000_000;
/// Transactions of one round in flight at once: enough for the embedded store to commit
/// several with one sync, few enough to keep DynamoDB's per-call latency the bound.
const TRANSACTIONS_IN_FLIGHT: usize = 16;

/// An upsert's writes, planned from what the store held when it was read.
struct Planned {
    actions: Vec<TransactAction>,
    outcome: UpsertOutcome,
    /// Whether the plan creates the customer (then it needs a listing ordinal).
    creates: bool,
}

/// What a round read: index entries by key, and the profiles of the customers they name.
struct Known {
    /// What each named identifier's index entry says (absent: a new identifier).
    entries: HashMap<Identifier, Entry>,
    profiles: HashMap<Key, Item>,
}

impl Known {
    async fn read(
        store: CustomerStore<'_>,
        tenant: &TenantId,
        upserts: &[&Upsert],
    ) -> Result<Known, StorageError> {
        // Each identifier is hashed once: the key of its entry, and back again.
        let keyed: HashMap<Key, &Identifier> = upserts
            .iter()
            .flat_map(|upsert| upsert.named())
            .map(|identifier| (identifier.entry_key(store, tenant), identifier))
            .collect();
        let found = batch::get_many(store.table, keyed.keys().cloned()).await?;
        let entries: HashMap<Identifier, Entry> = found
            .iter()
            .filter_map(|(key, item)| Some(((*keyed.get(key)?).clone(), Entry::of(item)?)))
            .collect();
        let owners: Vec<Key> = upserts
            .iter()
            .filter_map(|upsert| match entries.get(&upsert.key) {
                Some(Entry::Owner(tid)) => Some(keys::customer_profile(tenant, tid)),
                _ => None,
            })
            .collect();
        let profiles = batch::get_many(store.table, owners).await?;
        Ok(Known { entries, profiles })
    }

    fn entry(&self, identifier: &Identifier) -> Option<&Entry> {
        self.entries.get(identifier)
    }

    fn customer(&self, tenant: &TenantId, key: &Identifier) -> Option<Customer> {
        let Some(Entry::Owner(tid)) = self.entry(key) else {
            return None;
        };
        self.profiles
            .get(&keys::customer_profile(tenant, tid))
            .cloned()
            .and_then(Customer::from_item)
    }
}

/// Plans one upsert from what the round read.
fn plan_upsert(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    upsert: &Upsert,
    known: &Known,
    surface: &str,
    now_millis: i64,
) -> Planned {
    if let Some(suppressed) = upsert
        .named()
        .find(|identifier| known.entry(identifier) == Some(&Entry::Suppressed))
    {
        return Planned {
            actions: Vec::new(),
            creates: false,
            outcome: UpsertOutcome::Refused(
                CustomerError::Suppressed(format!("identifier {}", suppressed.api_name))
                    .to_string(),
            ),
        };
    }
    let existing = known.customer(tenant, &upsert.key);
    let (tid, known_identifiers, mut attributes, rev) = match &existing {
        Some(customer) => (
            customer.tid.clone(),
            customer.identifiers.clone(),
            customer
                .profile
                .get("attributes")
                .cloned()
                .unwrap_or_else(|| json!({})),
            Some(customer.rev()),
        ),
        None => (Tid::generate(), Vec::new(), json!({}), None),
    };
    let mut linked = known_identifiers;
    let mut to_link = Vec::new();
    let mut not_linked = Vec::new();
    for identifier in upsert.named() {
        if linked.contains(identifier) {
            continue;
        }
        let taken = known
            .entry(identifier)
            .is_some_and(|entry| *entry != Entry::Owner(tid.clone()));
        if taken || linked.len() >= MAX_IDENTIFIERS {
            not_linked.push(identifier.clone());
        } else {
            linked.push(identifier.clone());
            to_link.push(identifier);
        }
    }
    linked.sort();
    let changed = changes(&attributes, &upsert.attributes);
    for (name, value) in &upsert.attributes {
        attributes[name] = json!({"value": value, "surface": surface, "at": now_millis});
    }
    let profile_key = keys::customer_profile(tenant, &tid);
    let mut actions = vec![match rev {
        Some(rev) => TransactAction::Update {
            key: profile_key,
            update: Update::default()
                .set("identifiers", json!(linked))
                .set("attributes", attributes)
                .set("updated", now_millis)
                .set("rev", rev + 1),
            condition: Condition::equals("rev", rev),
        },
        None => TransactAction::Put {
            item: Item::new(profile_key.pk, profile_key.sk)
                .with("tid", tid.as_str())
                .with("identifiers", json!(linked))
                .with("attributes", attributes)
                .with("created", now_millis)
                .with("updated", now_millis)
                .with("rev", 1),
            condition: Condition::NotExists,
        },
    }];
    // `NotExists` also refuses a tombstone: an erasure committing meanwhile wins.
    actions.extend(to_link.iter().map(|identifier| TransactAction::Put {
        item: index_item(store, tenant, identifier, &tid),
        condition: Condition::NotExists,
    }));
    actions.extend(history_actions(tenant, &tid, &changed, now_millis));
    actions.extend(upsert.items.iter().map(|item| TransactAction::Put {
        item: item.clone().with("tid", tid.as_str()),
        condition: Condition::Always,
    }));
    Planned {
        actions,
        creates: existing.is_none(),
        outcome: UpsertOutcome::Applied {
            tid,
            created: existing.is_none(),
            not_linked,
        },
    }
}

/// Gives a created customer its listing ordinal: on the profile, and its listing entry.
fn number(plan: &mut Planned, tenant: &TenantId, ordinal: i64, customer_key: &Identifier) {
    let UpsertOutcome::Applied { tid, .. } = &plan.outcome else {
        return;
    };
    if let Some(TransactAction::Put { item, .. }) = plan.actions.first_mut() {
        item.attrs.insert("ordinal".into(), json!(ordinal));
    }
    let entry = listing::entry_action(tenant, ordinal, tid, Some(customer_key.value.clone()));
    plan.actions.push(entry);
}

/// Roughly the bytes an action writes: enough to keep a group under the size limit.
fn approximate_bytes(action: &TransactAction) -> usize {
    let key = action.key();
    let values = match action {
        TransactAction::Put { item, .. } => approximate_attrs_bytes(&item.attrs),
        TransactAction::Update { update, .. } => {
            approximate_attrs_bytes(update.set.iter().map(|(name, value)| (name, value)))
        }
        TransactAction::Delete { .. } | TransactAction::Check { .. } => 0,
    };
    key.pk.len() + key.sk.len() + values
}

/// Customers whose writes commit in one transaction: no item twice, within the limits.
#[derive(Default)]
struct Group {
    indices: Vec<usize>,
    actions: Vec<TransactAction>,
    keys: HashSet<Key>,
    bytes: usize,
    /// The listing ordinals of the customers the group creates (holes if it fails).
    ordinals: Vec<i64>,
}

impl Group {
    fn fits(&self, actions: &[TransactAction], alone: bool) -> bool {
        self.indices.is_empty()
            || (!alone
                && self.actions.len() + actions.len() <= MAX_TRANSACTION_ACTIONS
                && self.bytes + actions.iter().map(approximate_bytes).sum::<usize>()
                    <= MAX_TRANSACTION_BYTES
                && actions
                    .iter()
                    .all(|action| !self.keys.contains(&action.key())))
    }

    fn add(&mut self, index: usize, actions: Vec<TransactAction>, ordinal: Option<i64>) {
        self.indices.push(index);
        self.ordinals.extend(ordinal);
        self.bytes += actions.iter().map(approximate_bytes).sum::<usize>();
        self.keys.extend(actions.iter().map(TransactAction::key));
        self.actions.extend(actions);
    }
}

/// The upserts of `pending` a round takes: the first of each customer key and identifier.
/// A later upsert naming the same customer or identifier as an earlier pending one — taken
/// or waiting — waits for the next round, so a request's rows apply in their order even
/// though a round's transactions run together.
fn take_round(upserts: &[Upsert], pending: &mut Vec<usize>) -> Vec<usize> {
    let mut claimed: HashSet<&Identifier> = HashSet::new();
    let mut round = Vec::new();
    let mut later = Vec::new();
    for index in pending.drain(..) {
        let waits = upserts[index]
            .named()
            .any(|identifier| claimed.contains(identifier));
        // A waiting upsert claims its identifiers too: a later one naming any of them must
        // not apply before it.
        claimed.extend(upserts[index].named());
        if waits {
            later.push(index);
        } else {
            round.push(index);
        }
    }
    *pending = later;
    round
}

/// Applies many customers' upserts with few requests (see the module's description).
/// Outcomes are in the order of `upserts`.
pub async fn upsert_many(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    upserts: &[Upsert],
    surface: &str,
    now_millis: i64,
) -> Result<Vec<UpsertOutcome>, CustomerError> {
    let mut outcomes: Vec<Option<UpsertOutcome>> = vec![None; upserts.len()];
    let mut pending: Vec<usize> = (0..upserts.len()).collect();
    // Customers whose group met a concurrent change commit alone from then on.
    let mut alone: HashSet<usize> = HashSet::new();
    // Not `retry::optimistic`: a round is many writes, and only the groups of it that met a
    // concurrent change go again, so the rounds share one budget of delays instead.
    let mut delays = contention_backoff("customer-upsert");
    while !pending.is_empty() {
        let round = take_round(upserts, &mut pending);
        let taken: Vec<&Upsert> = round.iter().map(|&index| &upserts[index]).collect();
        let known = Known::read(store, tenant, &taken).await?;
        let mut plans: Vec<(usize, Planned)> = round
            .iter()
            .map(|&index| {
                let plan = plan_upsert(store, tenant, &upserts[index], &known, surface, now_millis);
                (index, plan)
            })
            .collect();
        let creating = plans.iter().filter(|(_, plan)| plan.creates).count();
        let mut next_ordinal = if creating > 0 {
            listing::reserve(store, tenant, creating).await?
        } else {
            0
        };
        let mut groups: Vec<Group> = Vec::new();
        let mut open = Group::default();
        for (index, mut plan) in plans.drain(..) {
            if plan.actions.is_empty() {
                outcomes[index] = Some(plan.outcome);
                continue;
            }
            let ordinal = plan.creates.then(|| {
                next_ordinal += 1;
                next_ordinal - 1
            });
            if let Some(ordinal) = ordinal {
                number(&mut plan, tenant, ordinal, &upserts[index].key);
            }
            if !open.fits(&plan.actions, alone.contains(&index)) {
                groups.push(std::mem::take(&mut open));
            }
            open.add(index, plan.actions, ordinal);
            outcomes[index] = Some(plan.outcome);
        }
        groups.push(open);
        let results: Vec<(Group, Result<(), StorageError>)> =
            futures::stream::iter(groups.into_iter().filter(|group| !group.indices.is_empty()))
                .map(|mut group| async move {
                    let actions = std::mem::take(&mut group.actions);
                    let result = store.table.transact(actions).await;
                    (group, result)
                })
                .buffer_unordered(TRANSACTIONS_IN_FLIGHT)
                .collect()
                .await;
        let mut abandoned = Vec::new();
        let mut contended = false;
        for (group, result) in results {
            match result {
                Ok(()) => continue,
                Err(error) if is_contention(&error) => contended = true,
                // A customer whose writes cannot be stored (an item over the size limit)
                // is refused alone; the others of its group are tried again.
                Err(StorageError::InvalidRequest(why)) if group.indices.len() == 1 => {
                    outcomes[group.indices[0]] = Some(UpsertOutcome::Refused(format!(
                        "the customer's data cannot be stored: {why}"
                    )));
                    abandoned.extend(group.ordinals);
                    continue;
                }
                Err(StorageError::InvalidRequest(_)) => {}
                Err(other) => {
                    // Nothing more is written; the ordinals this round reserved and did
                    // not use stay holes the listing does not count (see docs/decisions.md).
                    return Err(other.into());
                }
            }
            abandoned.extend(group.ordinals);
            for index in group.indices {
                outcomes[index] = None;
                alone.insert(index);
                pending.push(index);
            }
        }
        if !abandoned.is_empty() {
            listing::abandon(store, tenant, &abandoned).await?;
        }
        pending.sort_unstable();
        if contended {
            delays.wait().await?;
        }
    }
    Ok(outcomes.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(key: &str, identifiers: &[(&str, &str)]) -> Upsert {
        Upsert {
            key: Identifier::customer_key(key),
            identifiers: identifiers
                .iter()
                .map(|(name, value)| Identifier::new(*name, *value))
                .collect(),
            attributes: BTreeMap::new(),
            items: Vec::new(),
        }
    }

    /// Every round `take_round` takes until nothing is pending.
    fn rounds(upserts: &[Upsert]) -> Vec<Vec<usize>> {
        let mut pending: Vec<usize> = (0..upserts.len()).collect();
        let mut rounds = Vec::new();
        while !pending.is_empty() {
            rounds.push(take_round(upserts, &mut pending));
        }
        rounds
    }

    fn put(sk: &str) -> TransactAction {
        TransactAction::Put {
            item: Item::new("T#t#c", sk),
            condition: Condition::NotExists,
        }
    }

    #[test]
    fn upserts_of_different_customers_all_go_in_the_first_round() {
        let upserts = [
            upsert("a", &[("email", "a@x")]),
            upsert("b", &[("email", "b@x")]),
            upsert("c", &[]),
        ];
        assert_eq!(rounds(&upserts), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn a_later_upsert_of_the_same_customer_key_waits_for_the_next_round() {
        let upserts = [upsert("a", &[]), upsert("b", &[]), upsert("a", &[])];
        let mut pending = vec![0, 1, 2];
        assert_eq!(take_round(&upserts, &mut pending), vec![0, 1]);
        assert_eq!(pending, vec![2]);
        assert_eq!(take_round(&upserts, &mut pending), vec![2]);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_later_upsert_naming_an_identifier_of_an_earlier_one_waits_for_the_next_round() {
        let upserts = [
            upsert("a", &[("email", "shared@x")]),
            upsert("b", &[("email", "shared@x")]),
            upsert("c", &[("email", "c@x")]),
        ];
        assert_eq!(rounds(&upserts), vec![vec![0, 2], vec![1]]);
    }

    #[test]
    fn the_rows_of_one_customer_apply_one_a_round_in_their_order() {
        let upserts = [
            upsert("a", &[]),
            upsert("a", &[("email", "1@x")]),
            upsert("a", &[("email", "2@x")]),
        ];
        assert_eq!(rounds(&upserts), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn an_upsert_sharing_an_identifier_with_a_waiting_one_waits_behind_it() {
        // Row 1 waits for row 0 (same customer); row 2 names row 1's email, so it must not
        // apply before row 1: the email goes to whichever row names it first.
        let upserts = [
            upsert("a", &[]),
            upsert("a", &[("email", "x@x")]),
            upsert("b", &[("email", "x@x")]),
        ];
        assert_eq!(rounds(&upserts), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn an_empty_group_takes_any_customer_even_one_that_must_commit_alone() {
        let group = Group::default();
        assert!(group.fits(&[put("1")], false));
        assert!(group.fits(&[put("1")], true));
    }

    #[test]
    fn a_customer_that_must_commit_alone_does_not_join_a_started_group() {
        let mut group = Group::default();
        group.add(0, vec![put("1")], None);
        assert!(group.fits(&[put("2")], false));
        assert!(!group.fits(&[put("2")], true));
    }

    #[test]
    fn a_customer_writing_an_item_the_group_writes_does_not_join_it() {
        let mut group = Group::default();
        group.add(0, vec![put("1"), put("2")], Some(7));
        assert!(!group.fits(&[put("3"), put("2")], false));
        assert!(group.fits(&[put("3"), put("4")], false));
        assert_eq!(group.ordinals, vec![7]);
    }

    #[test]
    fn a_group_holds_at_most_the_actions_of_one_transaction() {
        let mut group = Group::default();
        let first: Vec<TransactAction> = (0..MAX_TRANSACTION_ACTIONS - 1)
            .map(|n| put(&format!("first-{n}")))
            .collect();
        group.add(0, first, None);
        assert!(group.fits(&[put("last")], false));
        assert!(!group.fits(&[put("last"), put("one-too-many")], false));
    }

    #[test]
    fn a_group_stays_under_the_byte_limit_of_a_transaction() {
        let big = |sk: &str| TransactAction::Put {
            item: Item::new("T#t#c", sk).with("blob", "x".repeat(MAX_TRANSACTION_BYTES / 2)),
            condition: Condition::NotExists,
        };
        let mut group = Group::default();
        group.add(0, vec![big("1")], None);
        assert!(group.fits(&[put("2")], false));
        assert!(!group.fits(&[big("2")], false));
        assert!(Group::default().fits(&[big("1"), big("2")], false));
    }
}
