//! Maps a finding (object + JSON pointer into the rendered object) back to file:line of the spec,
//! through the object's [`Origin`](crate::source::Origin).

use crate::render::Bundle;
use crate::source::Location;

use super::Report;

/// Fills in `location` for every finding whose object is in the bundle.
pub fn locate(report: &mut Report, bundle: &Bundle) {
    for f in &mut report.findings {
        if let Some(o) = bundle.objects.iter().find(|o| f.object.matches(&o.object)) {
            f.location = Some(Location {
                file: o.origin.file.clone(),
                line: o.origin.line_of(&f.path).max(1),
                column: 1,
            });
        }
    }
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
