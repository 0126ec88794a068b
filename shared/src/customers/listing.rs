//! The listing: every customer of a tenant in creation order, the same order on every call,
//! so that Optimove's `$skip`/`$top` paging finds any position by arithmetic.
//!
//! Each new customer gets an ordinal. Ordinals are reserved in ranges by one atomic add on
//! the tenant's counter, before and outside the transactions that create the customers, so
//! creations of unrelated customers never conflict on it and a bulk import touches it once
//! per chunk. An ordinal whose creation failed becomes a hole, counted per block like the
//! holes erasures leave; the listing skips holes by those counts.

use std::collections::BTreeMap;

use futures::StreamExt;

use super::CustomerStore;
use super::Tid;
use crate::domain::TenantId;
use crate::storage::{
    Condition, Item, Query, StorageError, TransactAction, Update, keys, read_all,
};

/// Reserves `count` consecutive ordinals; returns the first.
pub(super) async fn reserve(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    count: usize,
) -> Result<i64, StorageError> {
    let count = count as i64;
    let counter = store
        .table
        .update(
            &keys::customer_list_counter(tenant),
            Update::default().add("next", count),
            Condition::Always,
        )
        .await?;
    let next = counter
        .i64("next")
        .ok_or_else(|| StorageError::Unavailable("the listing counter has no next".into()))?;
    Ok(next - count)
}

/// Records reserved ordinals that will never be used as holes of their blocks.
pub(super) async fn abandon(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    ordinals: &[i64],
) -> Result<(), StorageError> {
    let mut per_block: BTreeMap<i64, i64> = BTreeMap::new();
    for ordinal in ordinals {
        *per_block
            .entry(ordinal.div_euclid(keys::LIST_BLOCK))
            .or_default() += 1;
    }
    for (block, holes) in per_block {
        add_holes(store.table, tenant, block, holes).await?;
    }
    Ok(())
}

/// The write that counts holes in a block.
pub(super) fn holes_action(tenant: &TenantId, block: i64, holes: i64) -> TransactAction {
    TransactAction::Update {
        key: keys::customer_list_holes(tenant, block),
        update: Update::default().add("holes", holes),
        condition: Condition::Always,
    }
}

async fn add_holes(
    table: &dyn crate::storage::ItemTable,
    tenant: &TenantId,
    block: i64,
    holes: i64,
) -> Result<(), StorageError> {
    table
        .update(
            &keys::customer_list_holes(tenant, block),
            Update::default().add("holes", holes),
            Condition::Always,
        )
        .await
        .map(drop)
}

/// The listing entry of a customer created with `ordinal`, written in its creating
/// transaction.
pub(super) fn entry_action(
    tenant: &TenantId,
    ordinal: i64,
    tid: &Tid,
    customer_key: Option<String>,
) -> TransactAction {
    let entry = keys::customer_list_entry(tenant, ordinal);
    let mut item = Item::new(entry.pk, entry.sk).with("tid", tid);
    if let Some(customer_key) = customer_key {
        item = item.with("key", customer_key);
    }
    TransactAction::Put {
        item,
        condition: Condition::NotExists,
    }
}

/// The next ordinal to be reserved (0 before the first customer).
async fn next_ordinal(store: CustomerStore<'_>, tenant: &TenantId) -> Result<i64, StorageError> {
    let counter = store
        .table
        .get(&keys::customer_list_counter(tenant))
        .await?;
    Ok(counter.and_then(|item| item.i64("next")).unwrap_or(0))
}

/// One customer of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub tid: Tid,
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

/// The live entries with ordinals `first..=last` (one block), in ordinal order: one query
/// per stripe the range touches, several in flight.
async fn read_range(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    first: i64,
    last: i64,
) -> Result<Vec<Item>, StorageError> {
    let block = first.div_euclid(keys::LIST_BLOCK);
    let stripes = (last - first + 1).min(keys::LIST_STRIPES);
    let queries = (0..stripes).map(|offset| {
        let stripe = (first + offset).rem_euclid(keys::LIST_STRIPES);
        Query::partition(keys::customer_list_stripe_pk(tenant, block, stripe))
            .between(keys::customer_list_sk(first), keys::customer_list_sk(last))
            .limit(1000)
    });
    let mut items: Vec<Item> = futures::stream::iter(queries)
        .map(|query| read_all(store.table, query))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    items.sort_by(|a, b| a.sk.cmp(&b.sk));
    Ok(items)
}

/// A page of the listing: `top` customers after the first `skip`, in creation order. It
/// reads the counter, the per-block hole counts (a small partition) and then the page
/// itself: the block that holds position `skip` is found by arithmetic, and within it the
/// page starts at its ordinal directly when the block has no holes, or after reading past
/// the remainder when it has.
pub async fn list_page(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    skip: usize,
    top: usize,
) -> Result<Vec<Listed>, StorageError> {
    let next = next_ordinal(store, tenant).await?;
    let hole_items = read_all(
        store.table,
        Query::partition(keys::customer_list_holes_pk(tenant)).limit(1000),
    )
    .await?;
    let holes: BTreeMap<i64, i64> = hole_items
        .iter()
        .filter_map(|item| Some((item.sk.parse().ok()?, item.i64("holes")?)))
        .collect();
    let Some((block, mut to_pass)) = locate(next, &holes, skip as i64) else {
        return Ok(Vec::new());
    };
    let mut start = block * keys::LIST_BLOCK;
    if !holes.contains_key(&block) {
        start += to_pass;
        to_pass = 0;
    }
    let mut page = Vec::with_capacity(top.min(10_000));
    while start < next && page.len() < top {
        let block_end = (start.div_euclid(keys::LIST_BLOCK) + 1) * keys::LIST_BLOCK - 1;
        let wanted = (top - page.len()) as i64 + to_pass;
        let last = block_end
            .min(next - 1)
            .min(start + wanted.max(keys::LIST_STRIPES) - 1);
        for item in read_range(store, tenant, start, last).await? {
            if to_pass > 0 {
                to_pass -= 1;
                continue;
            }
            if page.len() == top {
                break;
            }
            // Every entry is written with its customer's tid ([`entry_action`]).
            let Some(tid) = item.str("tid").and_then(Tid::parse) else {
                continue;
            };
            page.push(Listed {
                tid,
                customer_key: item.str("key").map(str::to_string),
            });
        }
        start = last + 1;
    }
    Ok(page)
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

    #[test]
    fn an_empty_listing_has_no_position() {
        assert_eq!(locate(0, &BTreeMap::new(), 0), None);
        assert_eq!(locate(0, &BTreeMap::from([(0, 0)]), 0), None);
    }

    #[test]
    fn without_holes_a_position_lies_at_its_own_ordinal() {
        let block = keys::LIST_BLOCK;
        let none = BTreeMap::new();
        assert_eq!(locate(3 * block, &none, 0), Some((0, 0)));
        assert_eq!(locate(3 * block, &none, block - 1), Some((0, block - 1)));
        assert_eq!(locate(3 * block, &none, block), Some((1, 0)));
        assert_eq!(locate(3 * block, &none, 2 * block + 7), Some((2, 7)));
    }

    #[test]
    fn a_position_past_the_holes_of_earlier_blocks_is_found_in_a_later_block() {
        let block = keys::LIST_BLOCK;
        // Block 0 has 3 holes: it holds positions 0..block-3, and block 1 starts at block-3.
        let holes = BTreeMap::from([(0, 3)]);
        assert_eq!(locate(3 * block, &holes, block - 4), Some((0, block - 4)));
        assert_eq!(locate(3 * block, &holes, block - 3), Some((1, 0)));
        assert_eq!(locate(3 * block, &holes, block), Some((1, 3)));
        // Holes in blocks 0 and 1 add up before block 2.
        let holes = BTreeMap::from([(0, 3), (1, 4)]);
        assert_eq!(
            locate(3 * block, &holes, 2 * block - 8),
            Some((1, block - 5))
        );
        assert_eq!(locate(3 * block, &holes, 2 * block - 7), Some((2, 0)));
    }

    #[test]
    fn holes_of_a_later_block_do_not_move_the_positions_before_it() {
        let block = keys::LIST_BLOCK;
        let holes = BTreeMap::from([(1, 500)]);
        assert_eq!(locate(3 * block, &holes, block - 1), Some((0, block - 1)));
        assert_eq!(locate(3 * block, &holes, block), Some((1, 0)));
        assert_eq!(
            locate(3 * block, &holes, 2 * block - 501),
            Some((1, block - 501))
        );
        assert_eq!(locate(3 * block, &holes, 2 * block - 500), Some((2, 0)));
    }

    #[test]
    fn a_block_whose_every_entry_is_a_hole_is_passed_over() {
        let block = keys::LIST_BLOCK;
        let holes = BTreeMap::from([(1, block)]);
        assert_eq!(locate(3 * block, &holes, block - 1), Some((0, block - 1)));
        assert_eq!(locate(3 * block, &holes, block), Some((2, 0)));
        // Every block empty: no position at all.
        let all = BTreeMap::from([(0, block), (1, block), (2, block)]);
        assert_eq!(locate(3 * block, &all, 0), None);
    }

    #[test]
    fn a_position_at_or_past_the_live_entries_is_not_found() {
        let block = keys::LIST_BLOCK;
        let holes = BTreeMap::from([(0, 2), (1, 3)]);
        // 2 blocks reserved, 5 holes: positions 0..2*block-5 exist.
        assert_eq!(
            locate(2 * block, &holes, 2 * block - 6),
            Some((1, block - 4))
        );
        assert_eq!(locate(2 * block, &holes, 2 * block - 5), None);
        assert_eq!(locate(2 * block, &holes, 2 * block), None);
    }

    #[test]
    fn the_last_block_counts_only_the_ordinals_reserved_in_it() {
        let block = keys::LIST_BLOCK;
        // 10 ordinals reserved in block 1, 4 of them holes: 6 live entries there.
        let holes = BTreeMap::from([(1, 4)]);
        assert_eq!(locate(block + 10, &holes, block + 5), Some((1, 5)));
        assert_eq!(locate(block + 10, &holes, block + 6), None);
        // One ordinal reserved past a full block.
        assert_eq!(locate(block + 1, &BTreeMap::new(), block), Some((1, 0)));
        assert_eq!(locate(block + 1, &BTreeMap::new(), block + 1), None);
    }
}
