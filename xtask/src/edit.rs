//! In-place edit of one platform's `uri` and `sha256` in the manifest text.
//!
//! The manifest is hand-written YAML with comments; re-serialising it would lose them and reorder
//! keys. So the edit rewrites only the two value lines of the chosen platform, then re-parses the
//! result and checks that nothing but those two values changed.

use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::Value;

use crate::krew::{platforms, selector_os_arch};
use crate::Platform;

/// Returns `text` with `platform`'s `uri` and `sha256` set to the given values.
///
/// Both keys must already be present as block-mapping keys of that platform's list item; the
/// rest of the text (other platforms, comments, order, line endings) is kept byte for byte.
pub fn set_platform_artifact(
    text: &str,
    platform: &Platform,
    uri: &str,
    sha256: &str,
) -> Result<String> {
    let original: Value = serde_yaml::from_str(text).context("the manifest is not valid YAML")?;
    let parsed =
        platforms(&original).ok_or_else(|| anyhow!("the manifest has no spec.platforms list"))?;
    let index = {
        let matching: Vec<usize> = parsed
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                selector_os_arch(p)
                    .is_some_and(|(os, arch)| os == platform.os && arch == platform.arch)
            })
            .map(|(i, _)| i)
            .collect();
        match matching[..] {
            [i] => i,
            [] => bail!(
                "the manifest has no platform whose selector is os={} arch={}",
                platform.os,
                platform.arch
            ),
            _ => bail!(
                "the manifest has {} platforms for {platform}; krew needs exactly one",
                matching.len()
            ),
        }
    };

    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let items = platform_items(&lines)?;
    if items.len() != parsed.len() {
        bail!(
            "found {} list items under `platforms:` in the text but the YAML has {}; \
             write each platform as a block `- ` item",
            items.len(),
            parsed.len()
        );
    }
    let (start, end, key_indent) = items[index];
    let uri_value = if uri
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:/%".contains(&b))
    {
        uri.to_owned()
    } else {
        serde_json::to_string(uri)?
    };
    replace_value(
        &mut lines, start, end, key_indent, "uri", &uri_value, platform,
    )?;
    replace_value(
        &mut lines,
        start,
        end,
        key_indent,
        "sha256",
        &serde_json::to_string(sha256)?,
        platform,
    )?;
    let edited = lines.concat();

    // Nothing but the two values may have changed.
    let mut wanted = original;
    let item = wanted
        .get_mut("spec")
        .and_then(|s| s.get_mut("platforms"))
        .and_then(|p| p.get_mut(index))
        .and_then(Value::as_mapping_mut)
        .expect("located above");
    item.insert("uri".into(), uri.into());
    item.insert("sha256".into(), sha256.into());
    let got: Value =
        serde_yaml::from_str(&edited).context("the edited manifest is not valid YAML")?;
    if got != wanted {
        bail!("editing {platform}'s uri and sha256 in the text changed other values; the manifest's layout is not one this edit understands");
    }
    Ok(edited)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Strips a trailing `# comment` from a plain line (good enough for key lines).
fn without_comment(line: &str) -> &str {
    match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The platform items under the `platforms:` key: `(first line, end line, key indent)` each.
fn platform_items(lines: &[String]) -> Result<Vec<(usize, usize, usize)>> {
    let keys: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| without_comment(l).trim() == "platforms:")
        .map(|(i, _)| i)
        .collect();
    let key = match keys[..] {
        [k] => k,
        [] => bail!("no `platforms:` line in the manifest"),
        _ => bail!("more than one `platforms:` line in the manifest"),
    };
    let key_indent = indent(&lines[key]);
    let mut item_indent = None;
    let mut items: Vec<(usize, usize, usize)> = Vec::new();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate().skip(key + 1) {
        if is_blank_or_comment(line) {
            continue;
        }
        let ind = indent(line);
        let rest = &line[ind..];
        let is_item = rest.starts_with("- ") || rest.trim_end() == "-";
        if ind < key_indent || (ind == key_indent && !is_item) {
            end = i;
            break;
        }
        let wanted = *item_indent.get_or_insert(ind);
        if ind == wanted && is_item {
            let after_dash = &rest[1..];
            let key_col = ind + 1 + (after_dash.len() - after_dash.trim_start_matches(' ').len());
            if let Some(last) = items.last_mut() {
                last.1 = i;
            }
            items.push((i, lines.len(), key_col));
        } else if ind <= wanted {
            bail!(
                "line {}: expected a `- ` platform item at column {}",
                i + 1,
                wanted + 1
            );
        }
    }
    if let Some(last) = items.last_mut() {
        last.1 = end;
    }
    Ok(items)
}

/// Rewrites the one `key:` line at `key_col` inside `lines[start..end]` to hold `value`.
fn replace_value(
    lines: &mut [String],
    start: usize,
    end: usize,
    key_col: usize,
    key: &str,
    value: &str,
    platform: &Platform,
) -> Result<()> {
    let prefix = format!("{key}:");
    let hits: Vec<usize> = (start..end)
        .filter(|&i| {
            let line = &lines[i];
            let at_col = line.len() > key_col && (i == start || indent(line) == key_col);
            at_col && line[key_col..].starts_with(&prefix)
        })
        .collect();
    let i = match hits[..] {
        [i] => i,
        [] => bail!("{platform} has no `{key}:` line to update; add one (a placeholder is fine)"),
        _ => bail!("{platform} has more than one `{key}:` line"),
    };
    let line = &lines[i];
    let body_start = key_col + prefix.len();
    let (content, eol) = match line.strip_suffix("\r\n") {
        Some(c) => (c, "\r\n"),
        None => match line.strip_suffix('\n') {
            Some(c) => (c, "\n"),
            None => (line.as_str(), ""),
        },
    };
    let rest = &content[body_start..];
    let old = rest.trim_start();
    let value_len = scalar_len(old)
        .with_context(|| format!("line {}: cannot tell where the `{key}` value ends", i + 1))?;
    let comment = &old[value_len..];
    let rewritten = format!("{} {value}{comment}{eol}", &content[..body_start]);
    lines[i] = rewritten;
    Ok(())
}

/// Length of the scalar at the start of `text` (plain, single- or double-quoted), before any comment.
fn scalar_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(b'"') => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(i + 1),
                    _ => i += 1,
                }
            }
            None
        }
        Some(b'\'') => {
            let mut i = 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Some(i + 1);
                }
                i += 1;
            }
            None
        }
        _ => Some(match text.find(" #") {
            Some(i) => text[..i].trim_end().len(),
            None => text.trim_end().len(),
        }),
    }
}
