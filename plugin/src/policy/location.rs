//! Maps a finding (object + JSON pointer into the rendered object) back to file:line of the spec,
//! through the object's [`Origin`](crate::input::Origin).

use std::collections::HashMap;

use crate::input::Location;
use crate::render::Bundle;

use super::{ObjectKey, Report};

/// Fills in `location` for every finding whose object is in the bundle. The bundle is indexed
/// once, so this is linear in findings + objects (a scan per finding was quadratic).
pub(super) fn locate(report: &mut Report, bundle: &Bundle) {
    let mut index: HashMap<ObjectKey<'_>, usize> = HashMap::with_capacity(bundle.objects.len());
    for (i, o) in bundle.objects.iter().enumerate() {
        // The first object of a name wins, as a scan in bundle order would find it.
        index.entry(ObjectKey::of_object(&o.object)).or_insert(i);
    }
    // On all cores: a finding's line may need its document's field lines, which are recorded
    // (the document parsed again) on first use.
    let findings = std::mem::take(&mut report.findings);
    report.findings = crate::parallel::map(findings, |mut f| {
        if let Some(&i) = index.get(&ObjectKey::of_ref(&f.object)) {
            let o = &bundle.objects[i];
            f.location = Some(Location {
                file: o.origin.file.clone(),
                line: o.origin.line_of(&f.path).max(1),
                column: 1,
            });
        }
        f
    });
}

pub(super) fn serialize<S: serde::Serializer>(
    location: &Option<Location>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    #[derive(Serialize)]
    struct L<'a> {
        file: &'a str,
        line: usize,
        column: usize,
    }
    location
        .as_ref()
        .map(|l| L {
            file: &l.file,
            line: l.line,
            column: l.column,
        })
        .serialize(s)
}
