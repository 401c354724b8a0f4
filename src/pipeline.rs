//! The pipeline from one export file to a desired state: read (streamed), map,
//! validate, deduplicate. Shared by the dry run and the real run, so that
//! `check` is the real pipeline minus side effects, not a second one.

use crate::domain::{Signal, SubjectHasher};
use crate::mapping::{Code, Context, Mapping, Outcome, Target};
use crate::plan::{Desired, InvolvementKey, Wanted};
use crate::source::{FileReader, Location, RawRecord, ReadError};

/// A record that did not become a signal, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRejection {
    pub location: Location,
    pub code: Code,
    pub field: Option<Target>,
    pub message: String,
}

/// What one readable file gave.
pub struct FileOutcome {
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub skipped: u64,
    pub rejections: Vec<RecordRejection>,
    pub desired: Desired,
}

/// The key a signal is known by in local state.
pub fn involvement_key(hasher: &SubjectHasher, signal: &Signal) -> InvolvementKey {
    InvolvementKey {
        subject: hasher.key(&signal.subject.bsn),
        professional: signal.professional.id.as_str().into(),
    }
}

pub fn wanted(signal: &Signal, location: Location, ctx: &Context<'_>) -> Wanted {
    Wanted {
        content: signal.content_hash(),
        location,
        end_date: signal.end_date,
        end_from_source: signal.end_from_source,
        last_day: ctx.rules.last_day(signal.subject.birth_date),
        ended: signal.ended,
    }
}

/// Calls `f` with every record's outcome, in file order.
pub fn for_each_outcome(
    mapping: &Mapping,
    mut reader: FileReader,
    ctx: &Context<'_>,
    mut f: impl FnMut(Location, Outcome),
) -> Result<(), ReadError> {
    let mut rec = RawRecord::default();
    let mut n = 0;
    while reader.next_record(&mut rec)? {
        n += 1;
        let location = rec.location.unwrap_or(Location::Record(n));
        f(location, mapping.apply(&rec.values, ctx));
    }
    Ok(())
}

/// Reads every record of one file into a desired state. A `ReadError` means
/// the file as a whole is unusable: none of its records may be acted on (a
/// truncated snapshot must not withdraw what it lost).
pub fn read_file(
    mapping: &Mapping,
    reader: FileReader,
    ctx: &Context<'_>,
    hasher: &SubjectHasher,
) -> Result<FileOutcome, ReadError> {
    let mut out = FileOutcome {
        records: 0,
        accepted: 0,
        rejected: 0,
        skipped: 0,
        rejections: Vec::new(),
        desired: Desired::new(mapping.mode),
    };
    for_each_outcome(mapping, reader, ctx, |location, outcome| {
        out.records += 1;
        match outcome {
            Outcome::Signal(signal) => {
                out.accepted += 1;
                let w = wanted(&signal, location, ctx);
                out.desired.offer_parts(
                    hasher.key(&signal.subject.bsn),
                    &signal.professional.id,
                    w,
                );
            }
            Outcome::Skipped => out.skipped += 1,
            Outcome::Rejected(r) => {
                out.rejected += 1;
                if let Some((bsn, professional)) = &r.involvement {
                    out.desired.note_present(&InvolvementKey {
                        subject: hasher.key(bsn),
                        professional: professional.as_str().into(),
                    });
                }
                out.rejections.push(RecordRejection {
                    location,
                    code: r.code,
                    field: r.field,
                    message: r.message,
                });
            }
        }
    })?;
    let duplicates = out.desired.duplicates().len() as u64;
    out.accepted -= duplicates;
    out.rejected += duplicates;
    for &location in out.desired.duplicates() {
        out.rejections.push(RecordRejection {
            location,
            code: Code::DuplicateRecord,
            field: None,
            message: "the same child and professional are listed more than once in this file with different data; list each involvement once".into(),
        });
    }
    out.rejections.sort_by_key(|r| r.location);
    Ok(out)
}
