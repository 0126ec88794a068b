//! A data cell's header: fitting the header of an accepted body to its cell, widening the
//! cell's header when the mode allows, under concurrent updates of the same cell.

use super::columns::{Header, fit_header};
use super::store::{self, Cell, Mode};
use crate::domain::{Problem, TenantId};
use crate::retry::{self, Attempt};
use crate::storage::{ItemTable, StorageError};

/// The contention metric's name for a change of a data cell's columns, which an upload and
/// the importer's check retry when another request changed them first.
pub const CELL_HEADER_OPERATION: &str = "aixon-cell-header";

/// Whether a data cell takes a body's header: the cell, with its header widened if the
/// mode allows; or why not.
#[derive(Debug)]
pub enum HeaderFit {
    Fits(Cell),
    NoCell,
    Refused(Vec<Problem>),
}

/// Fits a body's header to its data cell, widening the cell's header when the mode allows.
/// Concurrent updates of one cell may widen it at the same time; the one that loses reads
/// the cell again and fits its header to the winner's.
pub async fn fit_cell_header(
    table: &dyn ItemTable,
    tenant: &TenantId,
    cell_id: &str,
    header: &Header,
    mode: Mode,
) -> Result<HeaderFit, StorageError> {
    retry::optimistic(CELL_HEADER_OPERATION, || async move {
        let Some(cell) = store::get_cell(table, tenant, cell_id).await? else {
            return Ok(Attempt::Done(HeaderFit::NoCell));
        };
        let fitted = match fit_header(&cell.header, header, mode) {
            Ok(fitted) => fitted,
            Err(problems) => return Ok(Attempt::Done(HeaderFit::Refused(problems))),
        };
        if fitted == cell.header {
            return Ok(Attempt::Done(HeaderFit::Fits(cell)));
        }
        if !store::set_header(table, tenant, &cell, &fitted).await? {
            return Ok(Attempt::Contended);
        }
        // The cell as the conditional write left it.
        Ok(Attempt::Done(HeaderFit::Fits(Cell {
            header: fitted,
            rev: cell.rev + 1,
            ..cell
        })))
    })
    .await
}
