//! Activity: what a customer did (MXO activity capture), stored in the customer's own
//! partition, and the per-filter counters on the profile that eligibility rules read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::CustomerError;
use super::CustomerStore;
use super::Tid;
use super::identity::{Customer, CustomerRef, Seed, find_or_create_seeded, profile};
use crate::domain::TenantId;
use crate::retry::{Attempt, optimistic};
use crate::storage::{Condition, Item, Query, StorageError, TransactAction, Update, keys};

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

impl Customer {
    /// How many activities match the filter, and when the latest happened (epoch ms).
    pub fn activity_stats(&self, filter: &ActivityFilter) -> (i64, Option<i64>) {
        let (count, latest) = filter.attributes();
        (
            self.profile.i64(&count).unwrap_or(0),
            self.profile.i64(&latest),
        )
    }
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

/// Stores a request's activities for the customer it names, creating the customer if
/// unknown — then the activities commit in the creating transaction — else in one
/// transaction with the counters they count towards, conditional on the profile's revision
/// (retried on a concurrent change), so counts and "latest" times stay exact. An erasure
/// committing meanwhile makes it refuse.
pub async fn record_activities(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
    activities: &[Activity],
    now_millis: i64,
) -> Result<Customer, CustomerError> {
    if activities.is_empty() || activities.len() > 100 {
        return Err(CustomerError::Conflict(
            "a request stores 1 to 100 activities".into(),
        ));
    }
    let seed = |tid: &Tid| {
        Ok(Seed {
            // A new profile has no counters yet.
            profile: counters_update(&Item::new("", ""), activities),
            items: activity_items(tenant, tid, activities),
        })
    };
    let (customer, created) =
        find_or_create_seeded(store, tenant, named, now_millis, &seed).await?;
    if !created {
        add_activities(store, tenant, customer.clone(), activities).await?;
    }
    Ok(customer)
}

/// The items holding a request's activities in the customer's partition.
fn activity_items(tenant: &TenantId, tid: &Tid, activities: &[Activity]) -> Vec<Item> {
    grouped(activities)
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
        .collect()
}

/// The change of a profile's counters that the activities make.
fn counters_update(profile: &Item, activities: &[Activity]) -> Update {
    let counters = profile
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
    let mut update = Update::default();
    let mut added = 0;
    for (count_name, (delta, latest)) in counts {
        let known = profile.attrs.contains_key(&count_name);
        if !known && count_name != ActivityFilter::default().attributes().0 {
            if counters + added >= MAX_ACTIVITY_COUNTERS {
                continue;
            }
            added += 1;
        }
        let latest_name = count_name.replacen("n_", "t_", 1);
        update = update.add(count_name, delta);
        if profile
            .i64(&latest_name)
            .is_none_or(|current| latest > current)
        {
            update = update.set(latest_name, latest);
        }
    }
    update
}

/// Stores activities of a known customer with its counters; the first attempt uses the
/// profile the caller read, later ones (after a concurrent change) read it again.
async fn add_activities(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    customer: Customer,
    activities: &[Activity],
) -> Result<(), CustomerError> {
    let items = activity_items(tenant, &customer.tid, activities);
    let tid = customer.tid.clone();
    let (tid, items) = (&tid, &items);
    // The first attempt uses the profile the caller read; a retry reads it again.
    let mut given = Some(customer);
    optimistic("customer-activity", move || {
        let given = given.take();
        async move {
            let customer = match given {
                Some(customer) => customer,
                None => profile(store.table, tenant, tid)
                    .await?
                    .ok_or_else(|| CustomerError::Suppressed("tid".into()))?,
            };
            let rev = customer.rev();
            let update = counters_update(&customer.profile, activities).set("rev", rev + 1);
            let mut actions: Vec<TransactAction> = items
                .iter()
                .map(|item| TransactAction::Put {
                    item: item.clone(),
                    condition: Condition::NotExists,
                })
                .collect();
            actions.push(TransactAction::Update {
                key: keys::customer_profile(tenant, &customer.tid),
                update,
                condition: Condition::equals("rev", rev),
            });
            Ok(Attempt::of_write(store.table.transact(actions).await)?)
        }
    })
    .await
}

/// One page of a customer's activity, newest first.
pub async fn activity_page(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    tid: &Tid,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Activity>, Option<String>), StorageError> {
    let page = store
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
