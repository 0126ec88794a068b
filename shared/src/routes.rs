//! The endpoint families: which handler each function binary (and the local server, for
//! the same route) runs. template.yaml names the binary per route; this maps it to code.

use crate::http::Family;

/// Every family custdata has; a test checks it against template.yaml and functions/.
pub static FAMILIES: &[&Family] = &[&crate::mxo::token::FAMILY];

/// The family a binary runs.
pub fn family(binary: &str) -> Option<&'static Family> {
    FAMILIES
        .iter()
        .copied()
        .find(|family| family.name == binary)
}
