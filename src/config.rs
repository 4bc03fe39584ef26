//! Reading the JSON configs that sit beside the weights (config.json, model_index.json, …).

use crate::error::{Error, Result};
use std::path::Path;

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config { path: path.display().to_string(), msg: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| Error::Config { path: path.display().to_string(), msg: e.to_string() })
}
