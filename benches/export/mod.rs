//! The export both benchmarks read: what `mappings/caseflow-csv.toml` reads,
//! as CaseFlow writes it (Windows-1252, `;`, CRLF), from a fixed seed so that
//! every machine benchmarks the same bytes.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use chrono::{Days, NaiveDate};
use encoding_rs::WINDOWS_1252;

/// Must equal the first line of the shipped sample (checked at start), so the
/// bench export is one the shipped mapping reads.
pub const HEADER: &str = "BSN;Achternaam;Tussenvoegsel;Voorletters;Voornamen;Geboortedatum;\
                      Geslacht;MedewerkerCode;Dossiernummer;Startdatum;Einddatum;Status;\
                      MeldenVIR;Hulpvraag";

// Family names with their prefix (Tussenvoegsel) before the last space.
const FAMILY: &str = "Jansen,de Vries,van Dijk,Öztürk,Müller,Çelik,van der Meer,Ünal,Bakker,Saïdi";
const GIVEN: &str = "Noël,Zoë,Daan,Anaïs,Sem,Emre,Fleur,Björn,Lotte";
// Only codes that have a name and a phone or e-mail in
// caseflow-medewerkers.csv, so good rows become signals.
const EMPLOYEES: [&str; 3] = ["EMP-0042", "EMP-0043", "EMP-0050"];
// Free text the mapping never reads; one holds the delimiter, so quoting is
// exercised too.
const CONCERN: &str = "|Schoolverzuim|Zorgen over thuis|\"Ruzie; één ouder weg\"";

/// Fails unless the shipped sample still has `HEADER`.
pub fn check_sample_header(root: &str) {
    let sample = fs::read(format!("{root}/samples/caseflow/export-20261128.csv")).expect("sample");
    let header = WINDOWS_1252
        .decode(sample.split(|&b| b == b'\n').next().unwrap_or_default())
        .0;
    assert_eq!(header.trim_end(), HEADER, "the sample's header changed");
}

/// The data rows of an existing export (its lines less the header).
pub fn count_rows(path: &Path) -> Option<u64> {
    let mut lines = BufReader::new(File::open(path).ok()?).split(b'\n');
    lines
        .try_fold(0u64, |n, l| l.map(|_| n + 1))
        .ok()?
        .checked_sub(1)
}

/// Streams the export to a `.tmp` name (which visync ignores) and renames it
/// when complete, so an interrupted run never leaves a short file to reuse.
/// `flawed`: about 1% bad rows and 2% without the decision to register
/// (the dry-run bench); otherwise every row is a signal (the run bench).
pub fn generate(path: &Path, rows: u64, flawed: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("csv.tmp");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    write!(out, "{HEADER}\r\n")?;
    let families: Vec<&str> = FAMILY.split(',').collect();
    let givens: Vec<&str> = GIVEN.split(',').collect();
    let concerns: Vec<&str> = CONCERN.split('|').collect();
    let mut rng = SplitMix(0x5eed);
    let mut bsns = (100_000_000u32..)
        .map(|n| n.to_string())
        .filter(|s| eleven_proof(s.as_bytes()));
    let birth0 = NaiveDate::from_ymd_opt(2005, 1, 1).expect("a date");
    let start0 = NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
    let mut line = String::new();
    for i in 0..rows {
        let mut bsn = bsns.next().expect("enough BSNs");
        // 5844 days: 1 January 2005 up to 31 December 2020.
        let mut birth = (birth0 + Days::new(rng.below(5844)))
            .format("%d-%m-%Y")
            .to_string();
        // About 1% bad rows: half with a wrong check digit (one digit off
        // always fails the 11-proof), half with a date that does not exist.
        match if flawed { i % 200 } else { 0 } {
            37 => {
                let last = bsn.pop().expect("nine digits") as u8 - b'0';
                bsn.push(char::from(b'0' + (last + 1) % 10));
            }
            137 => birth = "31-02-2014".into(),
            _ => {}
        }
        // About 2% without the decision to register: skipped, not rejected.
        let melden = if flawed && i % 50 == 11 { "N" } else { "J" };
        let name = rng.pick(&families);
        let (prefix, family) = name.rsplit_once(' ').unwrap_or(("", name));
        let given = rng.pick(&givens);
        let initial = given.chars().next().expect("a name");
        // 331 days from 1 January: the last is 27 November, the day before today.
        let start = (start0 + Days::new(rng.below(331))).format("%d-%m-%Y");
        let gender = rng.pick(&["M", "V", "X"]);
        let (employee, concern) = (rng.pick(&EMPLOYEES), rng.pick(&concerns));
        line.clear();
        let _ = write!(
            line,
            "{bsn};{family};{prefix};{initial}.;{given};{birth};{gender};{employee};D-{};{start};;\
             Actief;{melden};{concern}\r\n",
            i + 1
        );
        let (bytes, _, unmappable) = WINDOWS_1252.encode(&line);
        assert!(!unmappable, "not Windows-1252: {line}");
        out.write_all(&bytes)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(tmp, path)
}

/// The 11-proof on nine ASCII digits: 9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 (mod 11).
pub fn eleven_proof(d: &[u8]) -> bool {
    let digit = |i: usize| i32::from(d[i]) - i32::from(b'0');
    let sum = || (0..8).map(|i| (9 - i as i32) * digit(i)).sum::<i32>() - digit(8);
    d.len() == 9 && d.iter().all(u8::is_ascii_digit) && sum() % 11 == 0
}

/// A fixed-seed generator (splitmix64), so every machine benchmarks the same file.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}
