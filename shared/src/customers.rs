//! The customer store every surface shares (ARCHITECTURE.md principle 8): a tenant's
//! customer, its identifiers, attributes and activity history.
//!
//! - A customer is keyed by its MXO tid (a UUID). Its partition holds the profile and the
//!   activity, so reading the newest activity is one query, newest first, paged — bounded
//!   however long the history is.
//! - Every identifier (MXO identifiers by apiName; the tenant-wide customer key that AIXON's
//!   customuid, Monetate's record id and Optimove's CustomerID resolve to, under the apiName
//!   `customerKey`) has an index entry keyed by a keyed hash of apiName and value: looking a
//!   customer up by any identifier is one get.
//! - Activity counts and the latest time per proposition and activity type live on the
//!   profile as counters, updated in the same transaction as the activity they count, so an
//!   eligibility rule never reads the history.
//! - Erasure removes the profile, the identifiers and the activity, and leaves a
//!   suppression per identifier — a keyed hash, no personal data — that refuses later
//!   ingestion of that customer until an admin lifts it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::storage::{
    Condition, Item, ItemTable, Key, Query, StorageError, TransactAction, Update, batch, keys,
};
use crate::tenancy::TenantId;

/// The apiName of the tenant-wide customer key.
pub const CUSTOMER_KEY: &str = "customerKey";
/// Identifiers one customer may have.
pub const MAX_IDENTIFIERS: usize = 40;
/// Activities removed within an erasure request; the rest are removed in the background.
pub const INLINE_ERASURE_ROWS: usize = 2_000;

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

    fn hash(&self, app: &App) -> String {
        app.keyed_hash(&format!("id\u{0}{}\u{0}{}", self.api_name, self.value))
    }
}

fn tid_hash(app: &App, tid: &str) -> String {
    app.keyed_hash(&format!("tid\u{0}{tid}"))
}

/// One activity, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    #[serde(rename = "propositionCode")]
    pub proposition_code: String,
    #[serde(rename = "activityTypeCode")]
    pub activity_type_code: String,
    #[serde(
        rename = "dynamicPropositionCode",
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_proposition_code: Option<String>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

/// Which activities a counter counts: a proposition, an activity type, both, or all.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActivityFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposition: Option<String>,
    #[serde(
        default,
        rename = "activityType",
        skip_serializing_if = "Option::is_none"
    )]
    pub activity_type: Option<String>,
}

impl ActivityFilter {
    /// The counter attribute names (count, latest) of this filter.
    fn attributes(&self) -> (String, String) {
        let digest = Sha256::digest(
            format!(
                "{}\u{0}{}",
                self.proposition.as_deref().unwrap_or("*"),
                self.activity_type.as_deref().unwrap_or("*")
            )
            .as_bytes(),
        );
        let id = hex::encode(&digest[..8]);
        (format!("n_{id}"), format!("t_{id}"))
    }

    /// The four filters an activity counts towards.
    fn of(activity: &Activity) -> [ActivityFilter; 4] {
        let proposition = Some(activity.proposition_code.clone());
        let activity_type = Some(activity.activity_type_code.clone());
        [
            ActivityFilter::default(),
            ActivityFilter {
                proposition: proposition.clone(),
                activity_type: None,
            },
            ActivityFilter {
                proposition: None,
                activity_type: activity_type.clone(),
            },
            ActivityFilter {
                proposition,
                activity_type,
            },
        ]
    }
}

/// A customer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub tid: String,
    pub identifiers: Vec<Identifier>,
    /// Attribute name → value.
    pub attributes: BTreeMap<String, Value>,
    profile: Item,
}

impl Customer {
    fn from_item(item: Item) -> Option<Customer> {
        let tid = item.str("tid")?.to_string();
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

    /// How many activities match the filter, and when the latest happened (epoch ms).
    pub fn activity_stats(&self, filter: &ActivityFilter) -> (i64, Option<i64>) {
        let (count, latest) = filter.attributes();
        (
            self.profile.i64(&count).unwrap_or(0),
            self.profile.i64(&latest),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    #[error("the customer was erased on request and is suppressed ({0}); an admin can lift it")]
    Suppressed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the customer is being changed by other requests; retry")]
    Busy,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a request names its customer by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerRef {
    pub tid: Option<String>,
    pub identifiers: Vec<Identifier>,
}

async fn profile(
    table: &dyn ItemTable,
    tenant: &TenantId,
    tid: &str,
) -> Result<Option<Customer>, StorageError> {
    Ok(table
        .get(&keys::customer_profile(tenant, tid))
        .await?
        .and_then(Customer::from_item))
}

/// The first suppression that matches what the request names, if any.
pub async fn suppressed(
    app: &App,
    tenant: &TenantId,
    named: &CustomerRef,
) -> Result<Option<String>, StorageError> {
    if let Some(tid) = &named.tid
        && app
            .table
            .get(&keys::suppression(tenant, &tid_hash(app, tid)))
            .await?
            .is_some()
    {
        return Ok(Some("tid".into()));
    }
    for identifier in &named.identifiers {
        if app
            .table
            .get(&keys::suppression(tenant, &identifier.hash(app)))
            .await?
            .is_some()
        {
            return Ok(Some(format!("identifier {}", identifier.api_name)));
        }
    }
    Ok(None)
}

/// The customer a request names: by tid, else by the first identifier that is known.
pub async fn find(
    app: &App,
    tenant: &TenantId,
    named: &CustomerRef,
) -> Result<Option<Customer>, StorageError> {
    if let Some(tid) = &named.tid
        && let Some(customer) = profile(app.table.as_ref(), tenant, tid).await?
    {
        return Ok(Some(customer));
    }
    for identifier in &named.identifiers {
        let Some(entry) = app
            .table
            .get(&keys::customer_identifier(tenant, &identifier.hash(app)))
            .await?
        else {
            continue;
        };
        if let Some(tid) = entry.str("tid")
            && let Some(customer) = profile(app.table.as_ref(), tenant, tid).await?
        {
            return Ok(Some(customer));
        }
    }
    Ok(None)
}

fn index_item(app: &App, tenant: &TenantId, identifier: &Identifier, tid: &str) -> Item {
    let key = keys::customer_identifier(tenant, &identifier.hash(app));
    Item::new(key.pk, key.sk)
        .with("tid", tid)
        .with("api_name", identifier.api_name.as_str())
        .with("value", identifier.value.as_str())
}

/// The next free listing ordinal of the tenant (0 before the first customer).
async fn next_ordinal(app: &App, tenant: &TenantId) -> Result<i64, StorageError> {
    let counter = app.table.get(&keys::customer_list_counter(tenant)).await?;
    Ok(counter.and_then(|item| item.i64("next")).unwrap_or(0))
}

/// The writes that give new customers the ordinals `first..`, in the transaction that
/// creates them: their listing entries, and the counter moved on only if nobody else moved
/// it meanwhile. Ordinals are therefore never lost: an ordinal is taken exactly when its
/// customer is written, so the listing has holes only where erasures made them.
fn ordinal_actions(
    tenant: &TenantId,
    first: i64,
    new: &[(String, Option<String>)],
) -> Vec<TransactAction> {
    let unchanged = if first == 0 {
        Condition::LacksAttribute("next".into())
    } else {
        Condition::equals("next", first)
    };
    let mut actions = vec![TransactAction::Update {
        key: keys::customer_list_counter(tenant),
        update: Update::default().set("next", first + new.len() as i64),
        condition: unchanged,
    }];
    for (offset, (tid, customer_key)) in new.iter().enumerate() {
        let entry = keys::customer_list_entry(tenant, first + offset as i64);
        let mut item = Item::new(entry.pk, entry.sk).with("tid", tid.as_str());
        if let Some(customer_key) = customer_key {
            item = item.with("key", customer_key.as_str());
        }
        actions.push(TransactAction::Put {
            item,
            condition: Condition::NotExists,
        });
    }
    actions
}

/// How long attribute history is kept (GetCustomerAttributeChangers reads it).
pub const HISTORY_DAYS: i64 = 400;

/// The attribute changes a write makes: name, value before (null for a new one), value after.
fn changes(before: &Value, values: &BTreeMap<String, Value>) -> Vec<(String, Value, Value)> {
    values
        .iter()
        .filter_map(|(name, value)| {
            let old = before
                .get(name)
                .and_then(|entry| entry.get("value"))
                .cloned()
                .unwrap_or(Value::Null);
            (old != *value).then(|| (name.clone(), old, value.clone()))
        })
        .collect()
}

/// The writes that keep a write's attribute changes: one history item in the customer's own
/// partition (so an erasure removes it with the rest) and the day's index entry, which holds
/// only the tid. Nothing when nothing changed.
fn history_actions(
    tenant: &TenantId,
    tid: &str,
    changed: &[(String, Value, Value)],
    now_millis: i64,
) -> Vec<TransactAction> {
    if changed.is_empty() {
        return Vec::new();
    }
    let expires = now_millis / 1000 + HISTORY_DAYS * 86_400;
    let entries: serde_json::Map<String, Value> = changed
        .iter()
        .map(|(name, old, new)| (name.clone(), json!([old, new])))
        .collect();
    let suffix = &crate::tenancy::new_id("")[..8];
    let history = keys::attribute_history(tenant, tid, now_millis, suffix);
    let day = crate::clock::iso8601_millis(now_millis);
    let index = keys::attribute_changes(tenant, day.get(..10).unwrap_or_default(), tid);
    vec![
        TransactAction::Put {
            item: Item::new(history.pk, history.sk)
                .with("at", now_millis)
                .with("changes", Value::Object(entries))
                .expiring_at(expires),
            condition: Condition::Always,
        },
        TransactAction::Put {
            item: Item::new(index.pk, index.sk)
                .with("tid", tid)
                .expiring_at(expires),
            condition: Condition::Always,
        },
    ]
}

/// Stamps the listing ordinal on the profiles a group creates, in the order of `creates`.
fn number_profiles(
    actions: &mut [TransactAction],
    tenant: &TenantId,
    first: i64,
    creates: &[(String, Option<String>)],
) {
    for (offset, (tid, _)) in creates.iter().enumerate() {
        let profile_key = keys::customer_profile(tenant, tid);
        for action in actions.iter_mut() {
            if let TransactAction::Put { item, .. } = action
                && Key::from(&*item) == profile_key
            {
                item.attrs
                    .insert("ordinal".into(), json!(first + offset as i64));
            }
        }
    }
}

fn customer_key_of(identifiers: &[Identifier]) -> Option<String> {
    identifiers
        .iter()
        .find(|identifier| identifier.api_name == CUSTOMER_KEY)
        .map(|identifier| identifier.value.clone())
}

/// Conditions that keep a write from re-creating an erased customer: none of the
/// suppressions of its tid or identifiers may exist when the write commits.
fn not_suppressed(
    app: &App,
    tenant: &TenantId,
    tid: &str,
    identifiers: &[&Identifier],
) -> Vec<TransactAction> {
    let mut hashes = vec![tid_hash(app, tid)];
    hashes.extend(identifiers.iter().map(|identifier| identifier.hash(app)));
    hashes.sort();
    hashes.dedup();
    hashes
        .into_iter()
        .map(|hash| TransactAction::Check {
            key: keys::suppression(tenant, &hash),
            condition: Condition::NotExists,
        })
        .collect()
}

/// The customer a request names, created if unknown (with the tid sent, or a new one), its
/// new identifiers linked. A suppressed customer is refused — also when the erasure
/// commits during this request: every write checks the suppressions in its transaction.
pub async fn find_or_create(
    app: &App,
    tenant: &TenantId,
    named: &CustomerRef,
    now_millis: i64,
) -> Result<(Customer, bool), CustomerError> {
    for _ in 0..6 {
        if let Some(what) = suppressed(app, tenant, named).await? {
            return Err(CustomerError::Suppressed(what));
        }
        if let Some(customer) = find(app, tenant, named).await? {
            match link(app, tenant, customer, &named.identifiers, now_millis).await {
                Err(CustomerError::Storage(
                    StorageError::TransactionCanceled { .. } | StorageError::Contention(_),
                )) => continue,
                linked => return linked.map(|customer| (customer, false)),
            }
        }
        let tid = named
            .tid
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let key = keys::customer_profile(tenant, &tid);
        let ordinal = next_ordinal(app, tenant).await?;
        let item = Item::new(key.pk, key.sk)
            .with("tid", tid.as_str())
            .with("identifiers", json!(named.identifiers))
            .with("attributes", json!({}))
            .with("created", now_millis)
            .with("updated", now_millis)
            .with("rev", 1)
            .with("ordinal", ordinal);
        let mut actions = vec![TransactAction::Put {
            item,
            condition: Condition::NotExists,
        }];
        let listed = (tid.clone(), customer_key_of(&named.identifiers));
        actions.extend(ordinal_actions(tenant, ordinal, &[listed]));
        actions.extend(
            named
                .identifiers
                .iter()
                .map(|identifier| TransactAction::Put {
                    item: index_item(app, tenant, identifier, &tid),
                    condition: Condition::NotExists,
                }),
        );
        actions.extend(not_suppressed(
            app,
            tenant,
            &tid,
            &named.identifiers.iter().collect::<Vec<_>>(),
        ));
        match app.table.transact(actions).await {
            Ok(()) => {
                let customer = profile(app.table.as_ref(), tenant, &tid)
                    .await?
                    .ok_or_else(|| StorageError::Unavailable("profile vanished".into()))?;
                return Ok((customer, true));
            }
            // Created (or erased) concurrently by another request: look again.
            Err(StorageError::TransactionCanceled { .. } | StorageError::Contention(_)) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(CustomerError::Busy)
}

/// Links identifiers the customer does not have yet; one that belongs to another customer
/// is refused.
async fn link(
    app: &App,
    tenant: &TenantId,
    customer: Customer,
    identifiers: &[Identifier],
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
        let entry = app
            .table
            .get(&keys::customer_identifier(tenant, &identifier.hash(app)))
            .await?;
        if entry.is_some_and(|entry| entry.str("tid") != Some(customer.tid.as_str())) {
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
    let rev = customer.profile.i64("rev").unwrap_or(0);
    let mut actions = vec![TransactAction::Update {
        key: keys::customer_profile(tenant, &customer.tid),
        update: Update::default()
            .set("identifiers", json!(all))
            .set("updated", now_millis)
            .set("rev", rev + 1),
        condition: Condition::equals("rev", rev),
    }];
    actions.extend(new.iter().map(|identifier| TransactAction::Put {
        item: index_item(app, tenant, identifier, &customer.tid),
        condition: Condition::Any(vec![
            Condition::NotExists,
            Condition::equals("tid", customer.tid.as_str()),
        ]),
    }));
    actions.extend(not_suppressed(app, tenant, &customer.tid, &new));
    app.table.transact(actions).await?;
    Ok(profile(app.table.as_ref(), tenant, &customer.tid)
        .await?
        .ok_or_else(|| StorageError::Unavailable("profile vanished".into()))?)
}

/// Counters a customer keeps besides the overall one; past this, new propositions and
/// activity types are counted only overall (codes are not validated, so their number is
/// the client's to choose, and a profile must stay under the 400 KB item limit).
pub const MAX_ACTIVITY_COUNTERS: usize = 300;

/// Activities per stored item: one normally; two when a request has 100 (a transaction holds
/// at most 100 actions, and the request is stored in one, with its counters).
fn grouped(activities: &[Activity]) -> Vec<Vec<&Activity>> {
    let per_item = if activities.len() >= 100 { 2 } else { 1 };
    let mut sorted: Vec<&Activity> = activities.iter().collect();
    sorted.sort_by_key(|activity| std::cmp::Reverse(activity.timestamp));
    sorted.chunks(per_item).map(<[&Activity]>::to_vec).collect()
}

/// Stores a request's activities and updates the counters they count towards, in one
/// transaction conditional on the profile's revision (retried on a concurrent change), so
/// counts and "latest" times stay exact. An erasure committing meanwhile makes it refuse.
pub async fn record_activities(
    app: &App,
    tenant: &TenantId,
    tid: &str,
    activities: &[Activity],
) -> Result<(), CustomerError> {
    if activities.is_empty() || activities.len() > 100 {
        return Err(CustomerError::Conflict(
            "a request stores 1 to 100 activities".into(),
        ));
    }
    let items: Vec<Item> = grouped(activities)
        .into_iter()
        .map(|group| {
            let key = keys::customer_activity(
                tenant,
                tid,
                group[0].timestamp,
                &uuid::Uuid::new_v4().simple().to_string(),
            );
            Item::new(key.pk, key.sk).with("activities", json!(group))
        })
        .collect();
    for _ in 0..8 {
        let Some(customer) = profile(app.table.as_ref(), tenant, tid).await? else {
            return Err(CustomerError::Suppressed("tid".into()));
        };
        let counters = customer
            .profile
            .attrs
            .keys()
            .filter(|name| name.starts_with("n_"))
            .count();
        let mut counts: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for activity in activities {
            for filter in ActivityFilter::of(activity) {
                let (count, _) = filter.attributes();
                let entry = counts.entry(count).or_insert((0, i64::MIN));
                entry.0 += 1;
                entry.1 = entry.1.max(activity.timestamp);
            }
        }
        let rev = customer.profile.i64("rev").unwrap_or(0);
        let mut update = Update::default().set("rev", rev + 1);
        let mut added = 0;
        for (count_name, (delta, latest)) in counts {
            let known = customer.profile.attrs.contains_key(&count_name);
            if !known && count_name != ActivityFilter::default().attributes().0 {
                if counters + added >= MAX_ACTIVITY_COUNTERS {
                    continue;
                }
                added += 1;
            }
            let latest_name = count_name.replacen("n_", "t_", 1);
            update = update.add(count_name, delta);
            if customer
                .profile
                .i64(&latest_name)
                .is_none_or(|current| latest > current)
            {
                update = update.set(latest_name, latest);
            }
        }
        let mut actions: Vec<TransactAction> = items
            .iter()
            .map(|item| TransactAction::Put {
                item: item.clone(),
                condition: Condition::NotExists,
            })
            .collect();
        actions.push(TransactAction::Update {
            key: keys::customer_profile(tenant, tid),
            update,
            condition: Condition::equals("rev", rev),
        });
        match app.table.transact(actions).await {
            Ok(()) => return Ok(()),
            Err(StorageError::TransactionCanceled { .. } | StorageError::Contention(_)) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(CustomerError::Busy)
}

/// One page of a customer's activity, newest first.
pub async fn activity_page(
    app: &App,
    tenant: &TenantId,
    tid: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Activity>, Option<String>), StorageError> {
    let page = app
        .table
        .query(
            Query::partition(keys::customer_pk(tenant, tid))
                .prefix(keys::ACTIVITY_PREFIX)
                .limit(limit)
                .descending()
                .after(cursor),
        )
        .await?;
    let activities = page
        .items
        .iter()
        .filter_map(|item| item.get("activities").cloned())
        .filter_map(|value| serde_json::from_value::<Vec<Activity>>(value).ok())
        .flatten()
        .collect();
    Ok((activities, page.next))
}

/// Sets customer attributes (typed values, with the surface and time they came from) and
/// registers their names in the tenant's attribute catalog.
pub async fn set_attributes(
    app: &App,
    tenant: &TenantId,
    tid: &str,
    values: &BTreeMap<String, Value>,
    surface: &str,
    now_millis: i64,
) -> Result<(), StorageError> {
    for _ in 0..4 {
        let Some(customer) = profile(app.table.as_ref(), tenant, tid).await? else {
            return Err(StorageError::ConditionFailed {
                pk: keys::customer_pk(tenant, tid),
                sk: "PROFILE".into(),
            });
        };
        let mut attributes = customer
            .profile
            .get("attributes")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let changed = changes(&attributes, values);
        for (name, value) in values {
            attributes[name] = json!({"value": value, "surface": surface, "at": now_millis});
        }
        let rev = customer.profile.i64("rev").unwrap_or(0);
        let mut actions = vec![TransactAction::Update {
            key: keys::customer_profile(tenant, tid),
            update: Update::default()
                .set("attributes", attributes)
                .set("updated", now_millis)
                .set("rev", rev + 1),
            condition: Condition::equals("rev", rev),
        }];
        actions.extend(history_actions(tenant, tid, &changed, now_millis));
        match app.table.transact(actions).await {
            Ok(()) => {
                return register_attributes(
                    app,
                    tenant,
                    values.keys().map(String::as_str),
                    surface,
                    now_millis,
                )
                .await;
            }
            Err(
                StorageError::TransactionCanceled { .. }
                | StorageError::ConditionFailed { .. }
                | StorageError::Contention(_),
            ) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(StorageError::Contention(
        "the customer's attributes are being changed by other requests".into(),
    ))
}

/// Adds attribute names to the tenant's catalog (names already there are left as they are).
pub async fn register_attributes(
    app: &App,
    tenant: &TenantId,
    names: impl IntoIterator<Item = &str>,
    surface: &str,
    now_millis: i64,
) -> Result<(), StorageError> {
    for name in names {
        let key = keys::attribute_definition(tenant, name);
        let entry = Item::new(key.pk, key.sk)
            .with("surface", surface)
            .with("created", now_millis);
        match app.table.put(entry, Condition::NotExists).await {
            Ok(()) | Err(StorageError::ConditionFailed { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

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

/// What became of one [`Upsert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// Applied; `not_linked` are identifiers that already belong to another customer (or
    /// would exceed [`MAX_IDENTIFIERS`]) and were left out.
    Applied {
        tid: String,
        created: bool,
        not_linked: Vec<Identifier>,
    },
    /// Not applied, and why (a suppressed customer).
    Refused(String),
}

/// An upsert's writes, planned from what the store held when it was read.
struct Planned {
    actions: Vec<TransactAction>,
    outcome: UpsertOutcome,
    /// A customer this plan creates: its tid and customer key, for its listing ordinal.
    creates: Option<(String, Option<String>)>,
}

/// Transactions group up to this many actions (DynamoDB's TransactWriteItems limit)...
const MAX_TRANSACTION_ACTIONS: usize = 100;
/// ... and about this many bytes (DynamoDB's limit is 4 MB per transaction).
const MAX_TRANSACTION_BYTES: usize = 3_000_000;

/// Roughly the bytes an action writes: enough to keep a group under the size limit.
fn approximate_bytes(action: &TransactAction) -> usize {
    let key = action.key();
    let values: usize = match action {
        TransactAction::Put { item, .. } => item
            .attrs
            .iter()
            .map(|(name, value)| name.len() + value.to_string().len())
            .sum(),
        TransactAction::Update { update, .. } => update
            .set
            .iter()
            .map(|(name, value)| name.len() + value.to_string().len())
            .sum(),
        TransactAction::Delete { .. } | TransactAction::Check { .. } => 0,
    };
    key.pk.len() + key.sk.len() + values
}

/// Customers whose writes commit in one transaction: no item twice, within the limits.
#[derive(Default)]
struct Group {
    indices: Vec<usize>,
    actions: Vec<TransactAction>,
    keys: std::collections::HashSet<Key>,
    bytes: usize,
    /// The customers the group creates, which get listing ordinals when it commits.
    creates: Vec<(String, Option<String>)>,
}

impl Group {
    fn fits(&self, actions: &[TransactAction], max_customers: usize) -> bool {
        // Room is kept for the listing counter and one entry per created customer.
        let listing = self.creates.len() + 2;
        self.indices.is_empty()
            || (self.indices.len() < max_customers
                && self.actions.len() + actions.len() + listing <= MAX_TRANSACTION_ACTIONS
                && self.bytes + actions.iter().map(approximate_bytes).sum::<usize>()
                    <= MAX_TRANSACTION_BYTES
                && actions
                    .iter()
                    .all(|action| !self.keys.contains(&action.key())))
    }

    fn add(
        &mut self,
        index: usize,
        actions: Vec<TransactAction>,
        creates: Option<(String, Option<String>)>,
    ) {
        self.indices.push(index);
        self.creates.extend(creates);
        self.bytes += actions.iter().map(approximate_bytes).sum::<usize>();
        self.keys.extend(actions.iter().map(TransactAction::key));
        self.actions.extend(actions);
    }
}

async fn plan_upsert(
    app: &App,
    tenant: &TenantId,
    upsert: &Upsert,
    surface: &str,
    now_millis: i64,
) -> Result<Planned, StorageError> {
    let mut named = CustomerRef::default();
    named.identifiers.push(upsert.key.clone());
    named.identifiers.extend(upsert.identifiers.iter().cloned());
    if let Some(what) = suppressed(app, tenant, &named).await? {
        return Ok(Planned {
            actions: Vec::new(),
            creates: None,
            outcome: UpsertOutcome::Refused(format!(
                "the customer was erased on request and is suppressed ({what}); an admin can lift it"
            )),
        });
    }
    let existing = find(
        app,
        tenant,
        &CustomerRef {
            tid: None,
            identifiers: vec![upsert.key.clone()],
        },
    )
    .await?;
    let (tid, known, mut attributes, rev) = match &existing {
        Some(customer) => (
            customer.tid.clone(),
            customer.identifiers.clone(),
            customer
                .profile
                .get("attributes")
                .cloned()
                .unwrap_or_else(|| json!({})),
            Some(customer.profile.i64("rev").unwrap_or(0)),
        ),
        None => (
            uuid::Uuid::new_v4().to_string(),
            Vec::new(),
            json!({}),
            None,
        ),
    };
    let mut linked = known.clone();
    let mut to_link = Vec::new();
    let mut not_linked = Vec::new();
    for identifier in named.identifiers.iter() {
        if linked.contains(identifier) {
            continue;
        }
        let owner = app
            .table
            .get(&keys::customer_identifier(tenant, &identifier.hash(app)))
            .await?;
        let taken = owner.is_some_and(|entry| entry.str("tid") != Some(tid.as_str()));
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
    actions.extend(to_link.iter().map(|identifier| TransactAction::Put {
        item: index_item(app, tenant, identifier, &tid),
        condition: Condition::NotExists,
    }));
    if !to_link.is_empty() {
        actions.extend(not_suppressed(app, tenant, &tid, &to_link));
    }
    actions.extend(history_actions(tenant, &tid, &changed, now_millis));
    actions.extend(upsert.items.iter().map(|item| TransactAction::Put {
        item: item.clone().with("tid", tid.as_str()),
        condition: Condition::Always,
    }));
    Ok(Planned {
        actions,
        creates: existing
            .is_none()
            .then(|| (tid.clone(), Some(upsert.key.value.clone()))),
        outcome: UpsertOutcome::Applied {
            tid,
            created: existing.is_none(),
            not_linked,
        },
    })
}

/// Applies many customers' upserts with few writes: each customer's profile, new identifier
/// entries and surface items are planned from one read of its state and committed in
/// transactions that group several customers (up to 100 actions, no item twice). A
/// transaction that meets a concurrent change is re-planned customer by customer, so one
/// busy customer never holds up the rest. Outcomes are in the order of `upserts`.
pub async fn upsert_many(
    app: &App,
    tenant: &TenantId,
    upserts: &[Upsert],
    surface: &str,
    now_millis: i64,
) -> Result<Vec<UpsertOutcome>, CustomerError> {
    use futures::StreamExt;
    let mut outcomes: Vec<Option<UpsertOutcome>> = vec![None; upserts.len()];
    let mut pending: Vec<usize> = (0..upserts.len()).collect();
    for attempt in 0..6 {
        if pending.is_empty() {
            break;
        }
        let plans: Vec<(usize, Planned)> = futures::stream::iter(pending.iter().copied())
            .map(|index| async move {
                plan_upsert(app, tenant, &upserts[index], surface, now_millis)
                    .await
                    .map(|plan| (index, plan))
            })
            .buffered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        // After a conflict, each customer commits on its own.
        let per_group = if attempt == 0 {
            MAX_TRANSACTION_ACTIONS
        } else {
            1
        };
        let mut groups: Vec<Group> = Vec::new();
        let mut open = Group::default();
        for (index, plan) in plans {
            if plan.actions.is_empty() {
                outcomes[index] = Some(plan.outcome);
                continue;
            }
            if !open.fits(&plan.actions, per_group) {
                groups.push(std::mem::take(&mut open));
            }
            open.add(index, plan.actions, plan.creates);
            outcomes[index] = Some(plan.outcome);
        }
        groups.push(open);
        let mut retry = Vec::new();
        for Group {
            indices,
            mut actions,
            creates,
            ..
        } in groups.into_iter().filter(|group| !group.indices.is_empty())
        {
            if !creates.is_empty() {
                let first = next_ordinal(app, tenant).await?;
                number_profiles(&mut actions, tenant, first, &creates);
                actions.extend(ordinal_actions(tenant, first, &creates));
            }
            match app.table.transact(actions).await {
                Ok(()) => {}
                Err(StorageError::TransactionCanceled { .. } | StorageError::Contention(_)) => {
                    for index in indices {
                        outcomes[index] = None;
                        retry.push(index);
                    }
                }
                // A customer whose writes cannot be stored (an item over the size limit)
                // is refused alone; the others of its group are tried again.
                Err(StorageError::InvalidRequest(why)) if indices.len() == 1 => {
                    outcomes[indices[0]] = Some(UpsertOutcome::Refused(format!(
                        "the customer's data cannot be stored: {why}"
                    )));
                }
                Err(StorageError::InvalidRequest(_)) => {
                    for index in indices {
                        outcomes[index] = None;
                        retry.push(index);
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
        pending = retry;
    }
    if !pending.is_empty() {
        return Err(CustomerError::Busy);
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// One customer of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub tid: String,
    /// The customer key it was created with, if any.
    pub customer_key: Option<String>,
}

/// Where position `skip` of the listing is: its block, and how many live entries of that
/// block come before it. `None` when the listing is shorter.
fn locate(next: i64, holes: &BTreeMap<i64, i64>, skip: i64) -> Option<(i64, i64)> {
    let mut remaining = skip;
    let blocks = (next + keys::LIST_BLOCK - 1).div_euclid(keys::LIST_BLOCK);
    for block in 0..blocks {
        let size = (next - block * keys::LIST_BLOCK).min(keys::LIST_BLOCK);
        let live = size - holes.get(&block).copied().unwrap_or(0);
        if remaining < live {
            return Some((block, remaining));
        }
        remaining -= live;
    }
    None
}

/// A page of the listing: `top` customers after the first `skip`, in creation order, the
/// same order on every call. It reads the counter, the per-block hole counts (a small
/// partition) and then the page itself: the block that holds position `skip` is found by
/// arithmetic, and within it the page starts at its ordinal directly when the block has no
/// holes, or after reading past the remainder when it has (at most one block more).
pub async fn list_page(
    app: &App,
    tenant: &TenantId,
    skip: usize,
    top: usize,
) -> Result<Vec<Listed>, StorageError> {
    let next = next_ordinal(app, tenant).await?;
    let hole_items = crate::storage::read_all(
        app.table.as_ref(),
        Query::partition(keys::customer_list_holes_pk(tenant)).limit(1000),
    )
    .await?;
    let holes: BTreeMap<i64, i64> = hole_items
        .iter()
        .filter_map(|item| Some((item.sk.parse().ok()?, item.i64("holes")?)))
        .collect();
    let Some((mut block, mut to_pass)) = locate(next, &holes, skip as i64) else {
        return Ok(Vec::new());
    };
    let blocks = (next + keys::LIST_BLOCK - 1).div_euclid(keys::LIST_BLOCK);
    let mut start = block * keys::LIST_BLOCK;
    if !holes.contains_key(&block) {
        start += to_pass;
        to_pass = 0;
    }
    let mut page = Vec::with_capacity(top.min(10_000));
    while block < blocks && page.len() < top {
        let end = (block + 1) * keys::LIST_BLOCK - 1;
        let mut cursor = None;
        loop {
            let query = Query::partition(keys::customer_list_block_pk(tenant, block))
                .between(keys::customer_list_sk(start), keys::customer_list_sk(end))
                .limit(1000)
                .after(cursor);
            let found = app.table.query(query).await?;
            for item in found.items {
                if to_pass > 0 {
                    to_pass -= 1;
                    continue;
                }
                if page.len() == top {
                    break;
                }
                page.push(Listed {
                    tid: item.str("tid").unwrap_or_default().to_string(),
                    customer_key: item.str("key").map(str::to_string),
                });
            }
            cursor = found.next;
            if cursor.is_none() || page.len() == top {
                break;
            }
        }
        block += 1;
        start = block * keys::LIST_BLOCK;
    }
    Ok(page)
}

/// A customer's profile by tid.
pub async fn by_tid(
    app: &App,
    tenant: &TenantId,
    tid: &str,
) -> Result<Option<Customer>, StorageError> {
    profile(app.table.as_ref(), tenant, tid).await
}

/// A customer whose attribute changed in a period: the value before the first change in it
/// (null when the customer or the attribute was new) and the value after the last.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeChange {
    pub customer: Customer,
    pub initial: Value,
    pub last: Value,
}

/// The customers whose `attribute` changed from `from_millis` (inclusive) to `to_millis`
/// (exclusive), found through the per-day index of the `days` the period covers (UTC
/// dates); erased customers are left out. Costs what the changers of those days cost.
pub async fn attribute_changers(
    app: &App,
    tenant: &TenantId,
    attribute: &str,
    days: &[String],
    from_millis: i64,
    to_millis: i64,
) -> Result<Vec<AttributeChange>, StorageError> {
    use futures::StreamExt;
    let mut tids = std::collections::BTreeSet::new();
    for day in days {
        let query = Query::partition(keys::attribute_changes_pk(tenant, day)).limit(1000);
        for item in crate::storage::read_all(app.table.as_ref(), query).await? {
            tids.insert(item.sk);
        }
    }
    let found: Vec<Option<AttributeChange>> = futures::stream::iter(tids)
        .map(|tid| async move {
            let query = Query::partition(keys::customer_pk(tenant, &tid))
                .between(
                    format!("{}{from_millis:013}", keys::HISTORY_PREFIX),
                    format!("{}{:013}", keys::HISTORY_PREFIX, to_millis - 1) + "~",
                )
                .limit(1000);
            let history = crate::storage::read_all(app.table.as_ref(), query).await?;
            let values: Vec<(Value, Value)> = history
                .iter()
                .filter_map(|item| {
                    let pair = item.get("changes")?.get(attribute)?.as_array()?.clone();
                    Some((pair.first()?.clone(), pair.get(1)?.clone()))
                })
                .collect();
            let (Some((initial, _)), Some((_, last))) = (values.first(), values.last()) else {
                return Ok(None);
            };
            let (initial, last) = (initial.clone(), last.clone());
            Ok(profile(app.table.as_ref(), tenant, &tid)
                .await?
                .map(|customer| AttributeChange {
                    customer,
                    initial,
                    last,
                }))
        })
        .buffered(32)
        .collect::<Vec<Result<_, StorageError>>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(found.into_iter().flatten().collect())
}

/// Whether the tenant's catalog has an attribute of this name.
pub async fn attribute_known(
    app: &App,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StorageError> {
    Ok(app
        .table
        .get(&keys::attribute_definition(tenant, name))
        .await?
        .is_some())
}

/// What an erasure removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub tids: Vec<String>,
    pub identifiers: Vec<Identifier>,
    /// False while the rest of a long activity history is being removed in the background.
    pub complete: bool,
}

fn erasure_work(tenant: &TenantId, tid: &str) -> Key {
    keys::sweep_entry(0, tenant, "", &format!("erase-{tid}"))
}

/// Erases a customer: in one transaction, conditional on the profile's revision, the
/// suppressions, the profile and identifier entries, an erasure status and the background
/// work item; then as much activity as fits in the request (the sweep removes the rest).
/// `None` when no such customer exists.
pub async fn erase(
    app: &App,
    tenant: &TenantId,
    named: &CustomerRef,
    now_millis: i64,
) -> Result<Option<Erased>, CustomerError> {
    for _ in 0..6 {
        let Some(customer) = find(app, tenant, named).await? else {
            return Ok(None);
        };
        let rev = customer.profile.i64("rev").unwrap_or(0);
        let mut actions = vec![TransactAction::Delete {
            key: keys::customer_profile(tenant, &customer.tid),
            condition: Condition::equals("rev", rev),
        }];
        if let Some(ordinal) = customer.profile.i64("ordinal") {
            actions.push(TransactAction::Delete {
                key: keys::customer_list_entry(tenant, ordinal),
                condition: Condition::Always,
            });
            actions.push(TransactAction::Update {
                key: keys::customer_list_holes(tenant, ordinal.div_euclid(keys::LIST_BLOCK)),
                update: Update::default().add("holes", 1),
                condition: Condition::Always,
            });
        }
        let status_hash = tid_hash(app, &customer.tid);
        let mut hashes = vec![status_hash.clone()];
        hashes.extend(
            customer
                .identifiers
                .iter()
                .map(|identifier| identifier.hash(app)),
        );
        for hash in &hashes[1..] {
            actions.push(TransactAction::Delete {
                key: keys::customer_identifier(tenant, hash),
                condition: Condition::Always,
            });
        }
        for hash in &hashes {
            let key = keys::suppression(tenant, hash);
            actions.push(TransactAction::Put {
                item: Item::new(key.pk, key.sk).with("since", now_millis),
                condition: Condition::Always,
            });
        }
        let status = keys::erasure(tenant, &status_hash);
        actions.push(TransactAction::Put {
            item: Item::new(status.pk, status.sk)
                .with("status", "removing-activity")
                .with("started", now_millis),
            condition: Condition::Always,
        });
        let work = erasure_work(tenant, &customer.tid);
        actions.push(TransactAction::Put {
            item: Item::new(work.pk, work.sk)
                .with("kind", "erasure")
                .with("tenant", tenant.as_str())
                .with("tid", customer.tid.as_str())
                .with("status_key", status_hash.as_str()),
            condition: Condition::Always,
        });
        match app.table.transact(actions).await {
            Ok(()) => {}
            // Changed or erased meanwhile: look again (a second erasure then finds nothing).
            Err(StorageError::TransactionCanceled { .. } | StorageError::Contention(_)) => continue,
            Err(other) => return Err(other.into()),
        }
        let (complete, _) = remove_customer_partition(
            app.table.as_ref(),
            tenant,
            &customer.tid,
            INLINE_ERASURE_ROWS,
        )
        .await?;
        if complete {
            finish_erasure(app.table.as_ref(), tenant, &status_hash, now_millis).await?;
            app.table
                .delete(&erasure_work(tenant, &customer.tid), Condition::Always)
                .await?;
        }
        return Ok(Some(Erased {
            tids: vec![customer.tid],
            identifiers: customer.identifiers,
            complete,
        }));
    }
    Err(CustomerError::Busy)
}

/// Deletes what is left in a customer's partition, up to about `budget` items; returns
/// whether it is empty now and how many items went.
pub async fn remove_customer_partition(
    table: &dyn ItemTable,
    tenant: &TenantId,
    tid: &str,
    budget: usize,
) -> Result<(bool, usize), StorageError> {
    let mut removed = 0;
    loop {
        let page = table
            .query(Query::partition(keys::customer_pk(tenant, tid)).limit(1000))
            .await?;
        if page.items.is_empty() {
            return Ok((true, removed));
        }
        if removed >= budget {
            return Ok((false, removed));
        }
        removed += page.items.len();
        // A history item names the day whose index lists the customer: that entry goes too.
        let mut days = std::collections::BTreeSet::new();
        for item in &page.items {
            if item.sk.starts_with(keys::HISTORY_PREFIX)
                && let Some(at) = item.i64("at")
            {
                days.insert(crate::clock::iso8601_millis(at)[..10].to_string());
            }
        }
        let mut doomed = page.items;
        doomed.extend(days.iter().map(|day| {
            let entry = keys::attribute_changes(tenant, day, tid);
            Item::new(entry.pk, entry.sk)
        }));
        batch::delete_all(table, &doomed).await?;
    }
}

async fn finish_erasure(
    table: &dyn ItemTable,
    tenant: &TenantId,
    status_key: &str,
    now_millis: i64,
) -> Result<(), StorageError> {
    table
        .update(
            &keys::erasure(tenant, status_key),
            Update::default()
                .set("status", "done")
                .set("finished", now_millis),
            Condition::Always,
        )
        .await
        .map(drop)
}

/// Continues a background erasure (run by the sweep): whether it finished, and how many
/// items it removed.
pub async fn continue_erasure(
    table: &dyn ItemTable,
    entry: &Item,
    budget: usize,
    now_millis: i64,
) -> Result<(bool, usize), StorageError> {
    let (Some(tenant), Some(tid), Some(status_key)) = (
        entry
            .str("tenant")
            .and_then(|raw| TenantId::parse(raw).ok()),
        entry.str("tid"),
        entry.str("status_key"),
    ) else {
        return Ok((true, 0));
    };
    let (complete, removed) = remove_customer_partition(table, &tenant, tid, budget).await?;
    if complete {
        finish_erasure(table, &tenant, status_key, now_millis).await?;
    }
    Ok((complete, removed))
}

/// The status of an erasure, for the admin: `removing-activity` or `done`.
pub async fn erasure_status(
    app: &App,
    tenant: &TenantId,
    tid: &str,
) -> Result<Option<Value>, StorageError> {
    let item = app
        .table
        .get(&keys::erasure(tenant, &tid_hash(app, tid)))
        .await?;
    Ok(item.map(|item| json!({"status": item.str("status"), "started": item.i64("started"), "finished": item.i64("finished")})))
}

/// A tenant's suppressions: each a keyed hash (of a tid or an identifier) and its date.
pub async fn suppressions(app: &App, tenant: &TenantId) -> Result<Vec<Value>, StorageError> {
    let items = crate::storage::read_all(
        app.table.as_ref(),
        Query::partition(keys::suppressions_pk(tenant)).limit(1000),
    )
    .await?;
    Ok(items
        .iter()
        .map(|item| json!({"hash": item.sk, "since": item.i64("since")}))
        .collect())
}

/// Lifts the suppression of a tid or an identifier; true if there was one. Refused while
/// the erasure of that tid is still removing activity (a customer re-created with it would
/// be emptied by the sweep).
pub async fn lift_suppression(
    app: &App,
    tenant: &TenantId,
    named: &CustomerRef,
) -> Result<bool, CustomerError> {
    if let Some(tid) = &named.tid
        && erasure_status(app, tenant, tid)
            .await?
            .is_some_and(|status| status["status"] == "removing-activity")
    {
        return Err(CustomerError::Conflict(format!(
            "the erasure of tid {tid} is still removing activity; lift it when it is done"
        )));
    }
    let mut hashes: Vec<String> = named.tid.iter().map(|tid| tid_hash(app, tid)).collect();
    hashes.extend(
        named
            .identifiers
            .iter()
            .map(|identifier| identifier.hash(app)),
    );
    let mut lifted = false;
    for hash in hashes {
        lifted |= app
            .table
            .delete(&keys::suppression(tenant, &hash), Condition::Always)
            .await?
            .is_some();
    }
    Ok(lifted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_found_by_arithmetic_over_blocks_and_their_holes() {
        let block = keys::LIST_BLOCK;
        let none = BTreeMap::new();
        assert_eq!(locate(0, &none, 0), None);
        assert_eq!(locate(25, &none, 24), Some((0, 24)));
        assert_eq!(locate(25, &none, 25), None);
        assert_eq!(locate(3 * block, &none, block + 5), Some((1, 5)));
        // Two holes in block 0 and one in block 1: position block-2 is the first of block 1.
        let holes = BTreeMap::from([(0, 2), (1, 1)]);
        assert_eq!(locate(3 * block, &holes, block - 2), Some((1, 0)));
        assert_eq!(locate(3 * block, &holes, 2 * block - 3), Some((2, 0)));
        assert_eq!(locate(3 * block, &holes, 3 * block - 3), None);
        // The last block is partial.
        assert_eq!(locate(block + 10, &none, block + 9), Some((1, 9)));
        assert_eq!(locate(block + 10, &none, block + 10), None);
    }
}
