//! Identity: a customer's identifiers, their index entries, finding a customer by what a
//! request names, and creating it when unknown.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::CustomerStore;
use super::Tid;
use super::{CustomerError, listing};
use crate::domain::TenantId;
use crate::retry::{Attempt, is_contention, optimistic};
use crate::storage::{
    Condition, Item, ItemTable, Key, StorageError, TransactAction, Update, batch, keys,
};

/// The apiName of the tenant-wide customer key.
pub const CUSTOMER_KEY: &str = "customerKey";
/// Identifiers one customer may have.
pub const MAX_IDENTIFIERS: usize = 40;

/// One identifier of a customer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "apiName")]
    pub api_name: String,
    pub value: String,
}

impl Identifier {
    pub fn new(api_name: impl Into<String>, value: impl Into<String>) -> Self {
        Identifier {
            api_name: api_name.into(),
            value: value.into(),
        }
    }

    /// The tenant-wide customer key.
    pub fn customer_key(value: impl Into<String>) -> Self {
        Identifier::new(CUSTOMER_KEY, value)
    }

    pub(super) fn hash(&self, store: CustomerStore<'_>) -> String {
        store.keyed_hash(&format!("id\u{0}{}\u{0}{}", self.api_name, self.value))
    }

    /// The key of this identifier's index entry (or tombstone).
    pub(super) fn entry_key(&self, store: CustomerStore<'_>, tenant: &TenantId) -> Key {
        keys::customer_identifier(tenant, &self.hash(store))
    }
}

pub(super) fn tid_hash(store: CustomerStore<'_>, tid: &Tid) -> String {
    store.keyed_hash(&format!("tid\u{0}{tid}"))
}

/// The key of a tid's tombstone: the identifier index holds it beside the identifiers' own
/// (its hash input differs from every identifier's, so the two never meet).
pub(super) fn tid_entry_key(store: CustomerStore<'_>, tenant: &TenantId, tid: &Tid) -> Key {
    keys::customer_identifier(tenant, &tid_hash(store, tid))
}

/// What an identifier's index entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    /// The identifier belongs to this tid.
    Owner(Tid),
    /// The customer it identified was erased: ingestion of it is refused.
    Suppressed,
}

/// Name of the attribute that marks an index entry as a tombstone.
pub(super) const SUPPRESSED: &str = "suppressed";

impl Entry {
    pub(super) fn of(item: &Item) -> Option<Entry> {
        if item.get(SUPPRESSED).is_some() {
            return Some(Entry::Suppressed);
        }
        item.str("tid").and_then(Tid::parse).map(Entry::Owner)
    }
}

/// A customer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub tid: Tid,
    pub identifiers: Vec<Identifier>,
    /// Attribute name → value.
    pub attributes: BTreeMap<String, Value>,
    pub(super) profile: Item,
}

impl Customer {
    pub(super) fn from_item(item: Item) -> Option<Customer> {
        let tid = Tid::parse(item.str("tid")?)?;
        let identifiers = serde_json::from_value(item.get("identifiers")?.clone()).ok()?;
        let attributes = item
            .get("attributes")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(name, entry)| {
                        (
                            name.clone(),
                            entry.get("value").cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Customer {
            tid,
            identifiers,
            attributes,
            profile: item,
        })
    }

    pub fn identifier(&self, api_name: &str) -> Option<&str> {
        self.identifiers
            .iter()
            .find(|i| i.api_name == api_name)
            .map(|i| i.value.as_str())
    }

    /// The profile's revision: every change of the profile is conditional on it.
    pub(super) fn rev(&self) -> i64 {
        self.profile.i64("rev").unwrap_or(0)
    }
}

/// What a request names its customer by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerRef {
    pub tid: Option<Tid>,
    pub identifiers: Vec<Identifier>,
}

pub(super) async fn profile(
    table: &dyn ItemTable,
    tenant: &TenantId,
    tid: &Tid,
) -> Result<Option<Customer>, StorageError> {
    Ok(table
        .get(&keys::customer_profile(tenant, tid))
        .await?
        .and_then(Customer::from_item))
}

/// A customer's profile by tid.
pub async fn by_tid(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    tid: &Tid,
) -> Result<Option<Customer>, StorageError> {
    profile(store.table, tenant, tid).await
}

/// Customers' profiles by tid, in batched reads; tids without a customer are left out.
pub async fn by_tids(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    tids: &[&Tid],
) -> Result<HashMap<Tid, Customer>, StorageError> {
    let keys = tids.iter().map(|tid| keys::customer_profile(tenant, tid));
    Ok(batch::get_many(store.table, keys)
        .await?
        .into_values()
        .filter_map(Customer::from_item)
        .map(|customer| (customer.tid.clone(), customer))
        .collect())
}

/// The index entries of the tid and identifiers a request names, in one batched read.
async fn entries_of(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
) -> Result<HashMap<Key, Item>, StorageError> {
    let tid_key = named
        .tid
        .as_ref()
        .map(|tid| tid_entry_key(store, tenant, tid));
    let identifier_keys = named
        .identifiers
        .iter()
        .map(|identifier| identifier.entry_key(store, tenant));
    batch::get_many(store.table, tid_key.into_iter().chain(identifier_keys)).await
}

/// Which of the named tid and identifiers is suppressed, if any (the tid first).
fn first_suppressed(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
    entries: &HashMap<Key, Item>,
) -> Option<String> {
    let suppressed = |key: &Key| entries.get(key).and_then(Entry::of) == Some(Entry::Suppressed);
    if let Some(tid) = &named.tid
        && suppressed(&tid_entry_key(store, tenant, tid))
    {
        return Some("tid".into());
    }
    named
        .identifiers
        .iter()
        .find(|identifier| suppressed(&identifier.entry_key(store, tenant)))
        .map(|identifier| format!("identifier {}", identifier.api_name))
}

/// The first suppression that matches what the request names, if any.
pub async fn suppressed(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
) -> Result<Option<String>, StorageError> {
    let entries = entries_of(store, tenant, named).await?;
    Ok(first_suppressed(store, tenant, named, &entries))
}

/// The customer a request names, given its index entries: by tid, else by the first
/// identifier that is known.
async fn find_with(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
    entries: &HashMap<Key, Item>,
) -> Result<Option<Customer>, StorageError> {
    if let Some(tid) = &named.tid
        && let Some(customer) = profile(store.table, tenant, tid).await?
    {
        return Ok(Some(customer));
    }
    for identifier in &named.identifiers {
        let owner = entries
            .get(&identifier.entry_key(store, tenant))
            .and_then(Entry::of);
        if let Some(Entry::Owner(tid)) = owner
            && let Some(customer) = profile(store.table, tenant, &tid).await?
        {
            return Ok(Some(customer));
        }
    }
    Ok(None)
}

/// The customer a request names: by tid, else by the first identifier that is known.
pub async fn find(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
) -> Result<Option<Customer>, StorageError> {
    let entries = entries_of(store, tenant, named).await?;
    find_with(store, tenant, named, &entries).await
}

/// An identifier's index entry naming its customer.
pub(super) fn index_item(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    identifier: &Identifier,
    tid: &Tid,
) -> Item {
    let key = identifier.entry_key(store, tenant);
    Item::new(key.pk, key.sk)
        .with("tid", tid)
        .with("api_name", identifier.api_name.as_str())
        .with("value", identifier.value.as_str())
}

/// The customer key among identifiers, if any.
pub(super) fn customer_key_of(identifiers: &[Identifier]) -> Option<String> {
    identifiers
        .iter()
        .find(|identifier| identifier.api_name == CUSTOMER_KEY)
        .map(|identifier| identifier.value.clone())
}

/// The customer a request names, created if unknown (with the tid sent, or a new one), its
/// new identifiers linked. A suppressed customer is refused — also when the erasure
/// commits during this request: every write of an identifier's entry requires it absent
/// (or its own), which a tombstone is not.
pub async fn find_or_create(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
    now_millis: i64,
) -> Result<(Customer, bool), CustomerError> {
    find_or_create_seeded(store, tenant, named, now_millis, &|_| Ok(Seed::default())).await
}

/// What a creation commits besides the customer: a change to the new profile and further
/// items of its partition, so that a request creating a customer and storing something of
/// it is one transaction. Made from the new customer's tid.
#[derive(Default)]
pub(super) struct Seed {
    pub profile: Update,
    pub items: Vec<Item>,
}

/// [`find_or_create`], committing `seed` with the customer when it creates one (the
/// `bool` says it did).
pub(super) async fn find_or_create_seeded(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
    now_millis: i64,
    seed: &(dyn Fn(&Tid) -> Result<Seed, CustomerError> + Sync),
) -> Result<(Customer, bool), CustomerError> {
    optimistic("customer-identity", || async move {
        let entries = entries_of(store, tenant, named).await?;
        if let Some(what) = first_suppressed(store, tenant, named, &entries) {
            return Err(CustomerError::Suppressed(what));
        }
        let attempt = match find_with(store, tenant, named, &entries).await? {
            Some(customer) => link(
                store,
                tenant,
                customer,
                &named.identifiers,
                &entries,
                now_millis,
            )
            .await
            .map(|customer| (customer, false)),
            None => create(store, tenant, named, now_millis, seed)
                .await
                .map(|customer| (customer, true)),
        };
        match attempt {
            Err(CustomerError::Storage(error)) if is_contention(&error) => Ok(Attempt::Contended),
            done => done.map(Attempt::Done),
        }
    })
    .await
}

/// Creates the customer a request names, with a listing ordinal reserved beforehand.
async fn create(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
    now_millis: i64,
    seed: &(dyn Fn(&Tid) -> Result<Seed, CustomerError> + Sync),
) -> Result<Customer, CustomerError> {
    let tid = named.tid.clone().unwrap_or_else(Tid::generate);
    let seed = seed(&tid)?;
    let ordinal = listing::reserve(store, tenant, 1).await?;
    let key = keys::customer_profile(tenant, &tid);
    let mut item = Item::new(key.pk, key.sk)
        .with("tid", tid.as_str())
        .with("identifiers", json!(named.identifiers))
        .with("attributes", json!({}))
        .with("created", now_millis)
        .with("updated", now_millis)
        .with("rev", 1)
        .with("ordinal", ordinal);
    seed.profile.apply_to(&mut item)?;
    let mut actions = vec![
        TransactAction::Put {
            item: item.clone(),
            condition: Condition::NotExists,
        },
        listing::entry_action(tenant, ordinal, &tid, customer_key_of(&named.identifiers)),
    ];
    actions.extend(
        named
            .identifiers
            .iter()
            .map(|identifier| TransactAction::Put {
                item: index_item(store, tenant, identifier, &tid),
                condition: Condition::NotExists,
            }),
    );
    // A tid the client chose may be an erased one; a new UUID cannot be.
    if named.tid.is_some() {
        actions.push(TransactAction::Check {
            key: tid_entry_key(store, tenant, &tid),
            condition: Condition::NotExists,
        });
    }
    actions.extend(seed.items.into_iter().map(|item| TransactAction::Put {
        item,
        condition: Condition::NotExists,
    }));
    if let Err(error) = store.table.transact(actions).await {
        listing::abandon(store, tenant, &[ordinal]).await?;
        return Err(error.into());
    }
    Ok(Customer::from_item(item)
        .ok_or_else(|| StorageError::Unavailable("a new profile does not decode".into()))?)
}

/// Links identifiers the customer does not have yet; one that belongs to another customer
/// is refused.
async fn link(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    customer: Customer,
    identifiers: &[Identifier],
    entries: &HashMap<Key, Item>,
    now_millis: i64,
) -> Result<Customer, CustomerError> {
    let new: Vec<&Identifier> = identifiers
        .iter()
        .filter(|i| !customer.identifiers.contains(i))
        .collect();
    if new.is_empty() {
        return Ok(customer);
    }
    for identifier in &new {
        let owner = entries
            .get(&identifier.entry_key(store, tenant))
            .and_then(Entry::of);
        if owner.is_some_and(|owner| owner != Entry::Owner(customer.tid.clone())) {
            return Err(CustomerError::Conflict(format!(
                "identifier {} belongs to another customer than tid {}",
                identifier.api_name, customer.tid
            )));
        }
    }
    let mut all = customer.identifiers.clone();
    all.extend(new.iter().map(|i| (*i).clone()));
    all.sort();
    all.dedup();
    if all.len() > MAX_IDENTIFIERS {
        return Err(CustomerError::Conflict(format!(
            "a customer has at most {MAX_IDENTIFIERS} identifiers"
        )));
    }
    let rev = customer.rev();
    let mut actions = vec![TransactAction::Update {
        key: keys::customer_profile(tenant, &customer.tid),
        update: Update::default()
            .set("identifiers", json!(all))
            .set("updated", now_millis)
            .set("rev", rev + 1),
        condition: Condition::equals("rev", rev),
    }];
    actions.extend(new.iter().map(|identifier| TransactAction::Put {
        item: index_item(store, tenant, identifier, &customer.tid),
        condition: owned_or_absent(&customer.tid),
    }));
    store.table.transact(actions).await?;
    Ok(profile(store.table, tenant, &customer.tid)
        .await?
        .ok_or_else(|| StorageError::Unavailable("profile vanished".into()))?)
}

/// The condition of linking an identifier to `tid`: its entry is absent or already this
/// customer's — never another's, never a tombstone (which has no tid).
pub(super) fn owned_or_absent(tid: &Tid) -> Condition {
    Condition::Any(vec![Condition::NotExists, Condition::equals("tid", tid)])
}
