//! Birth, start and end date among the date columns: by order first (a child
//! is born before its case starts, which starts before it ends), then by how
//! filled they are (an end date is often empty) and how far back they lie,
//! with header words to break ties. Evidence is counts only.

use chrono::NaiveDate;

use super::guess::{hinted, pct, Ctx, Guess, BIRTH, END, START};
use crate::mapping::Target;

/// Rows where both columns hold a date, and of those where `a` is earlier.
fn order(ctx: &Ctx<'_>, a: usize, b: usize) -> (usize, usize) {
    let (da, db) = (&ctx.profiles[a].dates, &ctx.profiles[b].dates);
    let both: Vec<(NaiveDate, NaiveDate)> = da
        .iter()
        .zip(db)
        .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
        .collect();
    (both.len(), both.iter().filter(|(x, y)| x < y).count())
}

/// Whether `a` is before `b` in nine of ten rows that have both.
fn before(ctx: &Ctx<'_>, a: usize, b: usize) -> bool {
    let (both, earlier) = order(ctx, a, b);
    both > 0 && earlier * 10 >= both * 9
}

fn median(ctx: &Ctx<'_>, c: usize) -> Option<NaiveDate> {
    let mut d: Vec<NaiveDate> = ctx.profiles[c].dates.iter().flatten().copied().collect();
    d.sort();
    d.get(d.len() / 2).copied()
}

fn bonus(yes: bool, weight: f64) -> f64 {
    if yes {
        weight
    } else {
        0.0
    }
}

pub(super) fn dates(ctx: &mut Ctx<'_>, out: &mut Vec<Guess>, checks: &mut Vec<String>) {
    let cols: Vec<usize> = (0..ctx.profiles.len())
        .filter(|&c| {
            let p = &ctx.profiles[c];
            !ctx.used[c] && p.non_empty > 0 && p.rate(p.date_hits) >= 0.8
        })
        .collect();
    let youth = ctx.today - chrono::Days::new(30 * 366);
    let birth = pick(ctx, &cols, |ctx, c| {
        let others = cols
            .iter()
            .filter(|&&d| d != c && before(ctx, c, d))
            .count();
        let plausible = median(ctx, c).is_some_and(|m| m <= ctx.today && m >= youth);
        if !plausible {
            return 0.0;
        }
        1.0 + bonus(hinted(ctx.name(c), BIRTH), 3.0) + 2.0 * others as f64
            - bonus(hinted(ctx.name(c), END) || hinted(ctx.name(c), START), 2.0)
    });
    let rest: Vec<usize> = cols.iter().copied().filter(|&c| Some(c) != birth).collect();
    let start = pick(ctx, &rest, |ctx, c| {
        let p = &ctx.profiles[c];
        let after_birth = birth.is_some_and(|b| before(ctx, b, c));
        let earliest = rest
            .iter()
            .filter(|&&d| d != c && before(ctx, c, d))
            .count();
        1.0 + bonus(hinted(ctx.name(c), START), 3.0)
            + bonus(after_birth, 2.0)
            + bonus(p.filled() >= 0.95, 1.0)
            + earliest as f64
            - bonus(hinted(ctx.name(c), END), 3.0)
    });
    let rest: Vec<usize> = rest.into_iter().filter(|&c| Some(c) != start).collect();
    let end = pick(ctx, &rest, |ctx, c| {
        let p = &ctx.profiles[c];
        let hint = hinted(ctx.name(c), END);
        let (both, earlier) = start.map_or((0, 0), |s| order(ctx, s, c));
        let after = both > 0 && earlier * 2 >= both;
        if !(hint || after && p.filled() < 1.0) {
            return 0.0;
        }
        1.0 + bonus(hint, 3.0) + bonus(after, 2.0) + bonus(p.filled() < 1.0, 1.0)
    });
    for (target, col) in [
        (Target::BirthDate, birth),
        (Target::StartDate, start),
        (Target::EndDate, end),
    ] {
        let Some(c) = col else { continue };
        let ev = evidence(ctx, target, c, birth, start);
        ctx.take(out, target, c, ev);
        if let Some(g) = out.last_mut() {
            g.formats = ctx.profiles[c].date_formats.clone();
        }
    }
    let left = cols.iter().filter(|&&c| !ctx.used[c]).count();
    if left > 0 {
        checks.push(format!(
            "{left} other date column(s) are not mapped: check that birth, start and end went to the right ones"
        ));
    }
}

/// The free column among `cols` with the best positive score.
fn pick(ctx: &Ctx<'_>, cols: &[usize], score: impl Fn(&Ctx<'_>, usize) -> f64) -> Option<usize> {
    cols.iter()
        .map(|&c| (c, score(ctx, c)))
        .filter(|(_, s)| *s > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(c, _)| c)
}

fn evidence(
    ctx: &Ctx<'_>,
    target: Target,
    c: usize,
    birth: Option<usize>,
    start: Option<usize>,
) -> String {
    let p = &ctx.profiles[c];
    let mut ev = format!(
        "{} values are dates in {}",
        pct(p.date_hits, p.non_empty),
        p.date_formats.join(" or ")
    );
    let versus = match target {
        Target::BirthDate => start.map(|s| ("before the start date", order(ctx, c, s))),
        Target::StartDate => birth.map(|b| ("after the birth date", order(ctx, b, c))),
        _ => start.map(|s| ("not before the start date", order(ctx, s, c))),
    };
    if let Some((what, (both, earlier))) = versus {
        let n = if target == Target::EndDate {
            // An end on the start day is no contradiction.
            let (_, later) = order(ctx, c, start.unwrap_or(c));
            both - later
        } else {
            earlier
        };
        ev.push_str(&format!("; {what} in {n} of {both} records"));
    }
    if target == Target::EndDate {
        ev.push_str(&format!("; empty in {} records", p.rows - p.non_empty));
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::super::{guess::guess, Dialect, Sample};
    use crate::mapping::Target;

    /// Columns without telling names: birth, start and end by order and
    /// filling alone, whatever the column order.
    #[test]
    fn birth_start_and_end_by_order_not_by_name() {
        let rows: Vec<Vec<String>> = (0..12)
            .map(|i| {
                vec![
                    format!("2026-{:02}-01", 1 + i % 9),
                    if i % 4 == 0 {
                        format!("2027-0{}-15", 1 + i % 5)
                    } else {
                        String::new()
                    },
                    format!("{:02}-03-20{:02}", 1 + i, 8 + i),
                ]
            })
            .collect();
        let sample = Sample {
            columns: vec!["d1".into(), "d2".into(), "d3".into()],
            rows,
            dialect: Dialect::Csv {
                delimiter: b';',
                encoding: encoding_rs::UTF_8,
                encoding_why: "",
                consistent: (1, 1),
                quoted: false,
            },
            truncated: false,
        };
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let g = guess(&sample, today);
        let col = |t| g.get(t).map(|x| sample.columns[x.column].as_str());
        assert_eq!(col(Target::BirthDate), Some("d3"));
        assert_eq!(col(Target::StartDate), Some("d1"));
        assert_eq!(col(Target::EndDate), Some("d2"));
        assert_eq!(g.get(Target::BirthDate).unwrap().formats, vec!["%d-%m-%Y"]);
        assert!(g.get(Target::EndDate).unwrap().optional);
    }
}
