//! The privacy officer's commands: `visync audit verify` and `visync audit
//! export` on the trail a real pass leaves (and on one changed behind
//! visync's back), and `visync subject` (right of access).

mod common;

use common::*;

fn mapping() -> std::path::PathBuf {
    repo().join("tests/fixtures/cases/csv-codes/mapping.toml")
}

#[test]
fn the_trail_verifies_exports_and_shows_a_change() {
    let sim = Sim::start(&[]);
    let site = Site::new(&sim, &mapping(), "");
    let all = bsns(5);
    let mut csv =
        String::from("bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir\n");
    for (i, b) in all.iter().enumerate() {
        csv.push_str(&format!(
            "{b},Jansen,04-03-2012,M,E1,A. Vries,a@x.example,D{i},01-11-2026,,J\n"
        ));
    }
    site.drop_file("a.csv", csv.as_bytes());
    assert_eq!(site.run(&["run", "--once"]).code, 0);

    // Export: one JSON object per line, oldest first, ids and codes only.
    let export = site.run(&["audit", "export"]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    let events: Vec<serde_json::Value> = export
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(count("register_planned"), 5);
    assert_eq!(count("register_confirmed"), 5);
    assert_eq!(count("file_taken"), 1);
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    for b in &all {
        assert!(!export.stdout.contains(b.as_str()), "a BSN in the trail");
    }
    assert!(!export.stdout.contains("Jansen"));
    let later = site.run(&["audit", "export", "--since", "2026-11-29"]);
    assert_eq!((later.code, later.stdout.as_str()), (0, ""));
    let today = site.run(&["audit", "export", "--since", TODAY]);
    assert_eq!(today.stdout, export.stdout);

    let verify = site.run(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(
        verify
            .stdout
            .contains(&format!("intact: {} events", events.len())),
        "{}",
        verify.stdout
    );

    // An event changed by hand: the chain names it.
    let third = ids[2];
    site.tamper(&format!(
        "UPDATE audit SET detail = '{{\"x\":1}}' WHERE id = {third}"
    ));
    let verify = site.run(&["audit", "verify"]);
    assert_eq!(verify.code, 1, "{}", verify.stdout);
    assert!(
        verify.stdout.contains(&format!("BROKEN at event {third}")),
        "{}",
        verify.stdout
    );
}

#[test]
fn a_removed_event_breaks_the_chain_at_the_next() {
    let sim = Sim::start(&[]);
    let site = Site::new(&sim, &mapping(), "");
    let b = &bsns(2);
    let csv = format!(
        "bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir\n\
         {},Jansen,04-03-2012,M,E1,A. Vries,a@x.example,D1,01-11-2026,,J\n\
         {},Jansen,04-03-2012,M,E1,A. Vries,a@x.example,D2,01-11-2026,,J\n",
        b[0], b[1]
    );
    site.drop_file("a.csv", csv.as_bytes());
    assert_eq!(site.run(&["run", "--once"]).code, 0);
    site.tamper("DELETE FROM audit WHERE id = 2");
    let verify = site.run(&["audit", "verify"]);
    assert_eq!(verify.code, 1, "{}", verify.stdout);
    assert!(
        verify.stdout.contains("BROKEN at event 3"),
        "{}",
        verify.stdout
    );
}

#[test]
fn without_a_store_there_is_nothing_to_verify() {
    let sim = Sim::start(&[]);
    let site = Site::new(&sim, &mapping(), "");
    let verify = site.run(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(
        verify.stderr.contains("no state store yet"),
        "{}",
        verify.stderr
    );
    match &site.pg {
        None => assert!(!site.dir.path().join("state").exists(), "nothing created"),
        Some(db) => assert_eq!(
            db.query(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ),
            vec![vec!["0".to_string()]],
            "nothing created"
        ),
    }
}

const HEADER: &str = "bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir";

#[test]
fn subject_shows_what_is_held_about_one_child_and_nothing_else() {
    let sim = Sim::start(&[]);
    let site = Site::new(&sim, &mapping(), "");
    let b = bsns(2);
    // Child 0 with two professionals (a match), child 1 with one.
    let csv = format!(
        "{HEADER}\n\
         {0},Jansen,04-03-2012,M,E1,A. Vries,a@x.example,D1,01-11-2026,,J\n\
         {0},Jansen,04-03-2012,M,E2,B. Bakker,b@x.example,D2,01-11-2026,,J\n\
         {1},Pietersen,05-06-2013,V,E1,A. Vries,a@x.example,D3,01-11-2026,,J\n",
        b[0], b[1]
    );
    site.drop_file("a.csv", csv.as_bytes());
    assert_eq!(site.run(&["run", "--once"]).code, 0);

    let run = site.run(&["subject", "--bsn", &b[0], "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    let signals = v["signals"].as_array().unwrap();
    let mut cases: Vec<&str> = signals
        .iter()
        .map(|s| s["case_ref"].as_str().unwrap())
        .collect();
    cases.sort();
    assert_eq!(cases, ["D1", "D2"]);
    for s in signals {
        assert_eq!(s["state"], "active");
        assert_eq!(s["outbox"], serde_json::json!([]), "sent: nothing waits");
        let kinds: Vec<&str> = s["audit"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["register_planned", "register_confirmed"]);
        let notices: Vec<&str> = s["notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["kind"].as_str().unwrap())
            .collect();
        assert!(
            notices.contains(&"match") && notices.contains(&"notify_subject"),
            "{notices:?}"
        );
    }
    assert_eq!(v["objection"], serde_json::Value::Null);
    // Masked, and nothing about the other child.
    assert!(!run.stdout.contains(b[0].as_str()), "{}", run.stdout);
    assert_eq!(v["subject"], format!("*****{}", &b[0][5..]));
    assert!(!run.stdout.contains("D3") && !run.stdout.contains("Pietersen"));

    // A child nobody registered: nothing held, exit 1.
    let none = site.run(&["subject", "--bsn", &bsns(3)[2]]);
    assert_eq!(none.code, 1, "{}", none.stdout);
    assert!(none.stdout.contains("0 signal(s) held"), "{}", none.stdout);
    // Not a BSN: a usage error that does not repeat it in clear.
    let bad = site.run(&["subject", "--bsn", "123456783"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("*****6783") && !bad.stderr.contains("123456783"),
        "{}",
        bad.stderr
    );
}

/// A site whose one registration (child "Jansen") waits in the outbox,
/// never tried: the index refuses its token, which stops sending at once.
fn waiting_registration(sim: &Sim) -> (Site, String) {
    let site = Site::for_org(sim, ORG, "not-the-token", &mapping(), "");
    let b = bsns(1).remove(0);
    let csv =
        format!("{HEADER}\n{b},Jansen,04-03-2012,M,E1,A. Vries,a@x.example,D1,01-11-2026,,J\n");
    site.drop_file("a.csv", csv.as_bytes());
    assert_eq!(site.run(&["run", "--once"]).code, 1);
    (site, b)
}

#[test]
fn subject_shows_the_clear_data_still_waiting_to_be_sent() {
    let sim = Sim::start(&[]);
    let (site, b) = waiting_registration(&sim);
    let b = &b;
    let v = site.run(&["subject", "--bsn", b, "--json"]).json();
    let queued = &v["signals"][0]["outbox"][0];
    assert_eq!(queued["action"], "register");
    assert_eq!(queued["payload"]["subject"]["family_name"], "Jansen");
    assert_eq!(queued["payload"]["subject"]["bsn"], b.as_str());
    assert_eq!(v["signals"][0]["state"], "pending");
}

/// Child 0 with professionals E1 and E2, child 1 with E1; `name` as the
/// family name (a new name makes new file content).
fn two_children(b: &[String], name: &str) -> String {
    format!(
        "{HEADER}\n\
         {0},{name},04-03-2012,M,E1,A. Vries,a@x.example,D1,01-11-2026,,J\n\
         {0},{name},04-03-2012,M,E2,B. Bakker,b@x.example,D2,01-11-2026,,J\n\
         {1},Pietersen,05-06-2013,V,E1,A. Vries,a@x.example,D3,01-11-2026,,J\n",
        b[0], b[1]
    )
}

#[test]
fn an_objection_withdraws_everywhere_and_keeps_the_child_out() {
    let sim = Sim::start(&[]);
    let site = Site::new(
        &sim,
        &mapping(),
        "\n[policy]\nmax_withdraw_fraction = 1.0\n",
    );
    let b = bsns(2);
    site.drop_file("1.csv", two_children(&b, "Jansen").as_bytes());
    assert_eq!(site.run(&["run", "--once"]).code, 0);
    assert_eq!(sim.stats()["active_signals"], 3);

    let object = site.run(&["object", "--bsn", &b[0]]);
    assert_eq!(object.code, 0, "{}", object.stderr);
    assert!(
        object.stdout.contains("2 signal(s) to withdraw") && object.stdout.contains("0 never sent"),
        "{}",
        object.stdout
    );
    assert!(
        !object.stdout.contains(b[0].as_str()),
        "masked: {}",
        object.stdout
    );
    let run = site.run(&["run", "--once"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = sim.stats();
    assert_eq!(stats["active_signals"], 1, "{stats}");
    assert_eq!(stats["archived_signals"], 0, "an objection purges: {stats}");

    // The next export still lists the child: its records are refused.
    site.drop_file("2.csv", two_children(&b, "Janssen").as_bytes());
    let run = site.run(&["run", "--once"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("planned: 0 register"), "{}", run.stderr);
    assert!(run.stderr.contains("code=\"objection\""), "{}", run.stderr);
    assert_eq!(sim.stats()["active_signals"], 1);
    let held = site.run(&["subject", "--bsn", &b[0], "--json"]).json();
    assert!(held["objection"].is_string(), "{held}");
    for s in held["signals"].as_array().unwrap() {
        assert_eq!(
            (&s["state"], &s["withdraw_reason"]),
            (&"withdrawn".into(), &"objection".into())
        );
    }

    // Taken back: the next export that lists the child registers it again.
    let undo = site.run(&["object", "--bsn", &b[0], "--undo"]);
    assert_eq!(undo.code, 0, "{}", undo.stderr);
    site.drop_file("3.csv", two_children(&b, "Jansens").as_bytes());
    let run = site.run(&["run", "--once"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("planned: 2 register"), "{}", run.stderr);
    let stats = sim.stats();
    assert_eq!(stats["active_signals"], 3, "{stats}");
    assert_eq!(stats["duplicate_signals"], 0, "{stats}");
}

#[test]
fn an_objection_drops_a_registration_never_sent() {
    let sim = Sim::start(&[]);
    let (site, b) = waiting_registration(&sim);
    let b = &b;
    let object = site.run(&["object", "--bsn", b]);
    assert!(
        object
            .stdout
            .contains("0 signal(s) to withdraw on the next pass, 1 never sent and dropped"),
        "{}",
        object.stdout
    );
    let held = site.run(&["subject", "--bsn", b, "--json"]).json();
    assert_eq!(
        held["signals"][0]["outbox"],
        serde_json::json!([]),
        "the clear data is gone"
    );
    assert_eq!(held["signals"][0]["state"], "withdrawn");
    let status = site.run(&["status", "--json"]).json();
    assert_eq!(status["queue"]["ready"], 0, "{status}");
}
