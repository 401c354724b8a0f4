//! A record's keys, read from its resources: the paths of api-sources.md
//! (`patient.birthDate`, `patient.identifier[system=URI].value`) and the
//! computed keys the default fields use (Dutch name parts, the care
//! manager's id, name and contact).

use super::super::json::STRUCTURED;
use super::super::tape::{Kind, Node};
use super::{
    reference_of, EPISODE_REF, FAMILY, GIVEN, INITIALS, MANAGER_EMAIL, MANAGER_ID, MANAGER_NAME,
    MANAGER_PHONE, PREFIX,
};

const OWN_NAME: &str = "http://hl7.org/fhir/StructureDefinition/humanname-own-name";
const OWN_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix";
const QUALIFIER: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier";
const AGB: &str = "http://fhir.nl/fhir/NamingSystem/agb-z";

/// The resources one record's paths start from.
#[derive(Default, Clone, Copy)]
pub struct Resources<'t, 'a> {
    pub episode: Option<Node<'t, 'a>>,
    pub patient: Option<Node<'t, 'a>>,
    pub manager: Option<Node<'t, 'a>>,
    pub practitioner: Option<Node<'t, 'a>>,
}

/// A key's value for one record, written onto `out`: nothing when absent.
/// A path's value is copied from the page; computed keys are built.
pub fn eval_into(expr: &str, steps: Option<&[Step]>, r: &Resources<'_, '_>, out: &mut String) {
    let text = match expr {
        FAMILY | PREFIX | INITIALS | GIVEN => r.patient.and_then(|p| name_part(p, expr)),
        MANAGER_ID => manager_id(r),
        MANAGER_NAME => r.practitioner.and_then(person_name),
        MANAGER_PHONE | MANAGER_EMAIL => {
            let system = if expr == MANAGER_PHONE {
                "phone"
            } else {
                "email"
            };
            [r.manager, r.practitioner]
                .into_iter()
                .flatten()
                .find_map(|m| telecom(m, system))
        }
        EPISODE_REF => r
            .episode
            .and_then(|e| e.str_at("id"))
            .map(|id| format!("EpisodeOfCare/{id}")),
        _ => {
            if let Some(s) = steps {
                path_into(s, r, out);
            }
            return;
        }
    };
    if let Some(t) = text {
        out.push_str(&t);
    }
}

/// A key's value for one record: empty when absent.
#[cfg(test)]
pub fn eval(expr: &str, steps: Option<&[Step]>, r: &Resources<'_, '_>) -> String {
    let mut out = String::new();
    eval_into(expr, steps, r, &mut out);
    out
}

/// The patient's official name (else the first), and the part asked for.
fn name_part(patient: Node<'_, '_>, part: &str) -> Option<String> {
    let names = patient.get("name")?.items()?;
    let name = names
        .clone()
        .find(|n| n.str_at("use") == Some("official"))
        .or_else(|| names.clone().next())?;
    let family_ext = |url: &str| {
        name.pointer("/_family/extension")?
            .items()?
            .find(|x| x.str_at("url") == Some(url))?
            .str_at("valueString")
            .map(str::to_string)
    };
    match part {
        FAMILY => family_ext(OWN_NAME).or_else(|| name.str_at("family").map(str::to_string)),
        PREFIX => family_ext(OWN_PREFIX),
        _ => given_part(name, part == INITIALS),
    }
}

/// Initials (given names qualified `IN`, each ending in a dot) or the
/// other given names, space-separated.
fn given_part(name: Node<'_, '_>, initials_wanted: bool) -> Option<String> {
    let given = name.get("given")?.items()?;
    let quals = name.get("_given").and_then(|q| q.items());
    let mut initials = String::new();
    let mut names = Vec::new();
    for (i, g) in given.enumerate() {
        let Some(g) = g.as_str() else { continue };
        let is_initial = quals
            .clone()
            .and_then(|mut q| q.nth(i))
            .and_then(|q| q.get("extension"))
            .and_then(|x| x.items())
            .is_some_and(|mut xs| {
                xs.any(|x| {
                    x.str_at("url") == Some(QUALIFIER) && x.str_at("valueCode") == Some("IN")
                })
            });
        if is_initial {
            initials.push_str(g.trim());
            if !g.trim().ends_with('.') {
                initials.push('.');
            }
        } else {
            names.push(g.trim());
        }
    }
    let out = if initials_wanted {
        initials
    } else {
        names.join(" ")
    };
    (!out.is_empty()).then_some(out)
}

/// The care manager's AGB code, else `Practitioner/ID` (or the role's).
fn manager_id(r: &Resources<'_, '_>) -> Option<String> {
    let agb = |m: Node<'_, '_>| {
        m.get("identifier")?
            .items()?
            .find(|i| i.str_at("system") == Some(AGB))?
            .str_at("value")
            .map(str::to_string)
    };
    [r.practitioner, r.manager]
        .into_iter()
        .flatten()
        .find_map(agb)
        .or_else(|| r.practitioner.or(r.manager).map(|m| reference_of(&m)))
}

fn person_name(p: Node<'_, '_>) -> Option<String> {
    let name = p.get("name")?.items()?.next()?;
    if let Some(t) = name.str_at("text") {
        return Some(t.to_string());
    }
    let mut parts: Vec<&str> = name
        .get("given")
        .and_then(|g| g.items())
        .map(|g| g.filter_map(|n| n.as_str()).collect())
        .unwrap_or_default();
    parts.extend(name.str_at("family"));
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn telecom(m: Node<'_, '_>, system: &str) -> Option<String> {
    m.get("telecom")?
        .items()?
        .find(|t| t.str_at("system") == Some(system))?
        .str_at("value")
        .map(str::to_string)
}

/// A path of the spec's form: `episode.`, `patient.`, `manager.` or
/// `practitioner.`, then element names, `[N]` and `[member=value]`.
fn path_into(steps: &[Step], r: &Resources<'_, '_>, out: &mut String) {
    if let Some(v) = walk(steps, r) {
        write_value(v, out);
    }
}

/// The node a path reaches, if any.
fn walk<'t, 'a>(steps: &[Step], r: &Resources<'t, 'a>) -> Option<Node<'t, 'a>> {
    let (root, rest) = steps.split_first()?;
    let mut v = match root {
        Step::Name(n) if n == "episode" => r.episode?,
        Step::Name(n) if n == "patient" => r.patient?,
        Step::Name(n) if n == "manager" => r.manager?,
        Step::Name(n) if n == "practitioner" => r.practitioner?,
        _ => return None,
    };
    for step in rest {
        v = match (step, v.items()) {
            (Step::Name(n), Some(mut a)) => a.next()?.get(n)?,
            (Step::Name(n), None) => v.get(n)?,
            (Step::Index(i), Some(mut a)) => a.nth(*i)?,
            (Step::Index(0), None) => v,
            (Step::Where(k, want), Some(mut a)) => {
                a.find(|x| x.str_at(k) == Some(want.as_str()))?
            }
            (Step::Where(k, want), None) => (v.str_at(k) == Some(want.as_str())).then_some(v)?,
            _ => return None,
        };
    }
    Some(v)
}

/// A value as text: strings as they are, numbers and booleans as written,
/// `null` as nothing, a list of strings (`given`) as its parts joined, any
/// other structure as `STRUCTURED` (the mapping rejects it, naming the
/// field).
fn write_value(v: Node<'_, '_>, out: &mut String) {
    use std::fmt::Write as _;
    match v.kind() {
        Kind::Str(s) => out.push_str(s),
        Kind::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Kind::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Kind::Null => {}
        Kind::Array
            if v.items()
                .is_some_and(|mut i| i.all(|x| x.as_str().is_some())) =>
        {
            for (i, s) in v
                .items()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str())
                .enumerate()
            {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(s);
            }
        }
        _ => out.push_str(STRUCTURED),
    }
}

#[derive(Debug, PartialEq)]
pub enum Step {
    Name(String),
    Index(usize),
    Where(String, String),
}

/// Parses a path; `None` when it is not of the spec's form (the mapping
/// loader refuses such a path, naming it).
pub fn parse_path(expr: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = expr;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            let sel = &inner[..end];
            steps.push(match sel.split_once('=') {
                Some((k, v)) if !k.is_empty() => Step::Where(k.to_string(), v.to_string()),
                _ => Step::Index(sel.parse().ok()?),
            });
            rest = inner[end + 1..]
                .strip_prefix('.')
                .unwrap_or(&inner[end + 1..]);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return None;
            }
            steps.push(Step::Name(name.to_string()));
            rest = &rest[end..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
        }
    }
    Some(steps)
}

/// Whether `expr` is a key a `fhir` source can read: a computed key or a
/// path from one of the four roots.
pub fn is_valid_key(expr: &str) -> bool {
    matches!(
        expr,
        FAMILY | PREFIX | INITIALS | GIVEN | MANAGER_ID | MANAGER_NAME | MANAGER_PHONE
            | MANAGER_EMAIL | EPISODE_REF
    ) || parse_path(expr).is_some_and(|s| {
        s.len() >= 2
            && matches!(&s[0], Step::Name(n) if ["episode", "patient", "manager", "practitioner"].contains(&n.as_str()))
    })
}
