//! The HTML report, drawn from `results.json` and the histories alone.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::results::Results;

pub const FILE_NAME: &str = "index.html";

/// Writes `index.html` into `out` and returns its path.
pub fn write(out: &Path, results: &Results) -> Result<PathBuf> {
    let path = out.join(FILE_NAME);
    let page = maud::html! {
        (maud::DOCTYPE)
        html { head { meta charset="utf-8"; title { "sim: " (results.scenario.name) } } body { h1 { (results.scenario.name) } p { (results.scenario.description) } } }
    };
    std::fs::write(&path, page.into_string()).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
