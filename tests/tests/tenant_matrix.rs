//! The tenant matrix: every route of template.yaml — read from it, so a new route is covered
//! without touching this file — tried against tenant A's objects with tenant B's credentials,
//! with A's credentials of every other vendor, with none, with malformed ones, with A's own
//! expired tokens, and (on the token exchanges) with A's public id and B's secret.
//!
//! The rule for each attempt: never a 5xx, never one of A's stored values in the answer, and
//! A's items and blobs byte-identical afterwards. Where the path names one of A's objects,
//! or the credential is not the route vendor's own kind of tenant B, the attempt is refused
//! with a 4xx. Only B's own credential on a path naming nothing of A's (a collection, a
//! token exchange, an Optimove function) may succeed — on B's data. A's own credential then
//! replays every call, to show each one was well formed enough to reach A's objects.
//! Runs on the embedded store and on DynamoDB/S3 in the emulator.

use custdata::storage::Item;
use custdata::storage::keys::AIXON_BLOB_PREFIX;
use custdata::template::Template;
use custdata_tests::routes::{
    Credential, MALFORMED, MARK, Tenant, Vendor, calls_for, erases_a_customer, furnish, send,
    takes_every_vendor, today, vendor_of,
};
use custdata_tests::{TestApp, create_tenant, on_both_adapters};
use reqwest::Method;

/// Everything of A's the store holds: its partitions, its credential index entries, its blobs.
async fn dump(app: &TestApp, tenant: &str) -> (Vec<Item>, Vec<String>) {
    let table = app.server.app.table.as_ref();
    let own = format!("T#{tenant}");
    let mut items: Vec<Item> = table
        .scan_prefix(&own)
        .await
        .expect("scan")
        .into_iter()
        .filter(|item| item.pk == own || item.pk.starts_with(&format!("{own}#")))
        .collect();
    items.extend(
        table
            .scan_prefix("CRED#")
            .await
            .expect("scan")
            .into_iter()
            .filter(|item| item.str("tenant") == Some(tenant)),
    );
    items.sort_by(|x, y| (&x.pk, &x.sk).cmp(&(&y.pk, &y.sk)));
    let blobs = app
        .server
        .app
        .blobs
        .list(&format!("{AIXON_BLOB_PREFIX}{tenant}/"))
        .await
        .expect("list")
        .into_iter()
        .map(|blob| format!("{blob:?}"))
        .collect();
    (items, blobs)
}

/// What the matrix found, per route.
#[derive(Default)]
struct Tally {
    routes: usize,
    calls: usize,
    attempts: usize,
    refused: usize,
}

async fn every_route_refuses_what_is_not_the_tenants_own(app: TestApp) {
    let template = Template::bundled().expect("template.yaml parses");
    let a_bundle = app.server.credentials.clone();
    // A's tokens, issued and then left to expire.
    let stale = Tenant::sign_in(&app, a_bundle.clone()).await;
    app.clock.advance_seconds(13 * 3600);
    let a = Tenant::sign_in(&app, a_bundle).await;
    let objects = furnish(&app, &a).await;
    let b_bundle = create_tenant(&app, "Tenant B").await;
    assert!(!b_bundle.tenant.starts_with(a.tenant()));
    let today = today(&app);
    let before = dump(&app, a.tenant()).await;

    let mut tally = Tally::default();
    let mut replays = Vec::new();
    for route in &template.routes {
        tally.routes += 1;
        let vendor = vendor_of(&route.family);
        for call in calls_for(route, &objects, &today) {
            tally.calls += 1;
            // B signs in again per call, so its tokens are fresh whatever the clock did.
            app.clock.advance_millis(1_000);
            let b = Tenant::sign_in(&app, b_bundle.clone()).await;
            let mut attempts: Vec<(String, Credential, bool)> = Vec::new();
            for credential in b.credentials() {
                let b_own_kind = credential.vendor() == Some(vendor);
                attempts.push((
                    format!("B's {credential:?}"),
                    credential,
                    b_own_kind && !call.names_a,
                ));
            }
            for credential in a.credentials() {
                if credential.vendor() != Some(vendor) && !takes_every_vendor(route) {
                    attempts.push((format!("A's {credential:?}"), credential, false));
                }
            }
            attempts.push(("no credential".into(), Credential::Nothing, false));
            for (name, value) in MALFORMED {
                attempts.push((
                    format!("malformed {name}: {value}"),
                    Credential::Header(name, value),
                    false,
                ));
            }
            for credential in stale.credentials() {
                if credential.vendor() == Some(vendor)
                    && matches!(
                        credential,
                        Credential::MxoToken(_)
                            | Credential::MonetateToken(_)
                            | Credential::OptimoveToken(_)
                    )
                {
                    attempts.push((format!("A's expired {credential:?}"), credential, false));
                }
            }
            // A's public id with B's secret.
            attempts.push((
                "A's MXO client id, B's secret".into(),
                Credential::MxoClient {
                    id: a.bundle.mxo.client_id.clone(),
                    secret: b.bundle.mxo.client_secret.clone(),
                },
                false,
            ));
            attempts.push((
                "A's Monetate user, B's key".into(),
                Credential::MonetateAssertion {
                    username: a.bundle.monetate.api_username.clone(),
                    private_key_pem: b.bundle.monetate.private_key_pem.clone(),
                },
                false,
            ));
            attempts.push((
                "A's Optimove user, B's password".into(),
                Credential::OptimoveLogin {
                    username: a.bundle.optimove.username.clone(),
                    password: b.bundle.optimove.password.clone(),
                },
                false,
            ));
            // The health route answers anyone, and names nothing of A's (checked below).
            let public = vendor == Vendor::Public;
            for (label, credential, may_succeed) in attempts {
                let may_succeed = may_succeed || public;
                // Limits counted per second (logins, spot checks) never decide an attempt.
                app.clock.advance_millis(1_000);
                let (status, body) = send(&app, &call, &credential).await;
                let what = format!(
                    "{} {} ({}) with {label}",
                    call.method, call.path, route.path
                );
                tally.attempts += 1;
                assert!(status < 500, "{what}: {status} {body}");
                assert!(!body.contains(MARK), "{what} shows A's data: {body}");

                if may_succeed {
                    continue;
                }
                assert!(
                    (400..500).contains(&status),
                    "{what} was not refused: {status} {body}"
                );
                tally.refused += 1;
            }
            replays.push((vendor, call));
        }
    }
    let after = dump(&app, a.tenant()).await;
    // Items that expired while the clock moved (login throttles, rate windows) are gone from
    // the scan by then; compare what is live now.
    let now_seconds = custdata::clock::Clock::now_seconds(&app.clock);
    let before = (
        before
            .0
            .into_iter()
            .filter(|item| !item.is_expired(now_seconds))
            .collect::<Vec<_>>(),
        before.1,
    );
    assert_eq!(after.1, before.1, "A's blobs are unchanged");
    let changed: Vec<String> = after
        .0
        .iter()
        .filter(|item| !before.0.contains(item))
        .chain(before.0.iter().filter(|item| !after.0.contains(item)))
        .map(|item| format!("{} / {}", item.pk, item.sk))
        .collect();
    assert!(changed.is_empty(), "A's items changed: {changed:?}");
    assert_eq!(
        tally.routes,
        template.routes.len(),
        "every route of template.yaml was tried"
    );
    println!(
        "tenant matrix ({:?}): {} routes, {} calls, {} attempts, {} refused, A unchanged",
        app.adapter, tally.routes, tally.calls, tally.attempts, tally.refused
    );

    // The same calls with A's own credential reach A's objects: the refusals above were not
    // an artefact of malformed calls. Deletions last, so the other calls find their objects.
    app.clock.advance_seconds(60);
    let a = Tenant::sign_in(&app, a.bundle.clone()).await;
    // Going live retires the reference `clear` names, so it comes after; deletions last,
    // deeper paths first: a record before its datastore; the deactivation of the Monetate
    // key after them all (Monetate's erasure needs the key's token).
    replays.sort_by_key(|(_, call)| {
        let deletion = call.method == Method::DELETE;
        let rank = if call.path.ends_with("/deactivate") {
            3
        } else if deletion {
            2
        } else {
            usize::from(call.path.contains("/golive/"))
        };
        (
            rank,
            std::cmp::Reverse(if deletion { call.path.len() } else { 0 }),
        )
    });
    let mut erased = false;
    for (vendor, call) in &replays {
        app.clock.advance_millis(1_000);
        let (status, body) = send(&app, call, &a.own(*vendor, call.exchange)).await;
        // Every erasure route names the same customer: after the first, it is gone.
        if erases_a_customer(call) && std::mem::replace(&mut erased, true) {
            assert_eq!(status, 404, "a second erasure: {} {body}", call.path);
            continue;
        }
        assert!(
            (200..300).contains(&status),
            "A's own credential on {} {}: {status} {body}",
            call.method,
            call.path
        );
    }
}

on_both_adapters!(every_route_refuses_what_is_not_the_tenants_own);
