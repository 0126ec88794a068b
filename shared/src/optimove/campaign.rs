//! The Optimove functions over the campaign engine — actions, target groups, campaigns,
//! promotions, channels, lifecycle stages, microsegments, value segments, event listeners —
//! which custdata does not have. Reads check their parameters as the vendor documents them
//! and answer the vendor's empty response (valid input, no data: `[]` or `{}`); writes are
//! refused as an unsupported call, since nothing they send could take effect.

use std::collections::HashMap;

use serde_json::{Value, json};

use self::Empty::{List, Object};
use self::Kind::{Boolean, Date, Integer, Integers, Text};
use super::bad_request;
use crate::http::ApiError;

/// What a parameter holds (seed 004, "Data Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number ≥ 0 (ids, RGIDs).
    Integer,
    /// Whole numbers separated by commas (`LifecycleStageID=1,2,3`).
    Integers,
    /// `YYYY-MM-DD`.
    Date,
    /// Any non-empty string.
    Text,
    /// `true`/`false` (any case) or `1`/`0` (contract decision 10).
    Boolean,
}

impl Kind {
    fn accepts(self, raw: &str) -> bool {
        let raw = raw.trim();
        let integer = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        match self {
            Kind::Integer => integer(raw) && raw.parse::<u64>().is_ok(),
            Kind::Integers => raw.split(',').all(|part| integer(part.trim())),
            Kind::Date => chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").is_ok(),
            Kind::Text => !raw.is_empty(),
            Kind::Boolean => matches!(
                raw.to_ascii_lowercase().as_str(),
                "true" | "false" | "1" | "0"
            ),
        }
    }

    fn rule(self) -> &'static str {
        match self {
            Kind::Integer => "a whole number ≥ 0",
            Kind::Integers => "whole numbers separated by commas",
            Kind::Date => "a date, YYYY-MM-DD",
            Kind::Text => "a non-empty string",
            Kind::Boolean => "true or false",
        }
    }
}

/// One parameter of a function.
#[derive(Debug, Clone, Copy)]
pub struct Parameter {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn required(name: &'static str, kind: Kind) -> Parameter {
    Parameter {
        name,
        kind,
        required: true,
    }
}

const fn optional(name: &'static str, kind: Kind) -> Parameter {
    Parameter {
        name,
        kind,
        required: false,
    }
}

/// The vendor's empty response of a function: a list, or an object with the fields the
/// vendor documents for it, each null (no such object). An object without its fields would
/// break clients that read them: the `optimove` Python client reads
/// `response.json()['ActionName']` and raises on `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    List,
    Object(&'static [&'static str]),
}

/// A read function over campaign data.
#[derive(Debug, Clone, Copy)]
pub struct Read {
    pub category: &'static str,
    pub name: &'static str,
    pub parameters: &'static [Parameter],
    pub empty: Empty,
    /// Takes `CustomerAttributes` and its delimiter.
    pub customer_attributes: bool,
    /// `StartDate` must not be after `EndDate`.
    pub period: bool,
}

impl Read {
    /// The vendor's empty answer.
    pub fn empty_answer(&self) -> Value {
        match self.empty {
            Empty::List => json!([]),
            Empty::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|field| (field.to_string(), Value::Null))
                    .collect(),
            ),
        }
    }
}

const fn read(
    category: &'static str,
    name: &'static str,
    parameters: &'static [Parameter],
    empty: Empty,
) -> Read {
    Read {
        category,
        name,
        parameters,
        empty,
        customer_attributes: false,
        period: false,
    }
}

/// A read that takes `CustomerAttributes`.
const fn with_attributes(read: Read) -> Read {
    Read {
        customer_attributes: true,
        ..read
    }
}

/// A read over a `StartDate`–`EndDate` period.
const fn over_period(read: Read) -> Read {
    Read {
        period: true,
        ..read
    }
}

const PERIOD: &[Parameter] = &[required("StartDate", Date), required("EndDate", Date)];
const BY_DATE: &[Parameter] = &[required("Date", Date)];
const BY_CAMPAIGN: &[Parameter] = &[required("CampaignID", Integer)];
/// GetCampaignDetails' fields.
const CAMPAIGN: &[&str] = &[
    "TargetGroupID",
    "CampaignType",
    "Duration",
    "LeadTime",
    "Notes",
    "IsMultiChannel",
    "IsRecurrence",
    "Status",
    "Error",
];
/// GetCustomerLastActionExecuted's fields.
const LAST_ACTION: &[&str] = &["ActionID", "Date", "Duration", "TargetGroupID"];
const BY_TARGET_GROUP: &[Parameter] = &[required("TargetGroupID", Integer), required("Date", Date)];

/// Every read function custdata has no data for, with its documented parameters.
pub const READS: [Read; 40] = [
    read(
        "actions",
        "GetActionName",
        &[required("ActionID", Integer)],
        Object(&["ActionName"]),
    ),
    read(
        "actions",
        "GetActionID",
        &[required("ActionName", Text)],
        Object(&["ActionID"]),
    ),
    read("actions", "GetAllActions", &[], List),
    read("actions", "GetActionsByTargetGroup", BY_TARGET_GROUP, List),
    read("actions", "GetPromoCodes", BY_DATE, List),
    read("actions", "GetPromoCodesByCampaign", BY_CAMPAIGN, List),
    read(
        "actions",
        "GetPromoCodesByTargetGroup",
        BY_TARGET_GROUP,
        List,
    ),
    read(
        "actions",
        "GetActionDetailsByTargetGroup",
        BY_TARGET_GROUP,
        List,
    ),
    read("actions", "GetExecutedCampaignDetails", BY_DATE, List),
    read(
        "actions",
        "GetCampaignDetails",
        BY_CAMPAIGN,
        Object(CAMPAIGN),
    ),
    read("actions", "GetExecutionChannels", &[], List),
    read(
        "actions",
        "GetExecutedCampaignChannelDetails",
        &[
            required("CampaignID", Integer),
            required("ChannelID", Integer),
        ],
        List,
    ),
    read(
        "actions",
        "GetExecutedCampaignsByChannel",
        &[required("ChannelID", Integer), required("Date", Date)],
        List,
    ),
    read(
        "groups",
        "GetTargetGroupName",
        &[required("TargetGroupID", Integer)],
        Object(&["TargetGroupName"]),
    ),
    read(
        "groups",
        "GetTargetGroupID",
        &[required("TargetGroupName", Text)],
        Object(&["TargetGroupID"]),
    ),
    read("groups", "GetTargetGroupsByDate", BY_DATE, List),
    read("groups", "GetTargetGroupDetails", &[], List),
    read("integrations", "GetPromotions", &[], List),
    read(
        "integrations",
        "GetChannelTemplates",
        &[required("ChannelID", Integer)],
        List,
    ),
    read("model", "GetLifecycleStageList", &[], List),
    read("model", "GetMicrosegmentList", &[], List),
    over_period(with_attributes(read(
        "model",
        "GetMicrosegmentChangers",
        PERIOD,
        List,
    ))),
    read(
        "segments",
        "GetValueSegmentName",
        &[required("ValueSegmentID", Integer)],
        Object(&["ValueSegmentName"]),
    ),
    read(
        "segments",
        "GetValueSegmentID",
        &[required("ValueSegmentName", Text)],
        Object(&["ValueSegmentID"]),
    ),
    read("segments", "GetValueSegments", &[], List),
    with_attributes(read(
        "segments",
        "GetCustomersByValueSegment",
        &[required("ValueSegmentID", Integer), required("Date", Date)],
        List,
    )),
    over_period(with_attributes(read(
        "segments",
        "GetValueSegmentChangers",
        PERIOD,
        List,
    ))),
    with_attributes(read(
        "customers",
        "GetCustomersByAction",
        &[
            required("RecipientGroupID", Integer),
            required("ActionID", Integer),
            required("Date", Date),
        ],
        List,
    )),
    with_attributes(read(
        "customers",
        "GetCustomerActionsByTargetGroup",
        &[
            required("TargetGroupID", Integer),
            required("Date", Date),
            optional("IncludeControlGroup", Boolean),
            optional("IncludeRecipientGroupID", Boolean),
            optional("ChannelID", Integer),
        ],
        List,
    )),
    with_attributes(read(
        "customers",
        "GetCustomerOneTimeActionsByDate",
        &[
            required("Date", Date),
            optional("IncludeControlGroup", Boolean),
            optional("ChannelID", Integer),
        ],
        List,
    )),
    with_attributes(read(
        "customers",
        "GetCustomerOneTimeActionsByCampaign",
        &[
            required("CampaignID", Integer),
            optional("IncludeControlGroup", Boolean),
            optional("ChannelID", Integer),
        ],
        List,
    )),
    over_period(with_attributes(read(
        "customers",
        "GetTargetGroupChangers",
        PERIOD,
        List,
    ))),
    // LifecycleStageID, or CustomerAttribute with CustomerAttributeValue: checked in `check`.
    read(
        "customers",
        "GetCustomerFutureValues",
        &[optional("LifecycleStageID", Integers)],
        List,
    ),
    read(
        "customers",
        "GetCustomerLastActionExecuted",
        &[required("CustomerID", Text)],
        Object(LAST_ACTION),
    ),
    read("customers", "GetCustomerActionDetailsByDate", BY_DATE, List),
    read("customers", "GetCustomersActionEndedByDate", BY_DATE, List),
    read(
        "customers",
        "GetCustomerSendDetailsByCampaign",
        &[
            required("CampaignID", Integer),
            optional("IncludeTemplateIDs", Boolean),
        ],
        List,
    ),
    with_attributes(read(
        "customers",
        "GetCustomerSendDetailsByChannel",
        &[
            required("ChannelID", Integer),
            required("CampaignID", Integer),
        ],
        List,
    )),
    read("customers", "GetCurrentlyTargetedCustomers", &[], List),
    read(
        "customers",
        "GetCanceledCampaignCustomers",
        BY_CAMPAIGN,
        List,
    ),
];

/// Write functions of the campaign engine (category, name, method): refused as an
/// unsupported call.
pub const WRITES: [(&str, &str, &str); 10] = [
    ("general", "RegisterEventListener", "POST"),
    ("general", "UnregisterEventListener", "POST"),
    ("integrations", "AddPromotions", "POST"),
    ("integrations", "DeletePromotions", "POST"),
    ("integrations", "AddChannelTemplates", "POST"),
    ("integrations", "DeleteChannelTemplates", "POST"),
    ("integrations", "AddChannelApps", "POST"),
    ("integrations", "DeleteChannelApps", "POST"),
    ("integrations", "UpdateCampaignMetrics", "POST"),
    ("general", "SendTransactionalMail", "POST"),
];

/// The read function of this name (any case).
pub fn find_read(name: &str) -> Option<&'static Read> {
    READS
        .iter()
        .find(|read| read.name.eq_ignore_ascii_case(name))
}

/// The write function of this name (any case): its name and method.
pub fn find_write(name: &str) -> Option<(&'static str, &'static str)> {
    WRITES
        .iter()
        .find(|(_, known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, known, method)| (*known, *method))
}

fn refused(name: &str, rule: impl Into<String>, message: String) -> ApiError {
    bad_request(message).with_problem(None, Some(name), rule)
}

/// Checks a read's parameters (`parameters` keyed by lower-cased name): every required one
/// present, every one given of its kind, a period in order, and GetCustomerFutureValues'
/// either-or.
pub fn check(read: &Read, parameters: &HashMap<String, String>) -> Result<(), ApiError> {
    let given = |name: &str| parameters.get(&name.to_ascii_lowercase());
    for parameter in read.parameters {
        match given(parameter.name) {
            None if parameter.required => {
                return Err(refused(
                    parameter.name,
                    parameter.kind.rule(),
                    format!("{} is required by {}", parameter.name, read.name),
                ));
            }
            Some(raw) if !parameter.kind.accepts(raw) => {
                return Err(refused(
                    parameter.name,
                    parameter.kind.rule(),
                    format!(
                        "{} {raw:?} is not {}",
                        parameter.name,
                        parameter.kind.rule()
                    ),
                ));
            }
            _ => {}
        }
    }
    if read.period {
        let date = |name: &str| {
            given(name)
                .and_then(|raw| chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok())
        };
        if let (Some(start), Some(end)) = (date("StartDate"), date("EndDate"))
            && start > end
        {
            return Err(refused(
                "EndDate",
                "not before StartDate",
                format!("EndDate {end} is before StartDate {start}"),
            ));
        }
    }
    if read.name == "GetCustomerFutureValues" {
        // The attribute's name under the documented singular or the plural nicolasramy sends.
        let attribute = given("CustomerAttribute").or_else(|| given("CustomerAttributes"));
        let value = given("CustomerAttributeValue");
        let by_stage = given("LifecycleStageID").is_some();
        let by_attribute = attribute.is_some() && value.is_some();
        if by_stage == by_attribute || (attribute.is_some() != value.is_some()) {
            return Err(refused(
                "LifecycleStageID",
                "LifecycleStageID, or CustomerAttribute with CustomerAttributeValue",
                "GetCustomerFutureValues takes LifecycleStageID, or CustomerAttribute with CustomerAttributeValue — one of the two".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameters(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect()
    }

    #[test]
    fn every_function_is_listed_once() {
        let mut names: Vec<String> = READS
            .iter()
            .map(|read| read.name.to_ascii_lowercase())
            .chain(WRITES.iter().map(|(_, name, _)| name.to_ascii_lowercase()))
            .collect();
        let all = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all);
    }

    #[test]
    fn parameters_are_checked_as_the_vendor_documents_them() {
        let by_action = find_read("getcustomersbyaction").expect("listed");
        let good = [
            ("RecipientGroupID", "1"),
            ("ActionID", "2"),
            ("Date", "2024-01-01"),
        ];
        assert!(check(by_action, &parameters(&good)).is_ok());
        for (bad, field) in [
            (&good[1..], "RecipientGroupID"),
            (
                &[("RecipientGroupID", "x"), good[1], good[2]][..],
                "RecipientGroupID",
            ),
            (&[good[0], good[1], ("Date", "2024-13-01")][..], "Date"),
        ] {
            let error = check(by_action, &parameters(bad)).expect_err("refused");
            assert_eq!(error.problems[0].field.as_deref(), Some(field));
        }
        let changers = find_read("GetTargetGroupChangers").expect("listed");
        assert!(
            check(
                changers,
                &parameters(&[("StartDate", "2024-01-02"), ("EndDate", "2024-01-01")])
            )
            .is_err()
        );
        let future = find_read("GetCustomerFutureValues").expect("listed");
        assert!(check(future, &parameters(&[("LifecycleStageID", "1,2,3")])).is_ok());
        assert!(
            check(
                future,
                &parameters(&[
                    ("CustomerAttribute", "Country"),
                    ("CustomerAttributeValue", "UK")
                ])
            )
            .is_ok()
        );
        assert!(check(future, &parameters(&[])).is_err());
        assert!(check(future, &parameters(&[("CustomerAttribute", "Country")])).is_err());
    }
}
