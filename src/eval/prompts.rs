//! Prompt files for `t2v compare`: plain text (one prompt per line; blank lines and `#`
//! comments skipped), YAML (a list of prompts, each a string or a map with per-prompt
//! overrides), or CSV (a header row with a `prompt` column and optional override columns).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One prompt and what it changes from the run's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    /// A stable name for reports (default: `p` + its 1-based position, `p007`).
    #[serde(default)]
    pub id: Option<String>,
    pub prompt: String,
    /// What the prompt exercises (subject, motion, scene, style, …): reported, not used.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub negative_prompt: Option<String>,
    #[serde(default)]
    pub num_frames: Option<usize>,
    #[serde(default)]
    pub num_inference_steps: Option<usize>,
    #[serde(default)]
    pub guidance_scale: Option<f32>,
    #[serde(default)]
    pub height: Option<usize>,
    #[serde(default)]
    pub width: Option<usize>,
    /// Seeds for this prompt instead of the run's.
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum YamlItem {
    Text(String),
    Spec(PromptSpec),
}

/// The prompts of `path`, ids filled in; duplicate ids and empty prompts are errors.
pub fn read(path: &Path) -> Result<Vec<PromptSpec>> {
    let text = std::fs::read_to_string(path).map_err(|e| bad(path, e.to_string()))?;
    parse(path, &text)
}

/// [`read`] of `text`, its format from `path`'s extension (`path` also names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Vec<PromptSpec>> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let mut specs = match ext.as_str() {
        "yaml" | "yml" => parse_yaml(path, text)?,
        "csv" => parse_csv(path, text)?,
        _ => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| PromptSpec { prompt: l.to_string(), ..Default::default() })
            .collect(),
    };
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in specs.iter_mut().enumerate() {
        if s.prompt.trim().is_empty() {
            return Err(bad(path, format!("prompt {} is empty", i + 1)));
        }
        let id = s.id.clone().unwrap_or_else(|| format!("p{:03}", i + 1));
        if !seen.insert(id.clone()) {
            return Err(bad(path, format!("prompt id '{id}' appears twice")));
        }
        s.id = Some(id);
    }
    if specs.is_empty() {
        return Err(bad(path, "holds no prompts"));
    }
    Ok(specs)
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Config { path: path.display().to_string(), msg: msg.to_string() }
}

fn parse_yaml(path: &Path, text: &str) -> Result<Vec<PromptSpec>> {
    let items: Vec<YamlItem> = serde_yaml::from_str(text).map_err(|e| {
        bad(path, format!("{e}\n  (a list of prompts: strings, or maps with prompt, id, category, negative_prompt, num_frames, num_inference_steps, guidance_scale, height, width, seeds)"))
    })?;
    Ok(items.into_iter().map(|i| match i {
        YamlItem::Text(t) => PromptSpec { prompt: t, ..Default::default() },
        YamlItem::Spec(s) => s,
    }).collect())
}

/// RFC 4180 fields: commas, double-quoted fields with `""` escapes and newlines inside quotes.
fn csv_rows(text: &str) -> std::result::Result<Vec<Vec<String>>, String> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows.retain(|r| !(r.len() == 1 && r[0].trim().is_empty()));
    Ok(rows)
}

fn parse_csv(path: &Path, text: &str) -> Result<Vec<PromptSpec>> {
    let rows = csv_rows(text).map_err(|e| bad(path, e))?;
    let Some((header, body)) = rows.split_first() else { return Ok(Vec::new()) };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    if !header.iter().any(|h| h == "prompt") {
        return Err(bad(path, "the header row has no 'prompt' column"));
    }
    let mut out = Vec::new();
    for (n, row) in body.iter().enumerate() {
        let line = n + 2;
        if row.len() != header.len() {
            return Err(bad(path, format!("row {line} has {} fields, the header {}", row.len(), header.len())));
        }
        let mut s = PromptSpec::default();
        for (key, value) in header.iter().zip(row) {
            let v = value.trim();
            if v.is_empty() && key != "prompt" {
                continue;
            }
            let num = |what: &str| bad(path, format!("row {line}: {key} '{v}' is not {what}"));
            match key.as_str() {
                "prompt" => s.prompt = value.clone(),
                "id" => s.id = Some(v.to_string()),
                "category" => s.category = Some(v.to_string()),
                "negative_prompt" => s.negative_prompt = Some(value.clone()),
                "num_frames" => s.num_frames = Some(v.parse().map_err(|_| num("a whole number"))?),
                "num_inference_steps" => s.num_inference_steps = Some(v.parse().map_err(|_| num("a whole number"))?),
                "guidance_scale" => s.guidance_scale = Some(v.parse().map_err(|_| num("a number"))?),
                "height" => s.height = Some(v.parse().map_err(|_| num("a whole number"))?),
                "width" => s.width = Some(v.parse().map_err(|_| num("a whole number"))?),
                "seeds" => {
                    s.seeds = Some(v.split([' ', ';']).filter(|x| !x.is_empty()).map(str::parse).collect::<std::result::Result<_, _>>().map_err(|_| num("seeds separated by spaces or ';'"))?)
                }
                other => {
                    return Err(bad(path, format!(
                        "unknown column '{other}' (columns: prompt, id, category, negative_prompt, num_frames, num_inference_steps, guidance_scale, height, width, seeds)"
                    )))
                }
            }
        }
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_suite_parses() {
        let s = parse(Path::new("configs/prompt-suite.yaml"), include_str!("../../configs/prompt-suite.yaml")).unwrap();
        assert_eq!(s.len(), 40);
        for c in ["subject", "motion", "scene", "style"] {
            assert_eq!(s.iter().filter(|p| p.category.as_deref() == Some(c)).count(), 10, "{c}");
        }
    }

    #[test]
    fn yaml_strings_and_overrides() {
        let s = parse(Path::new("x.yaml"), "- a cat\n- {prompt: a dog, num_frames: 4, seeds: [1, 2]}\n").unwrap();
        assert_eq!((s[0].id.as_deref(), s[1].num_frames, s[1].seeds.clone()), (Some("p001"), Some(4), Some(vec![1, 2])));
        assert!(parse(Path::new("x.yaml"), "- {prompt: a dog, frames: 4}\n").is_err(), "unknown keys are errors");
        assert_eq!(parse(Path::new("x.txt"), "# c\na\n\nb\n").unwrap().len(), 2);
    }

    #[test]
    fn csv_quotes_and_overrides() {
        let rows = csv_rows("prompt,num_frames\n\"a cat, running\",4\n\"say \"\"hi\"\"\",\n").unwrap();
        assert_eq!(rows, vec![vec!["prompt", "num_frames"], vec!["a cat, running", "4"], vec!["say \"hi\"", ""]]);
    }
}
