//! The public `optimove` Python client (PyPI 2.0.0, in `target/venv`) against custdata: it
//! logs in twice in a row and calls every one of its read methods without an exception
//! (`tests/python/optimove_client.py`), on the embedded store and on DynamoDB in the
//! emulator. The server runs on the tests' manual clock, so the script takes its dates from
//! the server (GetLastDataUpdate), never from the machine's clock.

use custdata_tests::{TestApp, create_tenant, on_both_adapters, workspace_root};
use serde_json::{Value, json};

/// The attribute and the customers the case seeds.
const ATTRIBUTE: &str = "LoyaltyTier";
const CUSTOMERS: [(&str, &str); 2] = [("pyclient-1001", "Gold"), ("pyclient-1002", "Silver")];

async fn call(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> Value {
    let response = app
        .client
        .request(method, app.url(path))
        .header("X-API-KEY", key)
        .json(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("a JSON answer")
}

async fn the_python_client_logs_in_twice_and_calls_every_read_method(app: TestApp) {
    let bundle = create_tenant(&app, "pyclient").await;
    let optimove = &bundle.optimove;
    // Seeding through the routes: a typed attribute and two customers holding it, written
    // now on the server's clock (so they are changers of today).
    let added = call(
        &app,
        &optimove.api_key,
        reqwest::Method::POST,
        "/current/customers/AddCustomerAttribute",
        &json!({"Name": ATTRIBUTE, "Type": "VARCHAR(20)", "DefaultValue": "Bronze"}),
    )
    .await;
    assert_eq!(added["isSuccess"], true, "{added}");
    for (customer, tier) in CUSTOMERS {
        let written = call(
            &app,
            &optimove.api_key,
            reqwest::Method::PUT,
            "/current/customers/UpsertCustomer",
            &json!({"CustomerId": customer, "Attributes": [{"RealFieldName": ATTRIBUTE, "Value": tier}]}),
        )
        .await;
        assert_eq!(written["isSuccess"], true, "{written}");
    }

    let root = workspace_root();
    let output = tokio::process::Command::new(root.join("target/venv/bin/python"))
        .arg(root.join("tests/python/optimove_client.py"))
        .arg(&app.server.base_url)
        .arg(&optimove.username)
        .arg(&optimove.password)
        .arg(ATTRIBUTE)
        .arg(CUSTOMERS[0].0)
        .output()
        .await
        .expect("the project's Python runs (target/venv)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the client failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for expected in [
        "OK general.login #1: a token of",
        "OK general.login #2: a token of",
        "login #2 answered the same token as #1: True",
        // The server's yesterday (the manual clock's), not the machine's.
        "OK general.get_last_data_update: a string of 10 characters",
        "LoyaltyTier listed: True",
        "attribute changers of LoyaltyTier: 2 customers, 2 with a final value, 2 with a current value",
        "OK actions.get_action_name: null (no such object)",
        "OK actions.get_campaign_details: 10 keys",
        "OK customers.get_customer_last_action_executed: 5 keys",
        "OK customers.get_customers_by_action: 0 entries",
        "OK model.get_lifecycle_stage_list: 0 keys",
        "calls after login: 43",
        "all read methods answered",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // Counts only: no customer's id and no secret in what it prints.
    for secret in [
        optimove.password.as_str(),
        CUSTOMERS[0].0,
        CUSTOMERS[1].0,
        "Gold",
        "Silver",
    ] {
        assert!(!stdout.contains(secret), "the script printed {secret:?}");
    }
}

on_both_adapters!(the_python_client_logs_in_twice_and_calls_every_read_method);
