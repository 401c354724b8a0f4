//! A JeugdNet XML export (what `mappings/jeugdnet-xml.toml` reads), for the
//! dry run's memory on big XML files: each dossier carries about 800 bytes of
//! free text the mapping never reads, as real exports carry case notes, so
//! the file is about 1.1 KB a record and mostly text the reader must skip.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use chrono::{Days, NaiveDate};

use crate::export::{eleven_proof, SplitMix};

const FAMILY: [(&str, &str); 6] = [
    ("Jansen", ""),
    ("Vries", "de"),
    ("Öztürk", ""),
    ("Dijk", "van"),
    ("Çelik", ""),
    ("Meer", "van der"),
];
const GENDERS: [&str; 3] = ["M", "V", "O"];
const NOTE: &str = "Zorgen over ontwikkeling & school; één ouder weg, de ander \
                    overbelast. Afspraken met school en wijkteam, huisbezoek gepland. ";

/// The line each dossier starts with: how `count_records` finds them.
const DOSSIER: &str = "    <jn:Dossier ";

/// The dossiers of an existing export.
pub fn count_records(path: &Path) -> Option<u64> {
    let mut lines = BufReader::new(File::open(path).ok()?).split(b'\n');
    lines.try_fold(0u64, |n, l| {
        l.ok()
            .map(|l| n + u64::from(l.starts_with(DOSSIER.as_bytes())))
    })
}

/// Streams `rows` dossiers to a `.tmp` name and renames it when complete.
/// About 1% are bad (half a wrong check digit, half a date that does not
/// exist), 2% carry no decision to register, 1% are closed.
pub fn generate(path: &Path, rows: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("xml.tmp");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    out.write_all(b"<jn:Export xmlns:jn=\"urn:jeugdnet:export:2\" created=\"2026-11-28T02:00:00+01:00\">\n  <jn:Dossiers>\n")?;
    let mut rng = SplitMix(0x5eed);
    let mut bsns = (100_000_000u32..)
        .map(|n| n.to_string())
        .filter(|s| eleven_proof(s.as_bytes()));
    let note = NOTE.repeat(5);
    let mut text = String::new();
    for i in 0..rows {
        let bsn = bsns.next().expect("enough BSNs");
        text.clear();
        dossier(&mut text, i, bsn, &note, &mut rng);
        out.write_all(text.as_bytes())?;
    }
    out.write_all(b"  </jn:Dossiers>\n</jn:Export>\n")?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(tmp, path)
}

/// One dossier, as JeugdNet writes it.
fn dossier(out: &mut String, i: u64, mut bsn: String, note: &str, rng: &mut SplitMix) {
    let birth0 = NaiveDate::from_ymd_opt(2005, 1, 1).expect("a date");
    let start0 = NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
    let mut birth = (birth0 + Days::new(rng.below(5844))).to_string();
    match i % 200 {
        37 => {
            let last = bsn.pop().expect("nine digits") as u8 - b'0';
            bsn.push(char::from(b'0' + (last + 1) % 10));
        }
        137 => birth = "2014-02-31".into(),
        _ => {}
    }
    let vir = if i % 50 == 11 { "nee" } else { "ja" };
    let (family, prefix) = rng.pick(&FAMILY);
    let prefix = match prefix {
        "" => String::new(),
        p => format!(" voorvoegsel=\"{p}\""),
    };
    let gender = rng.pick(&GENDERS);
    let hv = 1 + rng.below(9);
    let start = start0 + Days::new(rng.below(331));
    let closed = i % 100 == 42;
    let (end, reason) = if closed {
        (
            " eind=\"2026-11-20\"",
            "\n      <jn:Afsluitreden>DOEL_BEREIKT</jn:Afsluitreden>",
        )
    } else {
        ("", "")
    };
    let _ = write!(
        out,
        "{DOSSIER}jn:nummer=\"JN-{n}\" vir=\"{vir}\">
      <jn:Client>
        <jn:BSN>{bsn}</jn:BSN>
        <jn:Naam achternaam=\"{family}\"{prefix} voorletters=\"A.\"/>
        <jn:Geboortedatum>{birth}</jn:Geboortedatum>
        <jn:Geslacht>{gender}</jn:Geslacht>
      </jn:Client>
      <jn:Hulpverlener code=\"HV-{hv}\">
        <jn:Naam>L. Jansen</jn:Naam>
        <jn:Email>hv{hv}@jeugdnet.example</jn:Email>
      </jn:Hulpverlener>
      <jn:Periode start=\"{start}\"{end}/>{reason}
      <jn:Hulpvraag><![CDATA[{note}]]></jn:Hulpvraag>
    </jn:Dossier>
",
        n = i + 1
    );
}
