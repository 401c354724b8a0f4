//! Which column fills which signal field, decided by evidence: hit rates,
//! order, value sets, cardinality, uniqueness; header words break ties and
//! find names (a name's values prove nothing about which name it is).
//! Each guess carries its evidence as counts, for the summary and the
//! draft's comments: never a value.

use chrono::NaiveDate;

use super::profile::{self, words, Profile, GENDER_CODES, GENDER_NUMERIC, YES_NO};
use super::Sample;
use crate::mapping::Target;

const BSN: &[&str] = &[
    "bsn",
    "burgerservicenummer",
    "sofinummer",
    "citizenservice",
    "ssn",
];
pub(super) const BIRTH: &[&str] = &["geboorte", "birth", "dob", "gebdat"];
pub(super) const START: &[&str] = &["start", "begin", "aanvang", "ingang", "aanmeld", "from"];
pub(super) const END: &[&str] = &["eind", "end", "afsluit", "stop", "until"];
const GENDER: &[&str] = &["geslacht", "gender", "sex"];
const DECISION: &[&str] = &[
    "vir",
    "verwijsindex",
    "melden",
    "meld",
    "signa",
    "regist",
    "consent",
];
pub(super) const PROFESSIONAL: &[&str] = &[
    "medewerker",
    "hulpverlener",
    "behandelaar",
    "professional",
    "employee",
    "caseworker",
    "worker",
    "regievoerder",
    "consulent",
    "mentor",
    "practitioner",
    "zorgverlener",
    "coach",
    "staff",
    "careprovider",
];
const CASE: &[&str] = &[
    "dossier", "case", "zaak", "casus", "traject", "nummer", "number", "ref", "id",
];
pub(super) const FAMILY: &[&str] = &[
    "achternaam",
    "geslachtsnaam",
    "familienaam",
    "lastname",
    "surname",
    "familyname",
];
pub(super) const PREFIX: &[&str] = &["tussenvoegsel", "voorvoegsel", "prefix", "infix"];
pub(super) const INITIALS: &[&str] = &["voorletter", "initial"];
pub(super) const GIVEN: &[&str] = &["voornam", "voornaam", "givenname", "firstname", "roepnaam"];
pub(super) const EMAIL: &[&str] = &["email", "mail"];
pub(super) const PHONE: &[&str] = &["telefoon", "tel", "phone", "mobiel", "mobile"];
pub(super) const NAME: &[&str] = &["naam", "name"];

/// One field's column and why.
#[derive(Debug, Clone)]
pub struct Guess {
    pub target: Target,
    pub column: usize,
    pub evidence: String,
    pub formats: Vec<String>,
    /// Exact source codes (from `GENDER_CODES` only) → gender.
    pub map: Vec<(String, &'static str)>,
    pub optional: bool,
}

/// The decision column, proposed as a commented-out filter.
#[derive(Debug, Clone)]
pub struct Decision {
    pub column: usize,
    /// The "yes" code as the export writes it (from `YES_NO` only).
    pub yes: String,
    pub no: String,
    pub evidence: String,
}

pub struct Guesses {
    pub fields: Vec<Guess>,
    pub decision: Option<Decision>,
    /// Things a person must look at: the summary lists them.
    pub checks: Vec<String>,
}

impl Guesses {
    pub fn get(&self, t: Target) -> Option<&Guess> {
        self.fields.iter().find(|g| g.target == t)
    }

    pub fn uses(&self, column: usize) -> bool {
        self.fields.iter().any(|g| g.column == column)
            || self.decision.as_ref().is_some_and(|d| d.column == column)
    }
}

pub(super) fn hinted(column: &str, hints: &[&str]) -> bool {
    words(column)
        .iter()
        .any(|w| hints.iter().any(|h| w.contains(h)))
}

/// The last word only: `Hulpverlener/Naam` is a professional's name.
pub(super) fn last_hinted(column: &str, hints: &[&str]) -> bool {
    words(column)
        .last()
        .is_some_and(|w| hints.iter().any(|h| w.contains(h)))
}

pub(super) fn pct(n: usize, of: usize) -> String {
    format!("{n} of {of} ({}%)", (n * 100).checked_div(of).unwrap_or(0))
}

pub(super) struct Ctx<'a> {
    pub sample: &'a Sample,
    pub profiles: Vec<Profile>,
    pub used: Vec<bool>,
    pub today: NaiveDate,
}

impl Ctx<'_> {
    pub fn name(&self, c: usize) -> &str {
        &self.sample.columns[c]
    }

    /// The free column with the best score above zero.
    pub fn best(&self, score: impl Fn(usize, &Profile) -> f64) -> Option<usize> {
        (0..self.profiles.len())
            .filter(|&c| !self.used[c] && self.profiles[c].non_empty > 0)
            .map(|c| (c, score(c, &self.profiles[c])))
            .filter(|(_, s)| *s > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(c, _)| c)
    }

    pub fn take(&mut self, out: &mut Vec<Guess>, target: Target, column: usize, evidence: String) {
        self.used[column] = true;
        out.push(Guess {
            target,
            column,
            evidence,
            formats: Vec::new(),
            map: Vec::new(),
            optional: !target.is_essential() && target != Target::Gender,
        });
    }
}

/// Proposes a column for each field it can find.
pub fn guess(sample: &Sample, today: NaiveDate) -> Guesses {
    let profiles: Vec<Profile> = (0..sample.columns.len())
        .map(|c| profile::profile(&sample.rows, c))
        .collect();
    let mut ctx = Ctx {
        sample,
        used: vec![false; profiles.len()],
        profiles,
        today,
    };
    let mut fields = Vec::new();
    let mut checks = Vec::new();
    bsn(&mut ctx, &mut fields, &mut checks);
    gender(&mut ctx, &mut fields, &mut checks);
    let decision = decision(&mut ctx);
    super::guess_dates::dates(&mut ctx, &mut fields, &mut checks);
    professional_id(&mut ctx, &mut fields);
    case_ref(&mut ctx, &mut fields);
    super::guess_people::names(&mut ctx, &mut fields, &mut checks);
    super::guess_people::contact(&mut ctx, &mut fields);
    fields.sort_by_key(|g| g.target);
    Guesses {
        fields,
        decision,
        checks,
    }
}

fn bsn(ctx: &mut Ctx<'_>, out: &mut Vec<Guess>, checks: &mut Vec<String>) {
    let found = ctx.best(|c, p| {
        let rate = p.rate(p.bsn_hits);
        if rate < 0.5 || p.filled() < 0.5 {
            return 0.0;
        }
        rate + if hinted(ctx.name(c), BSN) { 0.5 } else { 0.0 }
    });
    // A sample made anonymous often has numbers that fail the 11-proof: a
    // BSN header is then taken on its word, and said to be.
    let by_header = || {
        ctx.best(|c, p| {
            let digits = p.rate(p.with_digit) >= 0.9 && p.rate(p.with_space) < 0.1;
            if hinted(ctx.name(c), BSN) && digits {
                1.0
            } else {
                0.0
            }
        })
    };
    if let Some(c) = found.or_else(|| {
        let c = by_header()?;
        checks.push("bsn: taken by its header only; most values fail the 11-proof: if the sample was made anonymous, check with a real export".into());
        Some(c)
    }) {
        let p = &ctx.profiles[c];
        let mut ev = format!("{} values pass the 11-proof", pct(p.bsn_hits, p.non_empty));
        if p.bsn_padded > 0 {
            ev.push_str(&format!("; {} have 8 digits (padded)", p.bsn_padded));
        }
        ctx.take(out, Target::Bsn, c, ev);
    }
}

/// The gender column by its value set; its map names only known codes.
fn gender(ctx: &mut Ctx<'_>, out: &mut Vec<Guess>, checks: &mut Vec<String>) {
    let found = ctx.best(|c, p| {
        let hint = hinted(ctx.name(c), GENDER);
        let hits = if hint {
            p.gender_hits.max(p.gender_numeric)
        } else {
            p.gender_hits
        };
        // A gender header lets a few stray codes through (they fall to
        // "unknown"); without one, the values alone must say it.
        let needed = if hint { 0.5 } else { 0.9 };
        if p.rate(hits) < needed || p.distinct > 8 || p.distinct < 2 && !hint {
            return 0.0;
        }
        p.rate(hits) + if hint { 1.0 } else { 0.0 }
    });
    let Some(c) = found else {
        return;
    };
    let numeric = ctx.profiles[c].gender_hits < ctx.profiles[c].gender_numeric;
    let vocab = if numeric {
        GENDER_NUMERIC
    } else {
        GENDER_CODES
    };
    let mut map: Vec<(String, &'static str)> = Vec::new();
    let mut unmapped = std::collections::HashSet::new();
    for row in &ctx.sample.rows {
        let v = row[c].as_str();
        if v.is_empty() || map.iter().any(|(k, _)| k == v) {
            continue;
        }
        match vocab.iter().find(|(code, _)| *code == v.to_lowercase()) {
            Some((_, g)) => map.push((v.to_string(), g)),
            None => {
                unmapped.insert(v.to_string());
            }
        }
    }
    map.sort();
    let p = &ctx.profiles[c];
    let hits = if numeric {
        p.gender_numeric
    } else {
        p.gender_hits
    };
    let ev = format!(
        "{} values are gender codes; {} codes in the map",
        pct(hits, p.non_empty),
        map.len()
    );
    if numeric {
        checks.push("gender: the codes are numbers, read as ISO 5218 (1 male, 2 female): check the CMS's meaning".into());
    }
    if !unmapped.is_empty() {
        checks.push(format!("gender: {} other value(s) of the column are not in the map and fall to \"unknown\"; add them to the map if they mean something", unmapped.len()));
    }
    ctx.take(out, Target::Gender, c, ev);
    if let Some(g) = out.last_mut() {
        g.map = map;
    }
}

fn decision(ctx: &mut Ctx<'_>) -> Option<Decision> {
    let c = ctx.best(|c, p| {
        p.yes_no.map_or(0.0, |_| {
            1.0 + if hinted(ctx.name(c), DECISION) {
                1.0
            } else {
                0.0
            }
        })
    })?;
    let pair = YES_NO[ctx.profiles[c].yes_no?];
    // As the export writes it: the first spelling of each code.
    let spelled = |code: &str| {
        ctx.sample
            .rows
            .iter()
            .map(|r| r[c].as_str())
            .find(|v| v.to_lowercase() == code)
            .map_or_else(|| code.to_uppercase(), str::to_string)
    };
    let (yes, no) = (spelled(pair.0), spelled(pair.1));
    let p = &ctx.profiles[c];
    let n_yes = ctx.sample.rows.iter().filter(|r| r[c] == yes).count();
    ctx.used[c] = true;
    Some(Decision {
        column: c,
        evidence: format!("two values, {} records say yes", pct(n_yes, p.non_empty)),
        yes,
        no,
    })
}

/// Codes, not text: few spaces, filled, and repeating (one professional has
/// many cases), with a professional's word in the header counting most.
fn professional_id(ctx: &mut Ctx<'_>, out: &mut Vec<Guess>) {
    let found = ctx.best(|c, p| {
        let name = ctx.name(c);
        if p.filled() < 0.95
            || p.rate(p.with_space) > 0.2
            || p.rate(p.email) > 0.5
            || p.rate(p.phone) > 0.5
            || last_hinted(name, NAME)
        {
            return 0.0;
        }
        let repeats = 1.0 - p.distinct as f64 / p.non_empty as f64;
        let hint = hinted(name, PROFESSIONAL);
        if !hint && repeats < 0.3 {
            return 0.0;
        }
        repeats + if hint { 2.0 } else { 0.0 } + p.rate(p.with_digit) * 0.5
    });
    if let Some(c) = found {
        let p = &ctx.profiles[c];
        let ev = format!("{} distinct codes over {} records", p.distinct, p.non_empty);
        ctx.take(out, Target::ProfessionalId, c, ev);
    }
}

/// Filled and (nearly) unique in every record: the case's number. A case
/// with two professionals is listed twice, so one in ten may repeat.
fn case_ref(ctx: &mut Ctx<'_>, out: &mut Vec<Guess>) {
    let found = ctx.best(|c, p| {
        let name = ctx.name(c);
        let distinct = p.rate(p.distinct);
        if p.filled() < 0.98 || distinct < 0.9 || p.rate(p.with_space) > 0.2 {
            return 0.0;
        }
        if [FAMILY, GIVEN, INITIALS, PREFIX, EMAIL, PHONE]
            .iter()
            .any(|h| last_hinted(name, h))
        {
            return 0.0;
        }
        distinct + if hinted(name, CASE) { 1.0 } else { 0.0 } + p.rate(p.with_digit)
    });
    if let Some(c) = found {
        let p = &ctx.profiles[c];
        let ev = format!("{} distinct values in {} records", p.distinct, p.rows);
        ctx.take(out, Target::CaseRef, c, ev);
    }
}
