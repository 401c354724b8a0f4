//! `visync audit verify` and `visync audit export` on the trail a real pass
//! leaves, and on one changed behind visync's back.

mod common;

use common::*;

fn mapping() -> std::path::PathBuf {
    repo().join("tests/fixtures/cases/csv-codes/mapping.toml")
}

/// Runs one SQL statement on the site's state store, as someone editing it
/// by hand would.
fn tamper(site: &Site, sql: &str) {
    let db = site.dir.path().join("state/visync.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
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
    tamper(
        &site,
        &format!("UPDATE audit SET detail = '{{\"x\":1}}' WHERE id = {third}"),
    );
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
    tamper(&site, "DELETE FROM audit WHERE id = 2");
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
    assert!(!site.dir.path().join("state").exists(), "nothing created");
}
