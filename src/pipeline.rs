//! The pipeline from one export file to a desired state: read (streamed), map,
//! validate, deduplicate. Shared by the dry run and the real run, so that
//! `check` is the real pipeline minus side effects, not a second one.

use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::domain::{Bsn, SignalRef, SubjectHasher};
use crate::mapping::{Code, Context, Mapping, OutcomeRef, Target};
use crate::plan::{Desired, InvolvementKey, Wanted};
use crate::source::{FileReader, Location, RawRecord, ReadError};

/// A record that did not become a signal, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRejection {
    pub location: Location,
    /// The resource the record is (`EpisodeOfCare/ID`), where the source
    /// names one: the location a report shows.
    pub resource: Option<Box<str>>,
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

impl FileOutcome {
    fn new(desired: Desired) -> FileOutcome {
        FileOutcome {
            records: 0,
            accepted: 0,
            rejected: 0,
            skipped: 0,
            rejections: Vec::new(),
            desired,
        }
    }
}

/// The key a signal is known by in local state.
pub fn involvement_key(hasher: &SubjectHasher, signal: &SignalRef<'_>) -> InvolvementKey {
    InvolvementKey {
        subject: hasher.key(&signal.subject.bsn),
        professional: signal.professional.id.into(),
    }
}

pub fn wanted(signal: &SignalRef<'_>, location: Location, ctx: &Context<'_>) -> Wanted {
    Wanted {
        content: signal.content_hash(),
        location,
        end_date: signal.end_date,
        end_from_source: signal.end_from_source,
        last_day: ctx.rules.last_day(signal.subject.birth_date),
        ended: signal.ended,
    }
}

/// Calls `f` with every record's outcome, in file order, and the resource
/// the record names (`EpisodeOfCare/ID`), if any. The outcome borrows from
/// the one reused record: nothing is allocated per row unless `f` keeps it.
pub fn for_each_outcome(
    mapping: &Mapping,
    mut reader: FileReader,
    ctx: &Context<'_>,
    mut f: impl FnMut(Location, OutcomeRef<'_>, Option<&str>),
) -> Result<(), ReadError> {
    let mut rec = RawRecord::default();
    let mut n = 0;
    while reader.next_record(&mut rec)? {
        n += 1;
        let location = rec.location.unwrap_or(Location::Record(n));
        f(
            location,
            mapping.apply_ref(&rec.values, ctx),
            rec.resource.as_deref(),
        );
    }
    Ok(())
}

/// A record's outcome as the reading thread hands it to the planning one:
/// owned, small, and without an allocation of its own for a signal.
enum Item {
    /// What planning needs of a signal; the professional's id is the range
    /// of the batch's `text`.
    Signal {
        bsn: Bsn,
        professional: Range<u32>,
        wanted: Wanted,
    },
    Skipped,
    /// Rare, so boxed: it would make every item twice as big.
    Rejected(Box<(RecordRejection, Option<(Bsn, String)>)>),
}

/// Records handed over together, their professionals' ids in one string.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    text: String,
}

impl Batch {
    fn with_capacity(n: usize) -> Batch {
        Batch {
            items: Vec::with_capacity(n),
            text: String::with_capacity(n * 16),
        }
    }

    /// The reading thread's half of a record: the outcome made owned.
    fn push(
        &mut self,
        location: Location,
        outcome: OutcomeRef<'_>,
        resource: Option<&str>,
        ctx: &Context<'_>,
    ) {
        let item = match outcome {
            OutcomeRef::Signal(signal) => {
                let start = self.text.len();
                self.text.push_str(signal.professional.id);
                let end = self.text.len();
                Item::Signal {
                    bsn: signal.subject.bsn,
                    // A batch's text stays far below 4 GiB (ids of at most
                    // 64 KiB, `BATCH` of them).
                    professional: start as u32..end as u32,
                    wanted: wanted(&signal, location, ctx),
                }
            }
            OutcomeRef::Skipped => Item::Skipped,
            OutcomeRef::Rejected(r) => Item::Rejected(Box::new((
                RecordRejection {
                    location,
                    resource: resource.map(Box::from),
                    code: r.code,
                    field: r.field,
                    message: r.message,
                },
                r.involvement,
            ))),
        };
        self.items.push(item);
    }

    /// The planning thread's half: every record into the file's tally and
    /// desired state, in order.
    fn take(self, out: &mut FileOutcome, hasher: &SubjectHasher) {
        for item in self.items {
            out.records += 1;
            match item {
                Item::Signal {
                    bsn,
                    professional,
                    wanted,
                } => {
                    out.accepted += 1;
                    let id = &self.text[professional.start as usize..professional.end as usize];
                    out.desired.offer_parts(hasher.key(&bsn), id, wanted);
                }
                Item::Skipped => out.skipped += 1,
                Item::Rejected(r) => {
                    let (rejection, involvement) = *r;
                    out.rejected += 1;
                    if let Some((bsn, professional)) = involvement {
                        out.desired.note_present(&InvolvementKey {
                            subject: hasher.key(&bsn),
                            professional: professional.into(),
                        });
                    }
                    out.rejections.push(rejection);
                }
            }
        }
    }
}

/// Records handed from one thread to the next at a time: enough to make the
/// hand-over cheap, few enough to keep memory flat.
const BATCH: usize = 1024;
/// Batches in flight between two threads.
const IN_FLIGHT: usize = 4;
/// A batch of read records ends early at this many bytes of values, so
/// that records of long values (up to 64 KiB each) do not multiply the
/// memory in flight by `BATCH`.
const BATCH_BYTES: usize = 1 << 20;
/// A recycled value buffer keeps at most this much room; a longer one is
/// freed, so that the spare buffers of all batches stay small whatever the
/// file held (a signal's values are short).
const KEPT_CAPACITY: usize = 256;

/// Records read ahead: the reading thread fills them, the mapping thread
/// hands them back to be filled again, so that a record's buffers are
/// allocated once, not per record.
#[derive(Default)]
struct Records {
    recs: Vec<RawRecord>,
    /// How many of `recs` this batch holds (the rest are spare buffers).
    len: usize,
    /// The number of the first record in the file, counted from 1: the
    /// location of a record whose reader gives none.
    first: u64,
}

impl Records {
    /// Frees the value buffers that grew past `KEPT_CAPACITY`.
    fn trim_spare(&mut self) {
        for rec in &mut self.recs {
            for v in &mut rec.values {
                if v.capacity() > KEPT_CAPACITY {
                    *v = String::new();
                }
            }
        }
    }
}

/// The reading stage: parse and decode, nothing else.
fn read_ahead(
    mut reader: FileReader,
    full: SyncSender<Records>,
    empty: Receiver<Records>,
) -> Result<(), ReadError> {
    let mut read = 0u64;
    loop {
        let mut batch = empty.try_recv().unwrap_or_default();
        batch.trim_spare();
        (batch.len, batch.first) = (0, read + 1);
        let (mut done, mut bytes) = (false, 0);
        while batch.len < BATCH && bytes < BATCH_BYTES {
            if batch.recs.len() == batch.len {
                batch.recs.push(RawRecord::default());
            }
            let rec = &mut batch.recs[batch.len];
            if !reader.next_record(rec)? {
                done = true;
                break;
            }
            bytes += rec.values.iter().map(String::len).sum::<usize>();
            batch.len += 1;
            read += 1;
        }
        // The next stage only stops by panicking, which `read_file` passes on.
        if batch.len > 0 && full.send(batch).is_err() || done {
            return Ok(());
        }
    }
}

/// The mapping stage: map, validate and hash each record, in file order.
fn map_ahead(
    mapping: &Mapping,
    ctx: &Context<'_>,
    full: Receiver<Records>,
    empty: SyncSender<Records>,
    mapped: SyncSender<Batch>,
) {
    for records in full {
        let mut batch = Batch::with_capacity(BATCH);
        for (i, rec) in records.recs[..records.len].iter().enumerate() {
            let location = rec
                .location
                .unwrap_or(Location::Record(records.first + i as u64));
            let outcome = mapping.apply_ref(&rec.values, ctx);
            batch.push(location, outcome, rec.resource.as_deref(), ctx);
        }
        // A full return queue only means a batch more to allocate.
        let _ = empty.try_send(records);
        if mapped.send(batch).is_err() {
            return;
        }
    }
}

/// Reads every record of one file into a desired state. A `ReadError` means
/// the file as a whole is unusable: none of its records may be acted on (a
/// truncated snapshot must not withdraw what it lost).
///
/// The work is a pipeline of three threads joined by small bounded
/// channels, so memory does not grow with the file: one reads (parse,
/// decode), one maps (validate, the content hash), and this one keys and
/// plans (the HMAC of each BSN, the planner's entries). No stage is half
/// the work, so three keep two cores busy where two threads left one
/// waiting. Each stage takes the records in file order, so the result is
/// the same as on one thread.
pub fn read_file(
    mapping: &Mapping,
    reader: FileReader,
    ctx: &Context<'_>,
    hasher: &SubjectHasher,
) -> Result<FileOutcome, ReadError> {
    let mut out = FileOutcome::new(Desired::new(mapping.mode));
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel(IN_FLIGHT);
        let (empty_tx, empty_rx) = sync_channel(IN_FLIGHT + 2);
        let (mapped_tx, mapped_rx) = sync_channel(IN_FLIGHT);
        let reading = scope.spawn(move || read_ahead(reader, full_tx, empty_rx));
        let mapping = scope.spawn(move || map_ahead(mapping, ctx, full_rx, empty_tx, mapped_tx));
        for batch in mapped_rx {
            batch.take(&mut out, hasher);
        }
        use std::panic::resume_unwind;
        mapping.join().unwrap_or_else(|panic| resume_unwind(panic));
        reading.join().unwrap_or_else(|panic| resume_unwind(panic))
    })?;
    out.desired.seal();
    add_duplicates(&mut out);
    Ok(out)
}

/// Involvements listed twice with different data: every such record is
/// rejected (found only once the whole file is read).
fn add_duplicates(out: &mut FileOutcome) {
    let duplicates = out.desired.duplicates().len() as u64;
    out.accepted -= duplicates;
    out.rejected += duplicates;
    for &location in out.desired.duplicates() {
        out.rejections.push(RecordRejection {
            location,
            resource: None,
            code: Code::DuplicateRecord,
            field: None,
            message: "the same child and professional are listed more than once in this file with different data; list each involvement once".into(),
        });
    }
    out.rejections.sort_by_key(|r| r.location);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Rules;
    use crate::mapping::Mode;
    use crate::plan::Policy;
    use crate::source::FileReader;
    use std::collections::HashMap;

    /// Reading, mapping and planning on three threads gives what one thread
    /// gives: the same counts, rejections in file order, duplicates, and
    /// the same plan, over many batches, short and long.
    #[test]
    fn three_threads_give_what_one_thread_gives() {
        let dir = tempfile::tempdir().unwrap();
        let mapping_path = dir.path().join("m.toml");
        std::fs::write(
            &mapping_path,
            "[source]\nname = \"t\"\nkind = \"csv\"\ndelimiter = \",\"\n[fields]\nbsn = \"bsn\"\nfamily_name = \"naam\"\n\
             birth_date = { from = \"geboren\", date = \"%d-%m-%Y\" }\ngender = { default = \"unknown\" }\nprofessional_id = \"mw\"\n\
             professional_name = { default = \"A\" }\nprofessional_email = { default = \"a@x.example\" }\ncase_ref = \"d\"\n\
             start_date = { from = \"start\", date = \"%d-%m-%Y\" }\n",
        )
        .unwrap();
        let mapping = crate::mapping::load(&mapping_path).unwrap();
        let mut csv = String::from("bsn,naam,geboren,mw,d,start\n");
        let valid: Vec<String> = (100_000_000u64..)
            .map(|n| n.to_string())
            .filter(|s| crate::domain::Bsn::parse(s).is_ok())
            .take(4000)
            .collect();
        for (i, b) in valid.iter().enumerate() {
            let birth = if i % 97 == 0 {
                "31-02-2014"
            } else {
                "04-03-2012"
            };
            // Some long values: batches that end at `BATCH_BYTES`, and
            // buffers too big to keep.
            let name = if i % 10 == 3 {
                "N".repeat(20_000)
            } else {
                "N".into()
            };
            csv.push_str(&format!("{b},{name},{birth},E{},D{i},01-11-2026\n", i % 7));
            if i % 501 == 0 {
                // The same involvement again with other data: duplicates.
                csv.push_str(&format!("{b},M,{birth},E{},D{i},01-11-2026\n", i % 7));
            }
        }
        let file = dir.path().join("x.csv");
        std::fs::write(&file, csv).unwrap();
        let objected = |_: &crate::domain::Bsn| false;
        let ctx = Context {
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            rules: Rules::default(),
            objected: &objected,
            reveal: false,
        };
        let hasher = SubjectHasher::new(b"k");
        let open = || FileReader::open(&file, &mapping.reader).unwrap();

        let mut two = read_file(&mapping, open(), &ctx, &hasher).unwrap();
        let mut one = FileOutcome::new(Desired::new(Mode::Snapshot));
        let mut batch = Batch::default();
        for_each_outcome(&mapping, open(), &ctx, |l, o, r| batch.push(l, o, r, &ctx)).unwrap();
        batch.take(&mut one, &hasher);
        one.desired.seal();

        assert!(two.records > 2 * BATCH as u64, "several batches");
        assert_eq!(two.records, one.records);
        assert_eq!(
            two.accepted + two.desired.duplicates().len() as u64,
            one.accepted
        );
        // `read_file` adds the duplicates to the rejections after the fold.
        let codes = |o: &FileOutcome| -> Vec<(Location, Code)> {
            o.rejections
                .iter()
                .filter(|r| r.code != Code::DuplicateRecord)
                .map(|r| (r.location, r.code))
                .collect()
        };
        assert_eq!(codes(&two), codes(&one));
        assert_eq!(two.desired.duplicates(), one.desired.duplicates());
        let empty: HashMap<crate::plan::InvolvementKey, crate::plan::Stored> = HashMap::new();
        let today = ctx.today;
        let policy = Policy::default();
        let a = two.desired.plan(&empty, today, &ctx.rules, &policy);
        let b = one.desired.plan(&empty, today, &ctx.rules, &policy);
        assert_eq!(a.counts, b.counts);
    }
}
