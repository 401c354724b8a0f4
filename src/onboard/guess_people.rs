//! The people in a record: the child's names, by header words (a name's
//! values prove nothing about which name it is), and the professional's
//! name, phone and e-mail, by header words and by following the
//! professional's code (one value per code). Evidence is counts only.

use super::guess::{
    hinted, last_hinted, pct, Ctx, Guess, EMAIL, FAMILY, GIVEN, INITIALS, NAME, PHONE, PREFIX,
    PROFESSIONAL,
};
use super::profile::words;
use crate::mapping::Target;

/// The child's names, by header words; not a professional's.
pub(super) fn names(ctx: &mut Ctx<'_>, out: &mut Vec<Guess>, checks: &mut Vec<String>) {
    for (target, hints) in [
        (Target::FamilyName, FAMILY),
        (Target::NamePrefix, PREFIX),
        (Target::Initials, INITIALS),
        (Target::GivenNames, GIVEN),
    ] {
        let found = ctx.best(|c, p| {
            let name = ctx.name(c);
            if !last_hinted(name, hints) || hinted(name, PROFESSIONAL) {
                return 0.0;
            }
            0.5 + p.rate(p.letters)
        });
        let found = found.or_else(|| {
            // A bare "Naam"/"Name" is the family name when nothing says so.
            (target == Target::FamilyName)
                .then(|| {
                    ctx.best(|c, p| {
                        let w = words(ctx.name(c));
                        let bare = w.len() <= 2 && last_hinted(ctx.name(c), NAME);
                        if bare && !hinted(ctx.name(c), PROFESSIONAL) && p.rate(p.letters) > 0.8 {
                            0.5
                        } else {
                            0.0
                        }
                    })
                })
                .flatten()
        });
        if let Some(c) = found {
            let p = &ctx.profiles[c];
            let ev = format!(
                "by its header; {} values are letters only",
                pct(p.letters, p.non_empty)
            );
            if target == Target::GivenNames && last_hinted(ctx.name(c), &["roepnaam"]) {
                checks.push("given_names: a roepnaam is what a child is called, not its given names; map the given names if the export has them".into());
            }
            ctx.take(out, target, c, ev);
        }
    }
}

/// The professional's name, phone and e-mail: columns that say so, or
/// whose values follow the professional's code (one value per code).
pub(super) fn contact(ctx: &mut Ctx<'_>, out: &mut Vec<Guess>) {
    let pid = out
        .iter()
        .find(|g| g.target == Target::ProfessionalId)
        .map(|g| g.column);
    for (target, hints) in [
        (Target::ProfessionalEmail, EMAIL),
        (Target::ProfessionalPhone, PHONE),
        (Target::ProfessionalName, NAME),
    ] {
        let found = ctx.best(|c, p| {
            let name = ctx.name(c);
            let shaped = match target {
                Target::ProfessionalEmail => p.rate(p.email),
                Target::ProfessionalPhone => p.rate(p.phone),
                _ => p.rate(p.letters),
            };
            let prof = hinted(name, PROFESSIONAL);
            let follows = pid.is_some_and(|k| follows(&ctx.sample.rows, k, c));
            let said = prof && (last_hinted(name, hints) || target == Target::ProfessionalName);
            if shaped < 0.9
                || !(said
                    || follows && prof
                    || follows && target != Target::ProfessionalName && last_hinted(name, hints))
            {
                return 0.0;
            }
            shaped + if said { 1.0 } else { 0.0 }
        });
        if let Some(c) = found {
            let p = &ctx.profiles[c];
            let (n, what) = match target {
                Target::ProfessionalEmail => (p.email, "e-mail addresses"),
                Target::ProfessionalPhone => (p.phone, "phone numbers"),
                _ => (p.letters, "names"),
            };
            let mut ev = format!(
                "by its header; {} values look like {what}",
                pct(n, p.non_empty)
            );
            if pid.is_some_and(|k| follows(&ctx.sample.rows, k, c)) {
                ev.push_str("; one per professional code");
            }
            ctx.take(out, target, c, ev);
            if target == Target::ProfessionalName {
                // Required in effect: without a name the index refuses it.
                if let Some(g) = out.last_mut() {
                    g.optional = false;
                }
            }
        }
    }
}

/// Whether column `c` has one value per value of column `key`.
fn follows(rows: &[Vec<String>], key: usize, c: usize) -> bool {
    let mut seen: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    rows.iter()
        .filter(|r| !r[key].is_empty() && !r[c].is_empty())
        .all(|r| *seen.entry(&r[key]).or_insert(&r[c]) == r[c])
}
