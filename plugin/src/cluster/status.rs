//! Text rendering of a [`Report`] for `kubectl redis status` (JSON is `serde_json` of the report).

use super::verify::Report;

/// The verdict first, then one row per pod, then problems and warnings.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    out.push_str(&r.headline);
    out.push_str("\n\n");
    let header = [
        "NAME", "IP", "NODE", "ROLE", "MASTER", "SLOTS", "KEYS", "LINK", "PVC",
    ];
    let rows: Vec<[String; 9]> = r
        .pods
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.ip.clone().unwrap_or_else(|| "-".into()),
                p.node.clone().unwrap_or_else(|| "-".into()),
                p.role.clone(),
                p.master.clone().unwrap_or_else(|| "-".into()),
                if p.slots == 0 {
                    "-".into()
                } else {
                    format!("{} ({})", p.slots, p.slot_ranges)
                },
                p.keys.map(|k| k.to_string()).unwrap_or_else(|| "-".into()),
                p.link.clone(),
                p.pvc.clone(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(header.to_vec()));
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    if !r.problems.is_empty() {
        out.push_str("\nProblems:\n");
        for p in &r.problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    if !r.warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        for w in &r.warnings {
            out.push_str(&format!("  - {w}\n"));
        }
    }
    out
}
