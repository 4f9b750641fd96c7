//! The HTML report, drawn from `results.json` and the histories alone, so that
//! `sim report DIR` draws the same page again.
//!
//! One self-contained page: CSS inline, every chart an inline SVG drawn in-process, no
//! script and nothing fetched. One chart per function: `outcomes`, `timeline`,
//! `stock`, `speed`, `sweep`; `page` puts them together.

mod evidence;
mod faults;
pub mod format;
mod outcomes;
mod page;
mod palette;
mod plot;
pub mod side_by_side;
mod speed;
mod stock;
mod sweep;
mod timeline;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::results::Results;

#[cfg(test)]
mod testing;

/// The report's file name in the output folder.
pub const FILE_NAME: &str = "index.html";

/// Writes `index.html` into `out` and returns its path. Every history the run kept must be
/// there: one that is missing or unreadable is an error that names it. Trials whose history
/// the run did not keep (`--keep-histories`) are drawn from results.json alone, and the page
/// says which they are.
pub fn write(out: &Path, results: &Results) -> Result<PathBuf> {
    let evidence = evidence::gather(out, results)?;
    let page = page::render(results, &evidence)?;
    let path = out.join(FILE_NAME);
    // Written aside, then renamed: a browser never opens half a page, and a link planted in
    // the folder is replaced, never written through.
    let written =
        crate::sys::file::replace(&path, page.as_bytes()).with_context(|| format!("writing {}", path.display()));
    written.map(|()| path)
}
