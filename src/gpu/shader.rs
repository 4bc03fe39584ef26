//! A tiny WGSL preprocessor: `#if NAME` / `#else` / `#endif` on flags and `{{NAME}}` values.
//! WGSL `override` constants cannot size function-local arrays, so register-tile sizes and
//! head dims are substituted as text instead.

use crate::error::{Error, Result};

/// Expands `src` for the given defines. A flag is on when defined with a value other than "0".
pub fn preprocess(name: &str, src: &str, defines: &[(&str, String)]) -> Result<String> {
    let lookup = |k: &str| defines.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
    let err = |line: usize, msg: &str| Error::Shader { name: name.into(), msg: format!("line {}: {msg}", line + 1) };
    let mut out = String::with_capacity(src.len());
    // One entry per open #if: whether its condition held.
    let mut conds: Vec<bool> = Vec::new();
    // Whether the lines at each nesting depth are emitted.
    let mut active: Vec<bool> = vec![true];
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        let here = *active.last().unwrap_or(&true);
        if let Some(flag) = t.strip_prefix("#if ") {
            let on = lookup(flag.trim()).is_some_and(|v| v != "0");
            conds.push(on);
            active.push(here && on);
        } else if t.starts_with("#else") {
            let on = *conds.last().ok_or_else(|| err(i, "#else without #if"))?;
            active.pop();
            let parent = *active.last().unwrap_or(&true);
            active.push(parent && !on);
        } else if t.starts_with("#endif") {
            conds.pop().ok_or_else(|| err(i, "#endif without #if"))?;
            active.pop();
        } else if here {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !conds.is_empty() {
        return Err(err(src.lines().count(), "missing #endif"));
    }
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(start) = rest.find("{{") {
        result.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| Error::Shader { name: name.into(), msg: "unclosed {{".into() })?;
        let key = &rest[start + 2..start + end];
        let val = lookup(key).ok_or_else(|| Error::Shader { name: name.into(), msg: format!("no value for {{{{{key}}}}}") })?;
        result.push_str(val);
        rest = &rest[start + end + 2..];
    }
    result.push_str(rest);
    Ok(result)
}
