//! The draft mapping as text (TOML with comments that say why and what to
//! check), its `[[tests]]` with made-up values, and the summary for stderr.
//! Only column names, formats and codes from the fixed vocabularies are
//! written; no value of the sample is.

use std::fmt::Write as _;

use chrono::{NaiveDate, NaiveTime};

use super::guess::{Guess, Guesses};
use super::{Dialect, Options, Sample};
use crate::mapping::Target;

/// A draft and what to tell its reader.
pub struct Draft {
    pub text: String,
    pub summary: String,
    /// Required fields it found no column for (`# TODO` in the text).
    pub missing: Vec<Target>,
}

/// Made-up values for the tests: test-person BSNs from the 99999xxxx range.
const SYNTHETIC_BSN: &str = "999990019";
/// Fails the 11-proof.
const SYNTHETIC_BAD_BSN: &str = "999990083";

/// A TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        q(s)
    }
}

/// A date in a strftime format; times at half past nine.
fn render_date(d: NaiveDate, format: &str) -> String {
    let t = NaiveTime::from_hms_opt(9, 30, 0).unwrap_or_default();
    d.and_time(t).format(format).to_string()
}

/// 31 February in the format: a date no format reads.
fn impossible_date(format: &str) -> String {
    format
        .replace("%d", "31")
        .replace("%m", "02")
        .replace("%Y", "2014")
        .replace("%H", "09")
        .replace("%M", "30")
        .replace("%S", "00")
}

pub fn write(opts: &Options, sample: &Sample, g: &Guesses) -> Draft {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# A draft mapping, written by `visync mapping init` on {} from a sample",
        opts.today
    );
    t.push_str("# export. Review it before use: every TODO is something it could not find,\n");
    t.push_str("# every CHECK something only a person can confirm. Then put it in a config's\n");
    t.push_str("# [[sources]] and run `visync check -c CONFIG --mapping-tests` and\n");
    t.push_str("# `visync check -c CONFIG --html report.html` on an export.\n");
    t.push_str("# Nothing of the export's content is in this file: column names, formats and\n");
    t.push_str("# codes only; the tests below use made-up values.\n\n");
    source(&mut t, sample);
    let missing = fields(&mut t, sample, g);
    filter(&mut t, sample, g);
    tests(&mut t, sample, g, opts.today);
    let summary = super::summary::summary(opts, sample, g, &missing);
    Draft {
        text: t,
        summary,
        missing,
    }
}

fn source(t: &mut String, sample: &Sample) {
    t.push_str("[source]\n");
    t.push_str("name = \"draft\"               # CHECK: name it after the CMS; state, reports and notices are keyed by it\n");
    match &sample.dialect {
        Dialect::Csv {
            delimiter,
            encoding,
            encoding_why,
            consistent,
            ..
        } => {
            t.push_str("kind = \"csv\"\n");
            t.push_str("mode = \"snapshot\"            # CHECK: snapshot if each export lists ALL open cases; delta if only changes\n");
            let _ = writeln!(
                t,
                "{:<29}# {encoding_why}",
                format!("encoding = {}", q(&encoding.name().to_lowercase()))
            );
            let d = if *delimiter == b'\t' {
                "tab".to_string()
            } else {
                (*delimiter as char).to_string()
            };
            let _ = writeln!(
                t,
                "{:<29}# {} of {} lines of the sample's head have the header's number of columns",
                format!("delimiter = {}", q(&d)),
                consistent.0,
                consistent.1
            );
        }
        Dialect::Xml {
            record,
            encoding,
            occurrences,
            namespaced,
        } => {
            t.push_str("kind = \"xml\"\n");
            t.push_str("mode = \"snapshot\"            # CHECK: snapshot if each export lists ALL open cases; delta if only changes\n");
            let _ = writeln!(t, "encoding = {}", q(&encoding.name().to_lowercase()));
            let _ = writeln!(
                t,
                "record = {}   # repeats {occurrences} times with the most values below it{}",
                q(&record.join("/")),
                if *namespaced {
                    "; namespace prefixes are ignored"
                } else {
                    ""
                }
            );
        }
    }
    t.push('\n');
}

/// `[fields]`; returns the required fields left as TODO.
fn fields(t: &mut String, sample: &Sample, g: &Guesses) -> Vec<Target> {
    t.push_str("[fields]\n");
    let mut missing = Vec::new();
    for target in Target::ALL {
        if target == Target::WithdrawReason {
            continue;
        }
        match g.get(target) {
            Some(guess) => field(t, sample, guess),
            None if target == Target::Gender => {
                t.push_str("# TODO gender: no column holds gender codes (M/V, man/vrouw, ...); map it if the export has one\n");
                t.push_str("gender = { default = \"unknown\" }\n");
            }
            None if target.is_essential() => {
                missing.push(target);
                let _ = writeln!(
                    t,
                    "# TODO {}: no column found for it ({}); the mapping cannot load until it is named:\n# {} = \"COLUMN\"",
                    target.name(),
                    hint(target),
                    target.name()
                );
            }
            None => {}
        }
    }
    t.push_str("# withdraw_reason: map a closing-reason column here if the export has one (docs/mapping.md)\n");
    if !contact_complete(g) {
        t.push_str(
            "\n# TODO professional contact: the index needs the professional's name and a phone\n",
        );
        t.push_str(
            "# number or e-mail address. Map the export's columns above if it has them, or add a\n",
        );
        t.push_str("# table of professionals (columns id;name;phone;email, by professional_id):\n");
        t.push_str("# [professionals]\n# file = \"professionals.csv\"\n");
    }
    t.push('\n');
    missing
}

fn hint(target: Target) -> &'static str {
    match target {
        Target::Bsn => "no column passes the 11-proof in half its values",
        Target::FamilyName => "a header such as Achternaam or Last name",
        Target::BirthDate | Target::StartDate => {
            "no date column fits; check the date formats (docs/mapping.md)"
        }
        Target::ProfessionalId => "a column of codes that repeat, one per professional",
        Target::CaseRef => "a column filled in every record, its values (nearly) unique",
        _ => "no column found",
    }
}

pub fn contact_complete(g: &Guesses) -> bool {
    g.get(Target::ProfessionalName).is_some()
        && (g.get(Target::ProfessionalPhone).is_some()
            || g.get(Target::ProfessionalEmail).is_some())
}

fn field(t: &mut String, sample: &Sample, guess: &Guess) {
    let from = q(&sample.columns[guess.column]);
    let _ = writeln!(t, "# {}", guess.evidence);
    let mut parts = vec![format!("from = {from}")];
    if guess.optional {
        parts.push("optional = true".into());
    }
    match guess.formats.as_slice() {
        [] => {}
        [one] => parts.push(format!("date = {}", q(one))),
        many => parts.push(format!(
            "date = [{}]",
            many.iter().map(|f| q(f)).collect::<Vec<_>>().join(", ")
        )),
    }
    if guess.target == Target::Gender {
        let map: Vec<String> = guess
            .map
            .iter()
            .map(|(k, v)| format!("{} = {}", key(k), q(v)))
            .collect();
        parts.push(format!("map = {{ {} }}", map.join(", ")));
        parts.push("default = \"unknown\"".into());
        t.push_str("# CHECK: codes the map does not name fall to \"unknown\"; drop `default` to reject them\n");
    }
    if parts.len() == 1 {
        let _ = writeln!(t, "{} = {from}", guess.target.name());
    } else {
        let _ = writeln!(t, "{} = {{ {} }}", guess.target.name(), parts.join(", "));
    }
}

fn filter(t: &mut String, sample: &Sample, g: &Guesses) {
    t.push_str("[filter]\n");
    t.push_str(
        "# Registration is a professional's decision, not a consequence of being a client:\n",
    );
    t.push_str("# the mapping must read that decision from the export (connector.md).\n");
    match &g.decision {
        Some(d) => {
            let col = &sample.columns[d.column];
            let _ = writeln!(
                t,
                "# CHECK: {} looks like it ({}). If it is, uncomment:",
                q(col),
                d.evidence
            );
            let _ = writeln!(
                t,
                "# only = [{{ from = {}, in = [{}] }}]",
                q(col),
                q(&d.yes)
            );
            let _ = writeln!(
                t,
                "# and add {} = {} to each test's input below (a record with {} is then skipped).",
                key(col),
                q(&d.yes),
                q(&d.no)
            );
        }
        None => {
            t.push_str(
                "# TODO: no column looks like that decision (two values such as J/N); add\n",
            );
            t.push_str(
                "# only = [{ from = \"COLUMN\", in = [\"J\"] }] once you know which it is.\n",
            );
        }
    }
    t.push('\n');
}

/// A made-up value for a field, in the column's own format.
fn synthetic(guess: &Guess, today: NaiveDate) -> Option<String> {
    let date = |d: NaiveDate| guess.formats.first().map(|f| render_date(d, f));
    Some(match guess.target {
        Target::Bsn => SYNTHETIC_BSN.into(),
        Target::FamilyName => "Testkind".into(),
        Target::NamePrefix => "van".into(),
        Target::Initials => "T.".into(),
        Target::GivenNames => "Testje".into(),
        Target::BirthDate => date(NaiveDate::from_ymd_opt(2014, 3, 4)?)?,
        Target::StartDate => date(today - chrono::Days::new(30))?,
        Target::Gender => guess.map.first()?.0.clone(),
        Target::ProfessionalId => "PRF-0001".into(),
        Target::ProfessionalName => "P. Voorbeeld".into(),
        Target::ProfessionalPhone => "0200000000".into(),
        Target::ProfessionalEmail => "p.voorbeeld@example.org".into(),
        Target::CaseRef => "CASE-0001".into(),
        Target::EndDate | Target::WithdrawReason => return None,
    })
}

fn tests(t: &mut String, sample: &Sample, g: &Guesses, today: NaiveDate) {
    let inputs: Vec<(Target, String, String)> = g
        .fields
        .iter()
        .filter_map(|f| {
            Some((
                f.target,
                sample.columns[f.column].clone(),
                synthetic(f, today)?,
            ))
        })
        .collect();
    let input = |change: &dyn Fn(Target) -> Option<Option<String>>| {
        let cells: Vec<String> = inputs
            .iter()
            .filter_map(|(target, col, v)| {
                let v = change(*target).unwrap_or(Some(v.clone()))?;
                Some(format!("{} = {}", key(col), q(&v)))
            })
            .collect();
        format!("input = {{ {} }}\n", cells.join(", "))
    };
    t.push_str(
        "# Made-up records that pin the mapping down (a test-person BSN, invented names).\n",
    );
    t.push_str("[[tests]]\n");
    if contact_complete(g) {
        t.push_str("name = \"a plain record\"\n");
        t.push_str(&input(&|_| None));
        let mut expect = Vec::new();
        for (target, _, v) in &inputs {
            let want = match target {
                Target::BirthDate => "2014-03-04".to_string(),
                Target::StartDate => (today - chrono::Days::new(30)).to_string(),
                Target::Gender => g
                    .get(Target::Gender)
                    .and_then(|x| x.map.first())
                    .map_or("unknown", |m| m.1)
                    .to_string(),
                Target::Bsn | Target::FamilyName | Target::CaseRef | Target::ProfessionalId => {
                    v.clone()
                }
                _ => continue,
            };
            expect.push(format!("{} = {}", target.name(), q(&want)));
        }
        let _ = writeln!(t, "expect = {{ {} }}\n", expect.join(", "));
    } else {
        t.push_str("name = \"TODO: until the professional's contact data is mapped, every record is rejected\"\n");
        t.push_str(&input(&|_| None));
        t.push_str("expect_rejection = \"professional_unknown\"\n\n");
    }
    if g.get(Target::Bsn).is_some() {
        t.push_str("[[tests]]\nname = \"a BSN that fails the 11-proof\"\n");
        t.push_str(&input(&|x| {
            (x == Target::Bsn).then(|| Some(SYNTHETIC_BAD_BSN.to_string()))
        }));
        t.push_str("expect_rejection = \"bsn_invalid\"\nexpect_field = \"bsn\"\n\n");
    }
    if let Some(f) = g.get(Target::BirthDate).and_then(|b| b.formats.first()) {
        if g.get(Target::Bsn).is_some() {
            t.push_str("[[tests]]\nname = \"a birth date that is no date\"\n");
            let bad = impossible_date(f);
            t.push_str(&input(&|x| {
                (x == Target::BirthDate).then(|| Some(bad.clone()))
            }));
            t.push_str(
                "expect_rejection = \"birth_date_invalid\"\nexpect_field = \"birth_date\"\n\n",
            );
        }
    }
    if g.get(Target::FamilyName).is_some() && g.get(Target::Bsn).is_some() {
        t.push_str("[[tests]]\nname = \"no family name\"\n");
        t.push_str(&input(&|x| (x == Target::FamilyName).then_some(None)));
        t.push_str("expect_rejection = \"missing_field\"\nexpect_field = \"family_name\"\n");
    }
}
