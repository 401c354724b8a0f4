use super::*;

fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("visync.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

const MINIMAL: &str = "[organisation]\ncode = \"01234567\"\nname = \"Test\"\n";

#[test]
fn defaults_fill_what_is_not_written() {
    let (_d, path) = write(MINIMAL);
    let c = load(&path).unwrap();
    assert_eq!(c.organisation.code, "01234567");
    assert_eq!(c.index.url, IndexUrl::Embedded);
    assert_eq!(c.index.batch_size, 200);
    assert_eq!(c.rules, Rules::default());
    assert_eq!(c.http_listen.unwrap().to_string(), "127.0.0.1:9187");
    assert_eq!(c.daemon.shutdown_grace.as_secs(), 20);
    assert_eq!(c.daemon.unhealthy_after.as_secs(), 3600);
    assert_eq!(c.sources.len(), 0);
    assert_eq!(
        c.state,
        StateUrl::Sqlite(PathBuf::from("/var/lib/visync/state.db"))
    );
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let (d, path) = write(&format!(
        "{MINIMAL}[state]\nurl = \"sqlite://state/visync.db\"\n[[sources]]\nmapping = \"m.toml\"\nwatch = \"in\"\n"
    ));
    let c = load(&path).unwrap();
    assert_eq!(c.state, StateUrl::Sqlite(d.path().join("state/visync.db")));
    assert_eq!(c.sources[0].mapping, d.path().join("m.toml"));
    assert_eq!(
        c.sources[0].watch.as_deref(),
        Some(d.path().join("in").as_path())
    );
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let (_d, path) = write(&format!("{MINIMAL}[index]\nurll = \"embedded\"\n"));
    let e = load(&path).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.to_string().contains("unknown field `urll`"), "{e}");
    assert!(e.to_string().contains("visync.toml"), "{e}");
}

#[test]
fn plain_http_only_to_loopback() {
    let (_d, path) = write(&format!(
        "{MINIMAL}[index]\nurl = \"http://vi.example.org\"\n"
    ));
    let e = load(&path).unwrap_err();
    assert_eq!(e.key, "[index] url");
    assert!(e.message.contains("only to loopback"), "{e}");
    let (_d, path) = write(&format!(
        "{MINIMAL}[index]\nurl = \"http://127.0.0.1:8080\"\n"
    ));
    assert!(load(&path).is_ok());
}

#[test]
fn bad_values_name_their_key() {
    for (extra, key) in [
        ("[index]\nbatch_size = 900\n", "[index] batch_size"),
        (
            "[schedule]\nnotices = \"every minute\"\n",
            "[schedule] notices",
        ),
        (
            "[policy]\nmax_withdraw_fraction = 1.5\n",
            "[policy] max_withdraw_fraction",
        ),
        ("[returns.x]\nkind = \"ftp\"\n", "[returns.x] kind"),
    ] {
        let (_d, path) = write(&format!("{MINIMAL}{extra}"));
        assert_eq!(load(&path).unwrap_err().key, key, "{extra}");
    }
}

#[test]
fn only_section_key_variables_are_overrides() {
    let vars = [
        ("VISYNC_INDEX__URL", "https://vi.example"),
        ("VISYNC_CONFIG", "/etc/visync/visync.toml"),
        ("VISYNC_BIN", "/usr/bin/visync"),
        ("VISYNCTEST_CRASH_AT", "x"),
        ("VISYNC___X", "x"),
        ("PATH", "/bin"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(
        overrides(vars.into_iter()),
        vec![(
            "VISYNC_INDEX__URL".to_string(),
            "https://vi.example".to_string()
        )]
    );
}

#[test]
fn daemon_settings_at_the_top_or_in_their_section_and_listen_off() {
    let (_d, path) = write(&format!(
        "shutdown_grace_secs = 5\n{MINIMAL}[http]\nlisten = \"\"\n[daemon]\nunhealthy_after_secs = 60\n[log]\nlevel = \"debug\"\n"
    ));
    let c = load(&path).unwrap();
    assert_eq!(c.daemon.shutdown_grace.as_secs(), 5);
    assert_eq!(c.daemon.unhealthy_after.as_secs(), 60);
    assert_eq!(c.http_listen, None);
    assert_eq!(c.log_level.as_deref(), Some("debug"));
    let (_d, path) = write(&format!(
        "shutdown_grace_secs = 5\n{MINIMAL}[daemon]\nshutdown_grace_secs = 6\n"
    ));
    let e = load(&path).unwrap_err();
    assert_eq!(e.key, "shutdown_grace_secs", "{e}");
}

#[test]
fn a_word_outside_its_closed_set_is_named_with_its_line_and_key() {
    for (extra, line, key) in [
        (
            "[[sources]]\nmapping = \"m.toml\"\nwatch_mode = \"inotify\"\n",
            6,
            "[[sources]] watch_mode",
        ),
        ("[log]\nformat = \"xml\"\n", 5, "[log] format"),
        (
            "[returns.crm]\nkind = \"folder\"\npath = \"out\"\nformat = \"pdf\"\n",
            7,
            "[returns.crm] format",
        ),
    ] {
        let (_d, path) = write(&format!("{MINIMAL}{extra}"));
        let e = load(&path).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(line), key), "{e}");
        assert!(e.message.contains("unknown variant"), "{e}");
        assert!(e.to_string().starts_with("config "), "{e}");
    }
}

/// Regression (issue 10): a value the file parsed but visync cannot use
/// was named by its key only; it is named by its line too, the same as a
/// syntax error, so an operator finds it in a long config.
#[test]
fn an_unusable_value_is_named_with_its_line() {
    for (extra, line, key) in [
        ("[rules]\narchive_years = 40\n", 5, "[rules] archive_years"),
        (
            "[[sources]]\nmapping = \"a.toml\"\n[[sources]]\nmapping = \"b.toml\"\nrescan_secs = 0\n",
            8,
            "[[sources]] #2 rescan_secs",
        ),
        (
            "[index]\nbatch_size = 500\nurl = \"http://index.example.org\"\n",
            6,
            "[index] url",
        ),
    ] {
        let (_d, path) = write(&format!("{MINIMAL}{extra}"));
        let e = load(&path).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(line), key), "{e}");
        assert!(e.to_string().contains(&format!("line {line}")), "{e}");
    }
    // A value the file does not write has no line to name.
    assert_eq!(
        crate::located::line_of_key(MINIMAL, "[rules] archive_years"),
        None
    );
    assert_eq!(
        crate::located::line_of_key("x = 1\n[a]\nx = 2\n", "x"),
        Some(1)
    );
    assert_eq!(
        crate::located::line_of_key("x = 1\n[a]\nx = 2\n", "[a] x"),
        Some(3)
    );
}
