//! Several `visync run` instances on one PostgreSQL database (issue 13),
//! sharing one config, one drop folder and one return folder, against the
//! reference index in chaos mode, one of them SIGKILLed mid-pass and
//! started again. Always on PostgreSQL (`TEST_POSTGRES_URL`): several
//! instances are what PostgreSQL is for; a server that cannot be reached
//! fails the test.

mod common;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::pg::PgDb;
use common::*;

const OTHER: &str = "07654321";
const OTHER_TOKEN: &str = "other-token";
/// Children per wave of files; every file is a full export of the source.
const PER_FILE: usize = 20;
const FILES: usize = 8;

fn mapping() -> PathBuf {
    repo().join("tests/fixtures/cases/csv-codes/mapping.toml")
}

/// A full export of `kids`, all with professional `mw`.
fn export(kids: &[String], mw: &str) -> String {
    let mut s =
        String::from("bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir\n");
    for (i, bsn) in kids.iter().enumerate() {
        s.push_str(&format!(
            "{bsn},Kind,04-03-2012,V,{mw},Name {mw},{}@x.example,C-{i},01-11-2026,,J\n",
            mw.to_lowercase()
        ));
    }
    s
}

/// The shared installation: one config that every instance runs with,
/// and one notify socket that every instance tells when a job ended (its
/// STATUS line), which the waits below wake on.
struct Shared {
    dir: tempfile::TempDir,
    config: PathBuf,
    watch: PathBuf,
    db: PgDb,
    notify: UnixDatagram,
}

impl Shared {
    fn new(sim: &Sim) -> Shared {
        let db = PgDb::create();
        let dir = tempfile::tempdir().unwrap();
        for sub in ["in", "out", "state"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        let config = dir.path().join("visync.toml");
        std::fs::write(
            &config,
            format!(
                "[organisation]\ncode = \"{ORG}\"\nname = \"Test\"\n\n\
                 [state]\nurl = \"{}\"\nkey_file = \"state/subject.key\"\nlease_secs = 10\n\n\
                 [index]\nurl = \"{}\"\ntoken_file = \"token\"\n\n\
                 [[sources]]\nmapping = \"{}\"\nwatch = \"in\"\nsettle_secs = 0\nrescan_secs = 1\n\n\
                 [returns.codes]\nkind = \"folder\"\npath = \"out\"\nformat = \"csv\"\n\n\
                 [policy]\nmax_withdraw_fraction = 1.0\n\n\
                 [schedule]\nnotices = \"*/2 * * * * *\"\n\n[http]\nlisten = \"\"\n",
                db.url,
                sim.url(),
                mapping().display()
            ),
        )
        .unwrap();
        let watch = dir.path().join("in");
        let notify = UnixDatagram::bind(dir.path().join("notify.sock")).unwrap();
        Shared {
            dir,
            config,
            watch,
            db,
            notify,
        }
    }

    fn drop_file(&self, name: &str, content: &str) {
        let tmp = self.watch.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, self.watch.join(name)).unwrap();
    }

    fn count(&self, sql: &str) -> u64 {
        self.db.query(sql)[0][0].parse().unwrap()
    }

    /// What a failed wait shows: who holds what, what is left.
    fn describe(&self) -> String {
        [
            "SELECT * FROM instances",
            "SELECT * FROM leases",
            "SELECT * FROM file_claims",
            "SELECT name, outcome FROM files",
            "SELECT state, claimed_by, COUNT(*) FROM outbox GROUP BY state, claimed_by",
            "SELECT kind, state, COUNT(*) FROM notices GROUP BY kind, state",
        ]
        .iter()
        .map(|q| format!("{q}: {:?}", self.db.query(q)))
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// Ends every connection to the database but the one asking, as a
    /// restart of the server does.
    fn cut_connections(&self) {
        self.db.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
    }

    /// An instance, with small batches so that a pass has several,
    /// telling the shared notify socket.
    fn start(&self, env: &[(&str, &str)]) -> Daemon {
        let sock = self.dir.path().join("notify.sock");
        let mut all = vec![
            ("VISYNC_INDEX__BATCH_SIZE", "16"),
            ("NOTIFY_SOCKET", sock.to_str().unwrap()),
        ];
        all.extend_from_slice(env);
        Daemon::start_config(&self.config, &all)
    }

    fn status(&self) -> serde_json::Value {
        visync(&["status", "-c", self.config.to_str().unwrap(), "--json"]).json()
    }
}

/// Waits until `done` holds, looking again each time an instance tells
/// the shared socket that a job ended (every instance runs a job at least
/// at each rescan, every second): the test waits on what the store and the
/// folders say, never on a guess of how long it takes.
fn wait_until(site: &Shared, what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while !done() {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "not within {within:?}: {what}; the store:\n{}",
            site.describe()
        );
        site.notify.set_read_timeout(Some(left)).unwrap();
        match site.notify.recv(&mut buf) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("the notify socket: {e}"),
        }
    }
}

/// Every row of every notice file in the return folder: (notice id, kind).
fn delivered(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let path = f.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // A delivery being written is a temporary file until it is whole.
        if !(name.starts_with("visync-notices-") && name.ends_with(".csv")) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut r = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(&bytes[3..]);
        let h = r.headers().unwrap().clone();
        let col = |name: &str| h.iter().position(|x| x == name).unwrap();
        let (id, kind) = (col("notice_id"), col("kind"));
        for row in r.records() {
            let row = row.unwrap();
            out.push((row[id].to_string(), row[kind].to_string()));
        }
    }
    out
}

/// Files under `processed/`, by name.
fn processed(watch: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for day in std::fs::read_dir(watch.join("processed")).unwrap() {
        for f in std::fs::read_dir(day.unwrap().path()).unwrap() {
            names.push(f.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

#[test]
fn an_instance_killed_holding_claims_is_taken_over_and_nothing_is_lost_or_doubled() {
    let kids = bsns(PER_FILE * FILES);
    let shared_kids = &kids[..5];
    // Another organisation registers five of our children first, so that
    // our registrations make matches (notices to deliver once each).
    let other = format!("{OTHER}={OTHER_TOKEN}");
    let calm = Sim::start(&["--org", &other]);
    let b = Site::for_org(&calm, OTHER, OTHER_TOKEN, &mapping(), "");
    b.drop_file("b.csv", export(shared_kids, "EB").as_bytes());
    let rb = b.run(&["run", "--once"]);
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    let sim = Sim::restart(
        calm.stop(),
        &["--org", &other, "--chaos", "0.2", "--seed", "13"],
    );

    // Wave one: each file a full export, each a superset of the one before,
    // so that taking them out of order would withdraw children.
    let site = Shared::new(&sim);
    let wave = |from: usize, to: usize| {
        for n in from..to {
            let name = format!("export-{n:02}.csv");
            site.drop_file(&name, &export(&kids[..PER_FILE * (n + 1)], "EA"));
        }
    };
    wave(0, FILES / 2);
    // The first instance takes the source's lease and the files, and dies
    // (an abort: no destructor, no flush, like SIGKILL) when the index has
    // answered its first batch: holding the lease and that batch's claims.
    // It runs on "machine A"; the others on "machine B", where its pid
    // says nothing, so they wait for its lease to run out.
    let mut first = site.start(&[
        ("VISYNCTEST_CRASH_AT", "send-after-call:1"),
        ("VISYNCTEST_NODE", "machine-a"),
    ]);
    let died = first.child.wait().unwrap();
    assert_eq!(died.code(), None, "it died by the abort, not by exiting");
    let dead: String = site.db.query("SELECT id FROM instances")[0][0].clone();
    let held = site.count(&format!(
        "SELECT COUNT(*) FROM outbox WHERE claimed_by = '{dead}'"
    ));
    assert!(held > 0, "it died holding claims:\n{}", site.describe());
    // Wave two arrives while it is dead; two instances start at once on
    // machine B.
    wave(FILES / 2, FILES);
    let machine_b = [("VISYNCTEST_NODE", "machine-b")];
    let mut daemons: Vec<Daemon> = (0..2).map(|_| site.start(&machine_b)).collect();
    let dead_pid = first.child.id();

    // The server drops every connection (what a restart of PostgreSQL
    // does to its clients) twice while the others take over: work pauses
    // and resumes.
    site.cut_connections();
    wait_until(
        &site,
        "a file of wave two taken",
        Duration::from_secs(60),
        || site.count("SELECT COUNT(*) FROM files") > (FILES / 2) as u64,
    );
    site.cut_connections();
    // `status` shows the dead one as not seen: its lease ran out.
    let status = site.status();
    let dead_row: Vec<_> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["pid"] == dead_pid)
        .collect();
    assert_eq!(dead_row.len(), 1, "{status}");
    assert_eq!(dead_row[0]["alive"], false, "{status}");
    // It comes back on machine A as a new instance, which lets go at once
    // of what its dead predecessor still held there.
    daemons.push(site.start(&[("VISYNCTEST_NODE", "machine-a")]));

    let out = site.dir.path().join("out");
    wait_until(
        &site,
        "every file taken, the outbox empty, every notice delivered",
        Duration::from_secs(150),
        || {
            site.count("SELECT COUNT(*) FROM files") == FILES as u64
                && site.count("SELECT COUNT(*) FROM outbox") == 0
                && site.count("SELECT COUNT(*) FROM notices WHERE state <> 'delivered'") == 0
                && delivered(&out).iter().filter(|(_, k)| k == "match").count() == shared_kids.len()
        },
    );

    // Every file once: the ledger and processed/ agree, nothing waits.
    let names: Vec<String> = (0..FILES).map(|n| format!("export-{n:02}.csv")).collect();
    let ledger: Vec<String> = site
        .db
        .query("SELECT name FROM files WHERE outcome = 'processed' ORDER BY name")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ledger, names, "the ledger");
    assert_eq!(processed(&site.watch), names, "processed/");
    // Every signal at the index once, and the last export's children all
    // there: the files were taken in order.
    let stats = sim.stats();
    assert_eq!(stats["duplicate_signals"], 0, "{stats}");
    assert_eq!(
        stats["active_signals"].as_u64().unwrap(),
        (PER_FILE * FILES + shared_kids.len()) as u64,
        "{stats}"
    );
    // Every notice delivered once.
    let all = delivered(&out);
    let ids: BTreeSet<&String> = all.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), all.len(), "a notice was delivered twice");

    // `status` lists the three living instances; the dead one is gone
    // (its successor on its machine took it off); one leads the source.
    let status = site.status();
    let instances = status["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3, "{status}");
    assert!(instances.iter().all(|i| i["alive"] == true), "{status}");
    let leaders = instances
        .iter()
        .filter(|i| {
            i["leases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|j| j == "intake:codes")
        })
        .count();
    assert_eq!(leaders, 1, "{status}");
    // The same for a person: one line per instance, the leader named.
    let text = visync(&["status", "-c", site.config.to_str().unwrap()]).stdout;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("instance "))
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("leads ") && l.contains("intake:codes"))
            .count(),
        1,
        "{text}"
    );

    // A clean stop leaves the list and frees what it held at once.
    for d in daemons {
        assert_eq!(d.stop().0, 0);
    }
    assert_eq!(site.count("SELECT COUNT(*) FROM instances"), 0);
    assert_eq!(site.count("SELECT COUNT(*) FROM leases"), 0);
}

/// Three instances started at once on an empty database: the migrations
/// run once (sqlx's migrator takes an advisory lock), one subject key is
/// made and every instance holds to it.
#[test]
fn three_instances_started_at_once_on_an_empty_database_migrate_once() {
    let sim = Sim::start(&[]);
    let site = Shared::new(&sim);
    let passes: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_visync"))
                .args(["--today", TODAY, "run", "--once", "-c"])
                .arg(&site.config)
                .env_remove("RUST_LOG")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in passes {
        let out = p.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{log}");
    }
    let migrations = std::fs::read_dir(repo().join("src/store/migrations/postgres"))
        .unwrap()
        .count() as u64;
    assert_eq!(
        site.count("SELECT COUNT(DISTINCT version) FROM _sqlx_migrations"),
        migrations
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM _sqlx_migrations"),
        migrations
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM meta"),
        1,
        "one key fingerprint"
    );
    // Each pass left the list at its end.
    assert_eq!(site.count("SELECT COUNT(*) FROM instances"), 0);
}

/// `decommission` on a shared store refuses while another instance runs
/// (there is no lock file to wait on), naming it, and changes nothing.
#[test]
fn decommission_refuses_while_another_instance_runs() {
    let sim = Sim::start(&[]);
    let site = Shared::new(&sim);
    site.drop_file("export-00.csv", &export(&bsns(3), "EA"));
    let service = site.start(&[("VISYNCTEST_NODE", "machine-b")]);
    wait_until(
        &site,
        "the three registered",
        Duration::from_secs(30),
        || sim.stats()["active_signals"] == 3 && site.count("SELECT COUNT(*) FROM outbox") == 0,
    );
    let before = site.db.contents();
    let run = visync(&[
        "decommission",
        "-c",
        site.config.to_str().unwrap(),
        "--confirm",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("other instances run on this state")
            && run.stderr.contains(&format!("pid {}", service.child.id())),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats()["active_signals"], 3, "nothing withdrawn");
    assert_eq!(service.stop().0, 0);
    let after = site.db.contents();
    let signals = |c: &[String]| c.iter().find(|t| t.starts_with("signals:")).cloned();
    assert_eq!(signals(&after), signals(&before), "no signal changed");
}

/// A server that answers and refuses us (a role it does not know) and one
/// that does not answer (a closed port): a one-shot command exits 2 at
/// once, naming `[state] url` as configured and never the password; the
/// service waits for a silent server (the machines of a site come back in
/// any order after a power cut), says so, and stops at SIGTERM meanwhile.
#[test]
fn a_server_that_refuses_us_or_does_not_answer_is_named_and_waited_for_by_the_service() {
    let sim = Sim::start(&[]);
    let site = Shared::new(&sim);
    let text = std::fs::read_to_string(&site.config).unwrap();
    let password = "pw-that-must-not-show";
    std::fs::write(site.dir.path().join("db-password"), password).unwrap();
    let with_url = |url: &str| {
        let text = text.replace(
            &format!("url = \"{}\"", site.db.url),
            &format!("url = \"{url}\"\npassword_file = \"db-password\""),
        );
        assert_ne!(
            text,
            std::fs::read_to_string(&site.config).unwrap_or_default()
        );
        std::fs::write(&site.config, text).unwrap();
    };
    let mut db = url::Url::parse(&site.db.url).unwrap();
    db.set_username("visync_nobody").unwrap();
    let closed = "postgres://postgres@127.0.0.1:1/test";
    for url in [db.as_str(), closed] {
        with_url(url);
        let run = visync(&["run", "--once", "-c", site.config.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{url}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("[state] url {url}")),
            "{url}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains(password), "{}", run.stderr);
    }
    // The service waits for the silent one, and a stop ends the wait
    // (told on its own notify socket).
    let mut service = Daemon::start_config(&site.config, &[]);
    service.status("waiting for the state database");
    let (code, took) = service.stop();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
}

/// An instance stalled past its lease (stopped between planning a file
/// and writing it: a frozen VM, a swapped-out process) while another takes
/// the source over writes nothing of its plan when it wakes: the source's
/// unit of work holds to its lease. Every file once, in order.
#[test]
fn an_instance_stalled_past_its_lease_writes_nothing_when_it_wakes() {
    let sim = Sim::start(&[]);
    let site = Shared::new(&sim);
    let kids = bsns(PER_FILE * 3);
    for n in 0..3 {
        let name = format!("export-{n:02}.csv");
        site.drop_file(&name, &export(&kids[..PER_FILE * (n + 1)], "EA"));
    }
    let stalled = site.start(&[
        ("VISYNCTEST_STALL_AT", "ingest-planned"),
        ("VISYNCTEST_NODE", "machine-a"),
    ]);
    let pid = stalled.child.id();
    // It says so, then stops itself: the kernel tells its parent (this
    // test) when it has stopped.
    stalled.log_line(Duration::from_secs(30), "stopping here on purpose");
    let child = rustix::process::Pid::from_child(&stalled.child);
    let (_, status) = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::UNTRACED)
        .unwrap()
        .unwrap();
    assert!(status.stopped(), "{status:?}");
    let other = site.start(&[("VISYNCTEST_NODE", "machine-b")]);
    wait_until(
        &site,
        "the other took every file",
        Duration::from_secs(60),
        || {
            site.count("SELECT COUNT(*) FROM files") == 3
                && site.count("SELECT COUNT(*) FROM outbox") == 0
        },
    );
    let audit_before = site.count("SELECT COUNT(*) FROM audit");
    let ok = std::process::Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -CONT");
    stalled.log_line(
        Duration::from_secs(30),
        "another instance took over intake:codes",
    );
    // Nothing of the stalled plan was written: the ledger, the signals and
    // the trail are what the other instance made.
    let ledger = site
        .db
        .query("SELECT name, COUNT(*) FROM files GROUP BY name ORDER BY name");
    let names: Vec<_> = ledger
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("export-00.csv", "1"),
            ("export-01.csv", "1"),
            ("export-02.csv", "1")
        ]
    );
    assert_eq!(site.count("SELECT COUNT(*) FROM audit"), audit_before);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM signals WHERE state = 'active'"),
        (PER_FILE * 3) as u64,
        "the last export's children, none withdrawn"
    );
    assert_eq!(sim.stats()["duplicate_signals"], 0);
    for d in [stalled, other] {
        assert_eq!(d.stop().0, 0);
    }
}
