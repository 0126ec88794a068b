//! The endpoint families and scheduled tasks: which code each Lambda function (and the
//! local server, for the same route) runs. template.yaml names the family per function
//! (`CUSTDATA_FAMILY`); this maps the name to code.

use crate::aixon;
use crate::http::{Family, ScheduledTask};
use crate::mxo::{customer, datastores};

/// Every HTTP family custdata has; a test checks it against template.yaml.
pub static FAMILIES: &[&Family] = &[
    &crate::mxo::token::FAMILY,
    &datastores::CREATE_FAMILY,
    &datastores::STAGE_FAMILY,
    &datastores::GOLIVE_FAMILY,
    &customer::ACTIVITY_FAMILY,
    &customer::STRUCTURE_FAMILY,
    &customer::DELETE_FAMILY,
    &aixon::UPLOAD_FAMILY,
    &crate::monetate::AUTH_FAMILY,
    &crate::monetate::DATA_FAMILY,
    &crate::optimove::LOGIN_FAMILY,
    &crate::optimove::FUNCTIONS_FAMILY,
    &crate::health::FAMILY,
];

/// Every scheduled task; a test checks it against template.yaml's Schedule events.
pub static SCHEDULED: &[&ScheduledTask] = &[&datastores::SWEEP_TASK, &aixon::IMPORT_TASK];

/// The HTTP family of this name (a function's `CUSTDATA_FAMILY`).
pub fn family(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().copied().find(|family| family.name == name)
}

/// The scheduled task of this name (a function's `CUSTDATA_FAMILY`).
pub fn scheduled(name: &str) -> Option<&'static ScheduledTask> {
    SCHEDULED.iter().copied().find(|task| task.name == name)
}
