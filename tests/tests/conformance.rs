//! The storage conformance suite: every case is written once, generic over the ports, and
//! run against the embedded adapters and against the DynamoDB/S3 adapters on the emulator.
//! A case that passes on one and fails on the other is a bug in an adapter.

use std::sync::Arc;
use std::time::Duration;

use custdata::clock::{Clock, ManualClock};
use custdata::storage::faults::RefusingPartOfBatches;
use custdata::storage::{
    BlobStore, Comparison, Condition, Item, ItemTable, Key, MAX_BATCH_CHUNK, Query, StorageError,
    TransactAction, Update, WriteRequest, batch, read_all,
};
use custdata_tests::{CountingProxy, TestApp, aws_stores, aws_stores_via, spawn_app, test_clock};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The ports under test, a clock that moves only when told, and what keeps them alive.
pub struct Stores {
    table: Arc<dyn ItemTable>,
    blobs: Arc<dyn BlobStore>,
    clock: ManualClock,
    backing: Backing,
    _app: Option<TestApp>,
}

/// Where the blob store's bytes come from, seen from outside the adapter: what the store has
/// handed a reader so far, whatever the reader keeps of it.
enum Backing {
    /// The embedded store's directory of object files.
    Files(std::path::PathBuf),
    /// The emulator, behind a proxy counting what it sends.
    Emulator(CountingProxy),
}

impl Backing {
    /// A mark to measure [`Backing::read_since`] from.
    fn mark(&self) -> u64 {
        match self {
            Backing::Files(_) => 0,
            Backing::Emulator(proxy) => proxy.bytes_from_upstream(),
        }
    }

    /// Bytes of the object `key` read from the backing store since `mark`, while a reader of
    /// it is open: for the files, the position of the open handle of the object's file (a
    /// reader that holds no handle has the object in memory, and fails the test); for the
    /// emulator, what it sent through the proxy since the mark.
    fn read_since(&self, mark: u64, key: &str) -> u64 {
        match self {
            Backing::Files(objects) => {
                let file = objects.join(key).canonicalize().expect("the object's file");
                let positions: Vec<u64> = std::fs::read_dir("/proc/self/fd")
                    .expect("/proc/self/fd")
                    .filter_map(Result::ok)
                    .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| link == file))
                    .filter_map(|fd| {
                        let info = std::fs::read_to_string(
                            std::path::Path::new("/proc/self/fdinfo").join(fd.file_name()),
                        )
                        .ok()?;
                        info.lines()
                            .find_map(|line| line.strip_prefix("pos:"))
                            .and_then(|pos| pos.trim().parse().ok())
                    })
                    .collect();
                assert_eq!(
                    positions.len(),
                    1,
                    "one open handle of {file:?} while its reader is unfinished (none: the reader holds the object in memory)"
                );
                positions[0]
            }
            Backing::Emulator(proxy) => proxy.bytes_from_upstream() - mark,
        }
    }
}

async fn embedded() -> Stores {
    let app = spawn_app().await;
    Stores {
        table: app.server.app.table.clone(),
        blobs: app.server.app.blobs.clone(),
        clock: app.clock.clone(),
        backing: Backing::Files(app.server.data_dir.join("blobs").join("objects")),
        _app: Some(app),
    }
}

async fn aws() -> Stores {
    let clock = test_clock();
    let proxy = CountingProxy::to_emulator().await;
    let stores = aws_stores_via(&proxy.url, Arc::new(clock.clone())).await;
    Stores {
        table: Arc::new(stores.table),
        blobs: Arc::new(stores.blobs),
        clock,
        backing: Backing::Emulator(proxy),
        _app: None,
    }
}

fn row(pk: &str, n: usize) -> Item {
    Item::new(pk, format!("row#{n:05}"))
        .with("n", n as i64)
        .with("label", format!("item {n}"))
}

async fn read_partition(table: &dyn ItemTable, pk: &str) -> Vec<Item> {
    read_all(table, Query::partition(pk).limit(1000))
        .await
        .expect("query")
}

pub async fn a_conditional_put_refuses_to_overwrite(s: Stores) {
    let item = Item::new("T#a#x", "one").with("v", 1);
    s.table
        .put(item.clone(), Condition::NotExists)
        .await
        .expect("first put");
    let second = s
        .table
        .put(Item::new("T#a#x", "one").with("v", 2), Condition::NotExists)
        .await;
    assert_eq!(
        second,
        Err(StorageError::ConditionFailed {
            pk: "T#a#x".into(),
            sk: "one".into()
        })
    );
    assert_eq!(
        s.table.get(&Key::new("T#a#x", "one")).await.expect("get"),
        Some(item)
    );
    s.table
        .put(
            Item::new("T#a#x", "one").with("v", 3),
            Condition::equals("v", 1),
        )
        .await
        .expect("a put whose condition holds");
    let deleted = s
        .table
        .delete(&Key::new("T#a#x", "one"), Condition::equals("v", 99))
        .await;
    assert!(
        matches!(deleted, Err(StorageError::ConditionFailed { .. })),
        "{deleted:?}"
    );
    let deleted = s
        .table
        .delete(&Key::new("T#a#x", "one"), Condition::Exists)
        .await
        .expect("delete");
    assert_eq!(deleted.and_then(|item| item.i64("v")), Some(3));
    assert_eq!(
        s.table.get(&Key::new("T#a#x", "one")).await.expect("get"),
        None
    );
}

pub async fn an_update_applies_only_while_its_condition_holds(s: Stores) {
    let key = Key::new("T#a#counter", "window");
    let below_limit = || {
        Condition::Any(vec![
            Condition::LacksAttribute("count".into()),
            Condition::compare("count", Comparison::Lt, 2),
        ])
    };
    let first = s
        .table
        .update(
            &key,
            Update::default().add("count", 1).set("who", "a"),
            below_limit(),
        )
        .await
        .expect("first");
    assert_eq!(first.i64("count"), Some(1));
    let second = s
        .table
        .update(&key, Update::default().add("count", 1), below_limit())
        .await
        .expect("second");
    assert_eq!(second.i64("count"), Some(2));
    assert_eq!(second.str("who"), Some("a"));
    let third = s
        .table
        .update(&key, Update::default().add("count", 1), below_limit())
        .await;
    assert!(
        matches!(third, Err(StorageError::ConditionFailed { .. })),
        "{third:?}"
    );
    let removed = s
        .table
        .update(&key, Update::default().remove("who"), Condition::Exists)
        .await
        .expect("remove");
    assert_eq!(removed.get("who"), None);
    assert_eq!(
        s.table
            .get(&key)
            .await
            .expect("get")
            .and_then(|item| item.i64("count")),
        Some(2)
    );
    let missing = s
        .table
        .update(
            &Key::new("T#a#counter", "absent"),
            Update::default().set("x", 1),
            Condition::Exists,
        )
        .await;
    assert!(
        matches!(missing, Err(StorageError::ConditionFailed { .. })),
        "{missing:?}"
    );
    assert_eq!(
        s.table
            .get(&Key::new("T#a#counter", "absent"))
            .await
            .expect("get"),
        None
    );
}

pub async fn a_query_pages_with_a_cursor_and_refuses_a_forged_one(s: Stores) {
    let pk = "T#a#paging";
    let mut writes: Vec<WriteRequest> = (0..25).map(|n| WriteRequest::Put(row(pk, n))).collect();
    writes.push(WriteRequest::Put(Item::new(pk, "other#1")));
    writes.push(WriteRequest::Put(row("T#b#paging", 1)));
    batch::write_all(s.table.as_ref(), writes)
        .await
        .expect("batch");

    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .table
            .query(Query::partition(pk).prefix("row#").limit(10).after(cursor))
            .await
            .expect("page");
        pages.push(
            page.items
                .iter()
                .map(|item| item.i64("n").unwrap_or(-1))
                .collect::<Vec<_>>(),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
    assert_eq!(pages.concat(), (0..25).collect::<Vec<i64>>());

    let newest = s
        .table
        .query(Query::partition(pk).prefix("row#").limit(3).descending())
        .await
        .expect("descending");
    assert_eq!(
        newest
            .items
            .iter()
            .map(|i| i.i64("n").unwrap_or(-1))
            .collect::<Vec<_>>(),
        vec![24, 23, 22]
    );
    let next = s
        .table
        .query(
            Query::partition(pk)
                .prefix("row#")
                .limit(3)
                .descending()
                .after(newest.next.clone()),
        )
        .await
        .expect("descending page 2");
    assert_eq!(next.items.first().and_then(|i| i.i64("n")), Some(21));

    let between = s
        .table
        .query(Query::partition(pk).between("row#00003", "row#00005"))
        .await
        .expect("between");
    assert_eq!(between.items.len(), 3);
    let exact = s
        .table
        .query(Query::partition(pk).prefix("row#").limit(25))
        .await
        .expect("exact");
    assert_eq!(
        (exact.items.len(), exact.next),
        (25, None),
        "a full last page has no next cursor"
    );

    let first = s
        .table
        .query(Query::partition(pk).prefix("row#").limit(10))
        .await
        .expect("page 1");
    let cursor = first.next.expect("a cursor");
    let mut forged = cursor.clone().into_bytes();
    forged[2] = if forged[2] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    let refused = s
        .table
        .query(
            Query::partition(pk)
                .prefix("row#")
                .limit(10)
                .after(Some(forged)),
        )
        .await;
    assert_eq!(refused, Err(StorageError::InvalidCursor));
    let elsewhere = s
        .table
        .query(
            Query::partition("T#b#paging")
                .prefix("row#")
                .limit(10)
                .after(Some(cursor)),
        )
        .await;
    assert_eq!(
        elsewhere,
        Err(StorageError::InvalidCursor),
        "a cursor of one partition is refused on another"
    );
}

pub async fn a_batch_of_1000_is_written_in_chunks_of_25_and_reads_back(s: Stores) {
    let recording = RefusingPartOfBatches::new(s.table.clone(), 0);
    let writes = (0..1000)
        .map(|n| WriteRequest::Put(row(&format!("T#a#bulk{}", n % 4), n)))
        .collect();
    batch::write_all(&recording, writes)
        .await
        .expect("batch of 1000");
    let sizes = recording.chunk_sizes();
    assert_eq!(sizes.len(), 40);
    assert!(
        sizes.iter().all(|size| *size <= MAX_BATCH_CHUNK),
        "{sizes:?}"
    );
    let mut seen = Vec::new();
    for partition in 0..4 {
        let items = read_partition(s.table.as_ref(), &format!("T#a#bulk{partition}")).await;
        assert_eq!(items.len(), 250);
        seen.extend(items.iter().map(|item| item.i64("n").unwrap_or(-1)));
    }
    seen.sort();
    assert_eq!(seen, (0..1000).collect::<Vec<i64>>());

    let deletes = (0..1000)
        .map(|n| {
            WriteRequest::Delete(Key::new(
                format!("T#a#bulk{}", n % 4),
                format!("row#{n:05}"),
            ))
        })
        .collect();
    batch::write_all(s.table.as_ref(), deletes)
        .await
        .expect("batch delete");
    assert!(
        read_partition(s.table.as_ref(), "T#a#bulk0")
            .await
            .is_empty()
    );

    let oversized = (0..26)
        .map(|n| WriteRequest::Put(row("T#a#big", n)))
        .collect();
    assert!(matches!(
        s.table.write_chunk(oversized).await,
        Err(StorageError::InvalidRequest(_))
    ));
}

pub async fn unprocessed_batch_items_are_retried_until_written(s: Stores) {
    let refusing = RefusingPartOfBatches::new(s.table.clone(), 6);
    let writes = (0..100)
        .map(|n| WriteRequest::Put(row("T#a#retry", n)))
        .collect();
    batch::write_all(&refusing, writes)
        .await
        .expect("every item written despite refusals");
    assert_eq!(refusing.refusals_left(), 0);
    assert!(
        refusing.chunk_sizes().len() > 4,
        "refused halves were sent again: {:?}",
        refusing.chunk_sizes()
    );
    let items = read_partition(s.table.as_ref(), "T#a#retry").await;
    assert_eq!(items.len(), 100);
}

pub async fn a_transaction_with_one_failing_condition_writes_nothing(s: Stores) {
    s.table
        .put(Item::new("T#a#tx", "b").with("v", 1), Condition::Always)
        .await
        .expect("b");
    s.table
        .put(Item::new("T#a#tx", "c").with("v", 1), Condition::Always)
        .await
        .expect("c");
    let actions = vec![
        TransactAction::Put {
            item: Item::new("T#a#tx", "a").with("v", 1),
            condition: Condition::NotExists,
        },
        TransactAction::Update {
            key: Key::new("T#a#tx", "b"),
            update: Update::default().add("v", 10),
            condition: Condition::Exists,
        },
        TransactAction::Put {
            item: Item::new("T#a#tx", "c").with("v", 2),
            condition: Condition::NotExists,
        },
    ];
    assert_eq!(
        s.table.transact(actions).await,
        Err(StorageError::TransactionCanceled { index: 2 })
    );
    assert_eq!(
        s.table.get(&Key::new("T#a#tx", "a")).await.expect("a"),
        None
    );
    assert_eq!(
        s.table
            .get(&Key::new("T#a#tx", "b"))
            .await
            .expect("b")
            .and_then(|i| i.i64("v")),
        Some(1)
    );
    assert_eq!(
        s.table
            .get(&Key::new("T#a#tx", "c"))
            .await
            .expect("c")
            .and_then(|i| i.i64("v")),
        Some(1)
    );

    let actions = vec![
        TransactAction::Put {
            item: Item::new("T#a#tx", "a").with("v", 1),
            condition: Condition::NotExists,
        },
        TransactAction::Update {
            key: Key::new("T#a#tx", "b"),
            update: Update::default().add("v", 10),
            condition: Condition::Exists,
        },
        TransactAction::Delete {
            key: Key::new("T#a#tx", "c"),
            condition: Condition::equals("v", 1),
        },
        TransactAction::Check {
            key: Key::new("T#a#tx", "d"),
            condition: Condition::NotExists,
        },
    ];
    s.table
        .transact(actions)
        .await
        .expect("a transaction whose conditions hold");
    assert!(
        s.table
            .get(&Key::new("T#a#tx", "a"))
            .await
            .expect("a")
            .is_some()
    );
    assert_eq!(
        s.table
            .get(&Key::new("T#a#tx", "b"))
            .await
            .expect("b")
            .and_then(|i| i.i64("v")),
        Some(11)
    );
    assert_eq!(
        s.table.get(&Key::new("T#a#tx", "c")).await.expect("c"),
        None
    );

    let too_many = (0..101)
        .map(|n| TransactAction::Check {
            key: Key::new("T#a#tx", format!("k{n}")),
            condition: Condition::Always,
        })
        .collect();
    assert!(matches!(
        s.table.transact(too_many).await,
        Err(StorageError::InvalidRequest(_))
    ));
}

pub async fn expired_items_read_as_absent(s: Stores) {
    let expires = s.clock.now_seconds() + 60;
    s.table
        .put(
            Item::new("T#a#ttl", "token")
                .with("v", 1)
                .expiring_at(expires),
            Condition::NotExists,
        )
        .await
        .expect("put");
    s.table
        .put(
            Item::new("T#a#ttl", "keep").with("v", 1),
            Condition::NotExists,
        )
        .await
        .expect("put");
    assert!(
        s.table
            .get(&Key::new("T#a#ttl", "token"))
            .await
            .expect("get")
            .is_some()
    );
    s.clock.advance_seconds(61);
    assert_eq!(
        s.table
            .get(&Key::new("T#a#ttl", "token"))
            .await
            .expect("get"),
        None
    );
    let page = s
        .table
        .query(Query::partition("T#a#ttl"))
        .await
        .expect("query");
    assert_eq!(
        page.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(),
        vec!["keep"]
    );
    s.table
        .put(
            Item::new("T#a#ttl", "token").with("v", 2),
            Condition::NotExists,
        )
        .await
        .expect("an expired item counts as absent for conditions");
}

/// A reader of `size` deterministic bytes, generated as it is read (never all in memory).
fn generated(size: u64) -> impl AsyncRead + Send + 'static {
    tokio::io::repeat(0x5a).take(size)
}

pub async fn a_50_mb_blob_streams_in_and_out_in_chunks(s: Stores) {
    const SIZE: u64 = 50 * 1024 * 1024;
    let written = s
        .blobs
        .put(
            "t-a/uploads/big.bin",
            "application/octet-stream",
            Box::pin(generated(SIZE)),
        )
        .await
        .expect("put");
    assert_eq!(written, SIZE);
    let mark = s.backing.mark();
    let (meta, mut reader) = s
        .blobs
        .get("t-a/uploads/big.bin")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(meta.size, SIZE);
    let mut buffer = vec![0u8; 64 * 1024];
    let (mut total, mut reads, mut largest) = (0u64, 0u64, 0usize);
    let mut digest = Sha256::new();
    // Streaming, not buffering: when the first chunk reaches the reader, the store has handed
    // over only a small part of the object. A reader that buffers the object has had all of it
    // read from the store by then (or holds no handle of it: the files' check fails too). A
    // streamed read has at most the sockets' and the readers' buffers in flight, a few MB;
    // the bound leaves room for slow scheduling and holds whatever the moment of measuring.
    let first = reader.read(&mut buffer).await.expect("the first read");
    assert!(first > 0, "the first read returns bytes");
    let read_from_store = s.backing.read_since(mark, "t-a/uploads/big.bin");
    assert!(
        read_from_store < SIZE / 4,
        "the first chunk arrives before the object could have been read into memory: {read_from_store} of {SIZE} bytes read from the store"
    );
    digest.update(&buffer[..first]);
    total += first as u64;
    reads += 1;
    largest = largest.max(first);
    loop {
        let read = reader.read(&mut buffer).await.expect("read");
        if read == 0 {
            break;
        }
        digest.update(&buffer[..read]);
        total += read as u64;
        reads += 1;
        largest = largest.max(read);
    }
    assert_eq!(total, SIZE);
    assert!(
        reads >= SIZE / (64 * 1024),
        "read in bounded chunks: {reads} reads, largest {largest} bytes"
    );
    let mut expected = Sha256::new();
    let mut source = generated(SIZE);
    let mut chunk = vec![0u8; 1024 * 1024];
    loop {
        let read = source.read(&mut chunk).await.expect("source");
        if read == 0 {
            break;
        }
        expected.update(&chunk[..read]);
    }
    assert_eq!(digest.finalize(), expected.finalize());
    let listed = s.blobs.list("t-a/uploads/").await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.key.as_str(), m.size))
            .collect::<Vec<_>>(),
        vec![("t-a/uploads/big.bin", SIZE)]
    );
    s.blobs.delete("t-a/uploads/big.bin").await.expect("delete");
    assert!(
        s.blobs
            .get("t-a/uploads/big.bin")
            .await
            .expect("get")
            .is_none()
    );
    assert!(s.blobs.list("t-a/").await.expect("list").is_empty());
}

pub async fn a_presigned_upload_from_a_plain_http_client_can_be_read_back(s: Stores) {
    let upload = s
        .blobs
        .presign_put("t-a/tmp/upload.csv", "text/csv", Duration::from_secs(300))
        .await
        .expect("presign");
    assert_eq!(upload.method, "PUT");
    let body = "customuid,num_a\nu1,1\nu2,2\n";
    let response = reqwest::Client::new()
        .put(&upload.url)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .expect("PUT to the presigned URL");
    assert!(
        response.status().is_success(),
        "{}: {:?}",
        response.status(),
        response.text().await
    );
    let (meta, mut reader) = s
        .blobs
        .get("t-a/tmp/upload.csv")
        .await
        .expect("get")
        .expect("uploaded");
    assert_eq!(meta.size, body.len() as u64);
    let mut text = String::new();
    reader.read_to_string(&mut text).await.expect("read");
    assert_eq!(text, body);
}

pub async fn a_presigned_upload_url_takes_one_body(s: Stores) {
    let client = reqwest::Client::new();
    let put = |upload: &custdata::storage::PresignedUpload, body: &'static str| {
        let mut request = client.put(&upload.url);
        for (name, value) in &upload.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request.body(body).send()
    };
    let read = |key: &'static str| {
        let blobs = s.blobs.clone();
        async move {
            let (_, mut reader) = blobs.get(key).await.expect("get").expect("stored");
            let mut text = String::new();
            reader.read_to_string(&mut text).await.expect("read");
            text
        }
    };
    let upload = s
        .blobs
        .presign_put("t-a/tmp/once.csv", "text/csv", Duration::from_secs(300))
        .await
        .expect("presign");
    assert!(
        upload
            .headers
            .iter()
            .any(|(name, value)| name.eq_ignore_ascii_case("if-none-match") && value == "*"),
        "{:?}",
        upload.headers
    );
    let first = put(&upload, "first").await.expect("PUT");
    assert!(first.status().is_success(), "{}", first.status());
    let second = put(&upload, "second").await.expect("PUT");
    assert_eq!(second.status(), 412);
    assert_eq!(read("t-a/tmp/once.csv").await, "first");

    let upload = s
        .blobs
        .presign_put("t-a/tmp/raced.csv", "text/csv", Duration::from_secs(300))
        .await
        .expect("presign");
    let (a, b) = tokio::join!(put(&upload, "a"), put(&upload, "b"));
    let (a, b) = (a.expect("PUT").status(), b.expect("PUT").status());
    assert_eq!(
        [a, b].iter().filter(|status| status.is_success()).count(),
        1,
        "{a} {b}"
    );
    let winner = if a.is_success() { "a" } else { "b" };
    assert_eq!(read("t-a/tmp/raced.csv").await, winner);
}

pub async fn invalid_keys_and_requests_are_refused_alike(s: Stores) {
    assert!(
        s.blobs
            .put("../escape", "text/plain", Box::pin(generated(1)))
            .await
            .is_err()
    );
    let reserved = s
        .table
        .put(
            Item::new("T#a#x", "y").with("pk", "other"),
            Condition::Always,
        )
        .await;
    assert!(
        matches!(reserved, Err(StorageError::InvalidRequest(_))),
        "{reserved:?}"
    );
    let huge = Item::new("T#a#x", "huge").with("blob", "x".repeat(410 * 1024));
    assert!(matches!(
        s.table.put(huge, Condition::Always).await,
        Err(StorageError::InvalidRequest(_))
    ));
    assert!(matches!(
        s.table.query(Query::partition("T#a#x").limit(0)).await,
        Err(StorageError::InvalidRequest(_))
    ));
    let empty_bound = s
        .table
        .query(Query::partition("T#a#x").between("", "z"))
        .await;
    assert!(
        matches!(empty_bound, Err(StorageError::InvalidRequest(_))),
        "{empty_bound:?}"
    );
    let long_sort_key = s.table.get(&Key::new("T#a#x", "k".repeat(1025))).await;
    assert!(
        matches!(long_sort_key, Err(StorageError::InvalidRequest(_))),
        "{long_sort_key:?}"
    );
    let long_partition = Item::new("p".repeat(2049), "s");
    assert!(matches!(
        s.table.put(long_partition, Condition::Always).await,
        Err(StorageError::InvalidRequest(_))
    ));
}

pub async fn a_prefix_scan_finds_every_live_item_of_a_tenant_and_nothing_else(s: Stores) {
    let expires = s.clock.now_seconds() + 10;
    for (pk, sk) in [
        ("T#scan#1", "a"),
        ("T#scan#1", "b"),
        ("T#scan#2", "a"),
        ("T#scanner#1", "a"),
        ("T#other#1", "a"),
    ] {
        s.table
            .put(Item::new(pk, sk).with("v", 1), Condition::Always)
            .await
            .expect("put");
    }
    s.table
        .put(
            Item::new("T#scan#3", "gone").expiring_at(expires),
            Condition::Always,
        )
        .await
        .expect("put");
    s.clock.advance_seconds(11);
    let mut found: Vec<(String, String)> = s
        .table
        .scan_prefix("T#scan#")
        .await
        .expect("scan")
        .into_iter()
        .map(|item| (item.pk, item.sk))
        .collect();
    found.sort();
    let expected: Vec<(String, String)> = [("T#scan#1", "a"), ("T#scan#1", "b"), ("T#scan#2", "a")]
        .iter()
        .map(|(p, k)| (p.to_string(), k.to_string()))
        .collect();
    assert_eq!(found, expected);
}

pub async fn a_batched_read_finds_every_live_item_and_retries_unprocessed_keys(s: Stores) {
    let now = s.clock.now_seconds();
    let writes = (0..250)
        .map(|n| {
            let item = row(&format!("T#a#get{}", n % 5), n);
            // Every tenth item has expired: a batched read sees it as absent, like a get.
            WriteRequest::Put(if n % 10 == 0 {
                item.expiring_at(now - 1)
            } else {
                item
            })
        })
        .collect();
    batch::write_all(s.table.as_ref(), writes)
        .await
        .expect("write");
    let throttling = RefusingPartOfBatches::new(s.table.clone(), 3);
    // 250 written keys, 50 that were never written, and every key asked for twice.
    let keys: Vec<Key> = (0..300)
        .chain(0..300)
        .map(|n| Key::new(format!("T#a#get{}", n % 5), format!("row#{n:05}")))
        .collect();
    let found = batch::get_many(&throttling, keys).await.expect("get_many");
    assert_eq!(throttling.refusals_left(), 0, "the refusals were used");
    assert_eq!(found.len(), 225, "225 live items of 300 keys");
    for n in 0..300usize {
        let key = Key::new(format!("T#a#get{}", n % 5), format!("row#{n:05}"));
        let expected = (n < 250 && n % 10 != 0).then(|| row(&key.pk, n));
        assert_eq!(found.get(&key), expected.as_ref(), "key {n}");
    }
}

pub async fn a_batched_read_refuses_more_than_100_keys_or_a_key_twice(s: Stores) {
    let too_many: Vec<Key> = (0..101)
        .map(|n| Key::new("T#a#g", format!("{n}")))
        .collect();
    assert!(matches!(
        s.table.get_chunk(too_many).await,
        Err(StorageError::InvalidRequest(_))
    ));
    let twice = vec![Key::new("T#a#g", "1"), Key::new("T#a#g", "1")];
    assert!(matches!(
        s.table.get_chunk(twice).await,
        Err(StorageError::InvalidRequest(_))
    ));
    let (found, unprocessed) = s.table.get_chunk(Vec::new()).await.expect("empty");
    assert!(found.is_empty() && unprocessed.is_empty());
}

/// Writes that arrive together (and on the embedded store share one commit) keep each its
/// own outcome: a failing condition refuses that call alone, and nothing is applied twice.
pub async fn concurrent_writes_each_keep_their_own_outcome(s: Stores) {
    use futures::StreamExt;
    let table = s.table.clone();
    // 64 conditional creations of 8 keys: exactly one per key wins.
    let outcomes: Vec<(usize, Result<(), StorageError>)> = futures::stream::iter(0..64usize)
        .map(|n| {
            let table = table.clone();
            async move {
                let item = Item::new("T#a#race", format!("k{}", n % 8)).with("writer", n as i64);
                (n, table.put(item, Condition::NotExists).await)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let winners: Vec<usize> = outcomes
        .iter()
        .filter(|(_, result)| result.is_ok())
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(winners.len(), 8, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|(_, result)| matches!(
            result,
            Ok(()) | Err(StorageError::ConditionFailed { .. })
        ))
    );
    for key in 0..8 {
        let stored = table
            .get(&Key::new("T#a#race", format!("k{key}")))
            .await
            .expect("get")
            .expect("one winner per key");
        let writer = stored.i64("writer").expect("writer") as usize;
        assert!(winners.contains(&writer) && writer % 8 == key);
    }
    // 100 concurrent increments, and transactions of which every other one fails its check:
    // the counter ends at exactly the number that succeeded.
    let counter = Key::new("T#a#race", "counter");
    let results: Vec<Result<(), StorageError>> = futures::stream::iter(0..100usize)
        .map(|n| {
            let table = table.clone();
            let counter = counter.clone();
            async move {
                let check = if n % 2 == 0 {
                    Condition::Always
                } else {
                    Condition::Exists
                };
                table
                    .transact(vec![
                        TransactAction::Update {
                            key: counter,
                            update: Update::default().add("n", 1),
                            condition: Condition::Always,
                        },
                        TransactAction::Check {
                            key: Key::new("T#a#race", "absent"),
                            condition: check,
                        },
                    ])
                    .await
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    let applied = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(applied, 50, "{results:?}");
    assert!(results.iter().all(|result| matches!(
        result,
        Ok(()) | Err(StorageError::TransactionCanceled { index: 1 })
    )));
    let stored = table.get(&counter).await.expect("get").expect("counter");
    assert_eq!(stored.i64("n"), Some(50));
}

/// Runs every case against one adapter pair, one test per case.
macro_rules! conformance_suite {
    ($adapter:ident: $($case:ident),+ $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::$adapter().await).await;
                }
            )+
        }
    };
}

macro_rules! both_adapters {
    ($($case:ident),+ $(,)?) => {
        conformance_suite!(embedded: $($case),+);
        conformance_suite!(aws: $($case),+);
    };
}

both_adapters!(
    a_conditional_put_refuses_to_overwrite,
    an_update_applies_only_while_its_condition_holds,
    a_query_pages_with_a_cursor_and_refuses_a_forged_one,
    a_batch_of_1000_is_written_in_chunks_of_25_and_reads_back,
    unprocessed_batch_items_are_retried_until_written,
    a_transaction_with_one_failing_condition_writes_nothing,
    expired_items_read_as_absent,
    a_50_mb_blob_streams_in_and_out_in_chunks,
    a_presigned_upload_from_a_plain_http_client_can_be_read_back,
    a_presigned_upload_url_takes_one_body,
    invalid_keys_and_requests_are_refused_alike,
    a_prefix_scan_finds_every_live_item_of_a_tenant_and_nothing_else,
    a_batched_read_finds_every_live_item_and_retries_unprocessed_keys,
    a_batched_read_refuses_more_than_100_keys_or_a_key_twice,
    concurrent_writes_each_keep_their_own_outcome,
);

#[tokio::test]
async fn s3_presigned_urls_carry_their_expiry_and_content_type() {
    let stores = aws_stores(Arc::new(test_clock())).await;
    let upload = stores
        .blobs
        .presign_put("t-a/tmp/x.csv", "text/csv", Duration::from_secs(900))
        .await
        .expect("presign");
    let url = reqwest::Url::parse(&upload.url).expect("a URL");
    let params: std::collections::HashMap<String, String> =
        url.query_pairs().into_owned().collect();
    assert_eq!(params.get("X-Amz-Expires").map(String::as_str), Some("900"));
    assert!(
        params
            .get("X-Amz-SignedHeaders")
            .is_some_and(|h| h.contains("content-type")),
        "{params:?}"
    );
    assert!(params.contains_key("X-Amz-Signature"));
    assert!(
        url.path().ends_with("/t-a/tmp/x.csv"),
        "path-style addressing: {url}"
    );
}

#[tokio::test]
async fn embedded_presigned_urls_refuse_tampering_expiry_and_another_content_type() {
    let s = embedded().await;
    let client = reqwest::Client::new();
    let upload = s
        .blobs
        .presign_put("t-a/tmp/y.csv", "text/csv", Duration::from_secs(60))
        .await
        .expect("presign");
    let tampered = upload.url.replace("t-a%2Ftmp%2Fy.csv", "t-b%2Ftmp%2Fy.csv");
    assert_ne!(tampered, upload.url);
    let refused = client
        .put(&tampered)
        .header("content-type", "text/csv")
        .body("x")
        .send()
        .await
        .expect("PUT");
    assert_eq!(refused.status(), 403);
    let wrong_type = client
        .put(&upload.url)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("PUT");
    assert_eq!(wrong_type.status(), 403);
    s.clock.advance_seconds(61);
    let expired = client
        .put(&upload.url)
        .header("content-type", "text/csv")
        .body("x")
        .send()
        .await
        .expect("PUT");
    assert_eq!(expired.status(), 403);
    assert!(s.blobs.get("t-a/tmp/y.csv").await.expect("get").is_none());
    assert!(s.blobs.get("t-b/tmp/y.csv").await.expect("get").is_none());
}
