//! `kubectl redis status` output: a [`Report`] as text for people — the verdict, the causes
//! with their remedies, one row per pod, and every single problem when asked — and the JSON
//! of several reports (`plugin/schemas/status.schema.json`).

use super::diagnose::{Cause, Severity};
use super::finding::count;
use super::target::ClusterTarget;
use super::verify::{PodRow, Report};
use crate::report::style::Style;

/// How to render the text.
#[derive(Debug, Clone, Copy)]
pub struct TextOptions {
    /// Fit the output into this many columns (a terminal's width): the table loses its least
    /// needed columns, then shortens its longest cells, and long lines wrap. `None` prints
    /// every line whole, for pipes and files.
    pub width: Option<usize>,
    /// List every problem and warning under its cause.
    pub verbose: bool,
    pub style: Style,
}

/// Whole lines, no colour, findings counted but not listed: what a log or a file wants.
impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            width: None,
            verbose: false,
            style: Style(false),
        }
    }
}

/// The text a pipe or a log gets: [`TextOptions::default`].
impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&render_text(self, &TextOptions::default()))
    }
}

/// The verdict, the causes, the table; with `verbose`, every finding by cause.
pub fn render_text(r: &Report, options: &TextOptions) -> String {
    let s = options.style;
    let mut out = String::new();
    let verdict = wrap(&r.headline, 2, options.width);
    out.push_str(&s.paint(if r.healthy { "1;32" } else { "1;31" }, verdict.trim_end()));
    out.push('\n');
    if !r.causes.is_empty() {
        out.push('\n');
        for cause in &r.causes {
            let counted = counted(cause);
            out.push_str(&wrap(
                &format!("{} {} ({counted})", mark(cause.severity, s), cause.summary),
                2,
                options.width,
            ));
            out.push_str(&wrap(
                &format!("  {} {}", s.dim("→"), cause.remedy),
                4,
                options.width,
            ));
        }
    }
    out.push('\n');
    out.push_str(&table(r, options));
    let findings = r.problems.len() + r.warnings.len();
    if options.verbose && findings > 0 {
        out.push_str("\nEvery problem and warning, by cause:\n");
        for cause in &r.causes {
            out.push_str(&format!("  {}:\n", cause.summary));
            let problems = cause
                .problems
                .iter()
                .map(|i| (Severity::Problem, &r.problems[*i]));
            let warnings = cause
                .warnings
                .iter()
                .map(|i| (Severity::Warning, &r.warnings[*i]));
            for (severity, finding) in problems.chain(warnings) {
                out.push_str(&wrap(
                    &format!("    {} {finding}", mark(severity, s)),
                    6,
                    options.width,
                ));
            }
        }
    } else if findings > r.causes.len() {
        let mut all = Vec::new();
        if !r.problems.is_empty() {
            all.push(count(r.problems.len(), "problem"));
        }
        if !r.warnings.is_empty() {
            all.push(count(r.warnings.len(), "warning"));
        }
        out.push('\n');
        out.push_str(&s.dim(&format!("{} in all: -v lists each one.", all.join(" and "))));
        out.push('\n');
    }
    out
}

fn mark(severity: Severity, s: Style) -> String {
    match severity {
        Severity::Problem => s.paint("1;31", "✗"),
        Severity::Warning => s.yellow("!"),
    }
}

/// `66 problems`, `1 warning`, `1 problem, 1 warning`.
fn counted(cause: &Cause) -> String {
    let mut parts = Vec::new();
    if !cause.problems.is_empty() {
        parts.push(count(cause.problems.len(), "problem"));
    }
    if !cause.warnings.is_empty() {
        parts.push(count(cause.warnings.len(), "warning"));
    }
    parts.join(", ")
}

/// `text` as lines of at most `width` characters, broken at spaces, continuation lines
/// indented by `indent`; whole when there is no width (or a word is longer than the line).
fn wrap(text: &str, indent: usize, width: Option<usize>) -> String {
    let Some(width) = width.filter(|w| *w > indent + 20) else {
        return format!("{text}\n");
    };
    let words = text.trim_start_matches(' ');
    let mut line = " ".repeat(text.len() - words.len());
    let mut out = String::new();
    let mut fresh = true;
    for word in words.split(' ') {
        let visible = visible_len(&line);
        if !fresh && visible + 1 + visible_len(word) > width {
            out.push_str(&line);
            out.push('\n');
            line = " ".repeat(indent);
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// Characters a terminal shows: ANSI colour sequences take no room.
fn visible_len(text: &str) -> usize {
    let mut n = 0;
    let mut escape = false;
    for c in text.chars() {
        match (escape, c) {
            (false, '\x1b') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// Columns left out first when the table is too wide for the terminal.
const DROPPABLE: [&str; 4] = ["PVC", "KEYS", "IP", "NODE"];
/// Columns whose cells are shortened (with `…`) when dropping was not enough.
const SHRINKABLE: [&str; 3] = ["SLOTS", "LINK", "MASTER"];

/// One row per pod, fitted to `options.width`.
fn table(r: &Report, options: &TextOptions) -> String {
    let dash = || "-".to_string();
    let column = |cell: &dyn Fn(&PodRow) -> String| r.pods.iter().map(cell).collect();
    let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(dash);
    let mut columns: Vec<(&str, Vec<String>)> = vec![
        ("NAME", column(&|p| p.name.clone())),
        ("IP", column(&|p| or_dash(&p.ip))),
        ("NODE", column(&|p| or_dash(&p.node))),
        ("ROLE", column(&|p| p.role.clone())),
        ("MASTER", column(&|p| or_dash(&p.master))),
        (
            "SLOTS",
            column(&|p| match p.slots {
                0 => dash(),
                n => format!("{n} ({})", p.slot_ranges),
            }),
        ),
        (
            "KEYS",
            column(&|p| p.keys.map_or_else(dash, |k| k.to_string())),
        ),
        ("LINK", column(&|p| p.link.clone())),
        ("PVC", column(&|p| p.pvc.clone())),
    ];
    let width_of = |cells: &[String], header: &str| {
        cells
            .iter()
            .map(|c| c.chars().count())
            .chain([header.len()])
            .max()
            .unwrap_or(0)
    };
    let total = |columns: &[(&str, Vec<String>)]| {
        columns
            .iter()
            .map(|(h, cells)| width_of(cells, h))
            .sum::<usize>()
            + 2 * columns.len().saturating_sub(1)
    };
    let mut dropped = Vec::new();
    if let Some(max) = options.width {
        for name in DROPPABLE {
            if total(&columns) <= max {
                break;
            }
            columns.retain(|(h, _)| *h != name);
            dropped.push(name);
        }
        for name in SHRINKABLE {
            let over = total(&columns).saturating_sub(max);
            if over == 0 {
                break;
            }
            if let Some((header, cells)) = columns.iter_mut().find(|(h, _)| *h == name) {
                let keep = width_of(cells, header)
                    .saturating_sub(over)
                    .max(header.len().max(6));
                for cell in cells.iter_mut() {
                    if cell.chars().count() > keep {
                        *cell = cell.chars().take(keep - 1).chain(['…']).collect();
                    }
                }
            }
        }
    }
    let widths: Vec<usize> = columns.iter().map(|(h, c)| width_of(c, h)).collect();
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let pad = w.saturating_sub(cell.chars().count());
                s.push_str(cell);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(columns.iter().map(|(h, _)| *h).collect());
    for row in 0..r.pods.len() {
        out.push_str(&line(
            columns
                .iter()
                .map(|(_, cells)| cells[row].as_str())
                .collect(),
        ));
    }
    if !dropped.is_empty() {
        out.push_str(&options.style.dim(&format!(
            "({} left out to fit the terminal; -o json has every field)",
            dropped.join(", ")
        )));
        out.push('\n');
    }
    out
}

/// `status -o json`: one object per cluster, with its StatefulSet and its report.
pub fn to_json(reports: &[(ClusterTarget, Report)]) -> serde_json::Value {
    reports
        .iter()
        .map(|(target, report)| {
            serde_json::json!({
                "namespace": target.namespace,
                "statefulSet": target.statefulset,
                "report": report,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;

    use super::super::diagnose::CauseKind;
    use super::super::finding::Kind;
    use super::super::fixture::{
        half_migrated, master_down, observation, replica_beside_master, replica_missing, restarted,
        seed, topology, Pod,
    };
    use super::super::verify::verify;
    use super::*;

    fn report(pods: &[Pod]) -> Report {
        verify(&topology(pods, 3, 1), &observation(pods))
    }

    fn target() -> ClusterTarget {
        ClusterTarget {
            namespace: "default".into(),
            statefulset: "redis-cluster".into(),
            masters: 3,
            replicas_per_master: 1,
        }
    }

    /// Each golden file of plugin/tests/golden/status, with the report and options it shows.
    fn cases() -> Vec<(&'static str, Report, TextOptions)> {
        let whole = TextOptions::default();
        vec![
            ("healthy", report(&seed()), whole),
            ("all-addresses-stale", report(&restarted()), whole),
            (
                "all-addresses-stale-verbose",
                report(&restarted()),
                TextOptions {
                    verbose: true,
                    ..whole
                },
            ),
            (
                "all-addresses-stale-80-columns",
                report(&restarted()),
                TextOptions {
                    width: Some(80),
                    ..whole
                },
            ),
            ("master-down", report(&master_down(false)), whole),
            ("replica-missing", report(&replica_missing()), whole),
            ("slot-open", report(&half_migrated()), whole),
            (
                "replica-beside-master",
                report(&replica_beside_master()),
                whole,
            ),
        ]
    }

    /// `UPDATE_GOLDEN=1 cargo test` rewrites the files after a deliberate change.
    #[test]
    fn text_matches_the_golden_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/status");
        let update = std::env::var_os("UPDATE_GOLDEN").is_some();
        let mut differ = Vec::new();
        for (name, report, options) in cases() {
            let text = render_text(&report, &options);
            let path = dir.join(format!("{name}.txt"));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            }
            let golden = std::fs::read_to_string(&path).unwrap_or_default();
            if golden != text {
                let diff = similar::TextDiff::from_lines(&golden, &text)
                    .unified_diff()
                    .header("golden", "rendered")
                    .to_string();
                differ.push(format!("{}:\n{diff}", path.display()));
            }
            if let Some(width) = options.width {
                for line in text.lines() {
                    assert!(line.chars().count() <= width, "{name}: {line:?}");
                }
            }
        }
        assert!(
            differ.is_empty(),
            "status text differs from its golden files (UPDATE_GOLDEN=1 rewrites them):\n{}",
            differ.join("\n")
        );
    }

    #[test]
    fn json_matches_the_schema_and_its_kinds_are_the_enums() {
        let schema: Value =
            serde_json::from_str(include_str!("../../schemas/status.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
        for (name, report, _) in cases() {
            let json = to_json(&[(target(), report)]);
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{name}: {errors:#?}");
        }
        let mut broken = to_json(&[(target(), report(&restarted()))]);
        broken[0]["report"]["problems"][0]["kind"] = "stale".into();
        assert!(!validator.is_valid(&broken), "an unknown kind is refused");

        let consts = |def: &str| -> Vec<Value> {
            schema["$defs"][def]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["const"].clone())
                .collect()
        };
        let json = |v: &[Value]| v.to_vec();
        let kinds: Vec<Value> = Kind::ALL
            .iter()
            .map(|k| serde_json::to_value(k).unwrap())
            .collect();
        let causes: Vec<Value> = CauseKind::ALL
            .iter()
            .map(|k| serde_json::to_value(k).unwrap())
            .collect();
        assert_eq!(consts("kind"), json(&kinds));
        assert_eq!(consts("causeKind"), json(&causes));
        // The strings `status -o json` wrote before kinds were an enum.
        assert_eq!(kinds[6], "stale-address");
        assert_eq!(kinds[11], "replica-link-down");
    }

    #[test]
    fn long_lines_wrap_at_spaces_and_colours_take_no_room() {
        assert_eq!(
            wrap("aaaa bbbb cccc dddd eeee ffff gggg", 2, Some(24)),
            "aaaa bbbb cccc dddd eeee\n  ffff gggg\n"
        );
        assert_eq!(wrap("a b", 2, None), "a b\n");
        assert_eq!(visible_len("\x1b[1;31m✗\x1b[0m x"), 3);
    }
}
