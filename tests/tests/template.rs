//! template.yaml and the handler registry agree: every function is built from the one Lambda
//! binary and names a family or scheduled task that exists, every route's family is an HTTP
//! family, and every family and task has a function.

use std::collections::BTreeSet;

use custdata::routes::{FAMILIES, SCHEDULED};
use custdata::template::Template;
use custdata_tests::workspace_root;

/// The binary `lambda/Cargo.toml` builds, which every function's artefact is.
const LAMBDA_BINARY: &str = "custdata-lambda";

#[test]
fn every_function_runs_the_lambda_binary() {
    let template = Template::bundled().expect("template.yaml parses");
    assert!(!template.functions.is_empty());
    for function in &template.functions {
        assert_eq!(
            function.binary, LAMBDA_BINARY,
            "{} builds another binary",
            function.logical_id
        );
    }
    let manifest = std::fs::read_to_string(workspace_root().join("lambda/Cargo.toml"))
        .expect("lambda/Cargo.toml");
    assert!(
        manifest.contains(&format!("name = \"{LAMBDA_BINARY}\"")),
        "lambda/Cargo.toml must build a binary named {LAMBDA_BINARY}"
    );
}

#[test]
fn every_function_serves_a_family_and_every_family_has_a_function() {
    let template = Template::bundled().expect("template.yaml parses");
    let families = |scheduled: bool| -> BTreeSet<String> {
        template
            .functions
            .iter()
            .filter(|f| f.scheduled == scheduled)
            .map(|f| f.family.clone())
            .collect()
    };
    let routed: BTreeSet<String> = template
        .routes
        .iter()
        .map(|route| route.family.clone())
        .collect();
    assert_eq!(
        routed,
        families(false),
        "every function without a schedule has a route, and only those"
    );
    let registered: BTreeSet<String> = FAMILIES
        .iter()
        .map(|family| family.name.to_string())
        .collect();
    assert_eq!(
        routed, registered,
        "routed families vs HTTP families in shared/src/routes.rs"
    );
    let tasks: BTreeSet<String> = SCHEDULED.iter().map(|task| task.name.to_string()).collect();
    assert_eq!(
        families(true),
        tasks,
        "scheduled functions vs tasks in shared/src/routes.rs"
    );
    assert_eq!(
        template.functions.len(),
        registered.len() + tasks.len(),
        "one function per family and per task"
    );
}

/// Each family's `routes`, which its handler dispatches on, are the route keys of its
/// function's HttpApi events: API Gateway invokes the function for exactly those.
#[test]
fn every_family_dispatches_on_exactly_the_route_keys_of_its_function() {
    let template = Template::bundled().expect("template.yaml parses");
    for function in template.functions.iter().filter(|f| !f.scheduled) {
        let family = custdata::routes::family(&function.family)
            .unwrap_or_else(|| panic!("{} names no family", function.logical_id));
        let declared: BTreeSet<String> = template
            .routes
            .iter()
            .filter(|route| route.function == function.logical_id)
            .map(|route| route.key())
            .collect();
        let served: BTreeSet<String> = family.routes.iter().map(|key| key.to_string()).collect();
        assert_eq!(
            served.len(),
            family.routes.len(),
            "{} lists a route key twice",
            family.name
        );
        assert_eq!(
            served, declared,
            "the routes of family {} vs the HttpApi events of {} in template.yaml",
            family.name, function.logical_id
        );
    }
}

#[test]
fn a_route_to_a_missing_family_is_caught() {
    let yaml =
        std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template.yaml");
    let broken = yaml.replace(
        "CUSTDATA_FAMILY: mxo-token",
        "CUSTDATA_FAMILY: no-such-family",
    );
    let template = Template::parse(&broken).expect("still parses");
    let routed: BTreeSet<String> = template
        .routes
        .iter()
        .map(|route| route.family.clone())
        .collect();
    assert!(
        routed.contains("no-such-family") && custdata::routes::family("no-such-family").is_none(),
        "the consistency check above would fail on this template"
    );
    assert!(
        custdata_local::Router::from_template(&template).is_err(),
        "the local server refuses a route without a handler"
    );
}

/// The value of a `!Ref Name` (serde_yaml_ng reads the tag as a tagged value).
fn reference(value: Option<&serde_yaml_ng::Value>) -> Option<String> {
    match value? {
        serde_yaml_ng::Value::Tagged(tagged) if tagged.tag == "Ref" => {
            tagged.value.as_str().map(str::to_string)
        }
        _ => None,
    }
}

#[test]
fn every_function_logs_json_into_a_log_group_of_its_own_that_expires() {
    let yaml = std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template");
    let document: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect("YAML");
    assert_eq!(
        document["Parameters"]["LogRetentionDays"]["Default"].as_u64(),
        Some(30)
    );
    let resources = document["Resources"].as_mapping().expect("resources");
    let functions: Vec<(&str, &serde_yaml_ng::Value)> = resources
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
        .map(|(id, resource)| (id.as_str().expect("an id"), resource))
        .collect();
    assert_eq!(
        functions.len(),
        Template::bundled().expect("parses").functions.len()
    );
    let mut groups = BTreeSet::new();
    for (id, function) in functions {
        let logging = &function["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"], "JSON", "{id}");
        let group = reference(logging.get("LogGroup")).unwrap_or_else(|| panic!("{id}: LogGroup"));
        assert_eq!(
            resources[group.as_str()]["Type"],
            "AWS::Logs::LogGroup",
            "{id} logs into {group}"
        );
        assert_eq!(
            reference(resources[group.as_str()]["Properties"].get("RetentionInDays")).as_deref(),
            Some("LogRetentionDays"),
            "{group}"
        );
        assert!(groups.insert(group.clone()), "{group} is shared");
    }
}

#[test]
fn functions_get_the_keys_secrets_by_arn_and_may_read_exactly_those() {
    let yaml = std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template");
    let document: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect("YAML");
    let resources = document["Resources"].as_mapping().expect("resources");
    let variables = document["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .expect("variables");
    let mut secrets = BTreeSet::new();
    for (name, value) in variables {
        let name = name.as_str().expect("a name");
        assert!(
            !name.contains("SIGNING_SECRET"),
            "{name}: a key's value in the environment"
        );
        if name.ends_with("_SECRET_ARN") {
            let secret = reference(Some(value)).unwrap_or_else(|| panic!("{name} is a !Ref"));
            assert_eq!(
                resources[secret.as_str()]["Type"],
                "AWS::SecretsManager::Secret",
                "{name}"
            );
            secrets.insert(secret);
        }
    }
    assert_eq!(
        secrets,
        BTreeSet::from(["HashKeySecret".to_string(), "SigningKeysSecret".to_string()])
    );
    assert_eq!(
        resources["HashKeySecret"]["DeletionPolicy"], "Retain",
        "the hash key outlives the stack, as the table does"
    );
    let statements = resources["ReadKeysPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("statements");
    let granted: BTreeSet<String> = statements
        .iter()
        .flat_map(|statement| {
            assert_eq!(statement["Action"], "secretsmanager:GetSecretValue");
            statement["Resource"]
                .as_sequence()
                .expect("resources")
                .iter()
                .map(|resource| reference(Some(resource)).expect("a !Ref"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(granted, secrets);
    for (id, function) in resources
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
    {
        let policies = function["Properties"]["Policies"]
            .as_sequence()
            .expect("policies");
        assert!(
            policies
                .iter()
                .any(|policy| reference(Some(policy)).as_deref() == Some("ReadKeysPolicy")),
            "{id:?} cannot read the keys"
        );
    }
}

fn template_document() -> serde_yaml_ng::Value {
    let yaml = std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template");
    serde_yaml_ng::from_str(&yaml).expect("YAML")
}

#[test]
fn every_function_has_an_errors_and_a_throttles_alarm_when_a_topic_is_given() {
    let document = template_document();
    let resources = document["Resources"].as_mapping().expect("resources");
    for (id, _) in resources
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
    {
        let id = id.as_str().expect("an id");
        let name = id.strip_suffix("Function").expect("<Name>Function");
        for metric in ["Errors", "Throttles"] {
            let alarm = &resources[format!("{name}{metric}Alarm").as_str()];
            assert_eq!(alarm["Type"], "AWS::CloudWatch::Alarm", "{id}: {metric}");
            assert_eq!(alarm["Condition"], "HasAlarmTopic", "{id}: {metric}");
            let properties = &alarm["Properties"];
            assert_eq!(properties["MetricName"], metric, "{id}");
            assert_eq!(
                reference(properties["Dimensions"][0].get("Value")).as_deref(),
                Some(id),
                "{name}{metric}Alarm watches {id}"
            );
            assert_eq!(
                reference(Some(&properties["AlarmActions"][0])).as_deref(),
                Some("AlarmTopicArn")
            );
        }
    }
}

#[test]
fn every_skipped_checkov_check_says_why() {
    let document = template_document();
    let resources = document["Resources"].as_mapping().expect("resources");
    let mut skipped = 0;
    for (id, resource) in resources {
        let Some(skips) = resource
            .get("Metadata")
            .and_then(|metadata| metadata.get("checkov"))
            .map(|checkov| {
                checkov["skip"]
                    .as_sequence()
                    .expect("checkov.skip is a list")
            })
        else {
            continue;
        };
        for skip in skips {
            let check = skip["id"].as_str().unwrap_or_default();
            assert!(check.starts_with("CKV_"), "{id:?}: {skip:?}");
            let comment = skip["comment"].as_str().unwrap_or_default();
            assert!(comment.len() > 20, "{id:?} skips {check} without a reason");
            skipped += 1;
        }
    }
    assert!(skipped > 0);
}

#[test]
fn no_function_may_scan_the_table_or_touch_the_bucket_beyond_aixon_bodies() {
    let document = template_document();
    let resources = document["Resources"].as_mapping().expect("resources");
    for (id, function) in resources
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
    {
        for policy in function["Properties"]["Policies"]
            .as_sequence()
            .expect("policies")
        {
            let name = reference(Some(policy))
                .unwrap_or_else(|| panic!("{id:?}: {policy:?} is not one of the stack's policies"));
            assert_eq!(
                resources[name.as_str()]["Type"],
                "AWS::IAM::ManagedPolicy",
                "{id:?}: {name}"
            );
        }
    }
    let actions = |policy: &str| -> Vec<String> {
        resources[policy]["Properties"]["PolicyDocument"]["Statement"]
            .as_sequence()
            .expect("statements")
            .iter()
            .flat_map(|statement| match &statement["Action"] {
                serde_yaml_ng::Value::Sequence(list) => list
                    .iter()
                    .map(|a| a.as_str().expect("an action").to_string())
                    .collect(),
                single => vec![single.as_str().expect("an action").to_string()],
            })
            .collect()
    };
    let table = actions("TableAccessPolicy");
    assert!(table.iter().all(|action| action.starts_with("dynamodb:")));
    for forbidden in ["dynamodb:Scan", "dynamodb:*", "dynamodb:DeleteTable"] {
        assert!(!table.iter().any(|a| a == forbidden), "{forbidden}");
    }
    assert_eq!(actions("HealthProbePolicy"), ["dynamodb:GetItem"]);
    let uploads = actions("AixonUploadsPolicy");
    assert!(
        uploads.iter().all(|action| action.starts_with("s3:")
            && !action.contains('*')
            && !action.contains("Lifecycle")
            && !action.contains("Policy")),
        "{uploads:?}"
    );
}

#[test]
fn the_deployer_policy_covers_every_service_the_template_uses() {
    let text = std::fs::read_to_string(workspace_root().join("deploy/deployer-policy.json"))
        .expect("deploy/deployer-policy.json");
    let policy: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let actions: BTreeSet<String> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|statement| match &statement["Action"] {
            serde_json::Value::Array(list) => list
                .iter()
                .map(|a| a.as_str().expect("an action").to_string())
                .collect(),
            single => vec![single.as_str().expect("an action").to_string()],
        })
        .collect();
    let document = template_document();
    let resources = document["Resources"].as_mapping().expect("resources");
    for (id, resource) in resources {
        let kind = resource["Type"].as_str().expect("a type");
        let needed: &[&str] = match kind {
            "AWS::Serverless::Function" => {
                &["lambda:CreateFunction", "iam:CreateRole", "iam:PassRole"]
            }
            "AWS::Serverless::HttpApi" => &["apigateway:POST", "logs:CreateLogDelivery"],
            "AWS::ApiGatewayV2::DomainName" | "AWS::ApiGatewayV2::ApiMapping" => {
                &["apigateway:POST"]
            }
            "AWS::IAM::ManagedPolicy" => &["iam:CreatePolicy"],
            "AWS::SecretsManager::Secret" => &["secretsmanager:CreateSecret"],
            "AWS::Logs::LogGroup" => &["logs:CreateLogGroup", "logs:PutRetentionPolicy"],
            "AWS::DynamoDB::Table" => &["dynamodb:CreateTable", "dynamodb:UpdateContinuousBackups"],
            "AWS::S3::Bucket" => &["s3:CreateBucket", "s3:PutBucketNotification"],
            "AWS::S3::BucketPolicy" => &["s3:PutBucketPolicy"],
            "AWS::SQS::Queue" | "AWS::SQS::QueuePolicy" => {
                &["sqs:CreateQueue", "sqs:SetQueueAttributes"]
            }
            "AWS::CloudWatch::Alarm" => &["cloudwatch:PutMetricAlarm"],
            other => panic!(
                "{id:?} is a {other}: add what deploying it needs to deploy/deployer-policy.json and here"
            ),
        };
        for action in needed {
            assert!(actions.contains(*action), "{id:?} ({kind}) needs {action}");
        }
    }
    assert!(
        !actions.iter().any(|a| a == "*" || a.ends_with(":*")),
        "no service-wide grants"
    );
}
