//! The state table (`.process-guardian/states.table`), which `status` of
//! several reads instead of one JSON file a process: it is read only for a
//! supervisor that holds its lock, only whole, and only if it is a regular
//! file of ours; the JSON stays the truth.

mod common;

use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use process_guardian::state::{RunState, table};
use serde_json::Value;

fn table_path(env: &Env) -> PathBuf {
    env.ws.join(".process-guardian/states.table")
}

/// The listing's row of `name` (a listing of several reads the table).
fn listed(env: &Env, name: &str) -> Value {
    let rows = env.status();
    assert!(rows.len() > 1, "a listing of one reads the JSON only");
    rows.into_iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} is listed"))
}

/// A record of `name` that says `restarts` where its JSON says otherwise.
fn forge(env: &Env, name: &str, restarts: u32) -> Vec<u8> {
    let mut state: RunState = serde_json::from_value(env.state_file(name)).unwrap();
    state.restarts = restarts;
    table::encode(name, &state).expect("fits")
}

fn put(path: &PathBuf, name: &str, record: &[u8]) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(record, table::offset(name)).unwrap();
}

/// Two registered, `a` started: a listing of two, one live supervisor.
fn one_running() -> Env {
    let env = Env::new();
    env.ok(&["register", "b", "sleep 300"]);
    env.launch("a", "sleep 301", &[]);
    env
}

#[test]
fn a_live_supervisors_record_is_what_the_listing_shows() {
    let env = one_running();
    let row = listed(&env, "a");
    let single = env.status_of("a");
    for field in ["state", "pid", "supervisor_pid", "restarts", "desired"] {
        assert_eq!(
            row[field], single[field],
            "{field}: the table and the JSON agree"
        );
    }
    assert_eq!(row["state"], "running");
    assert!(
        fs::metadata(table_path(&env)).unwrap().permissions().mode() & 0o077 == 0,
        "private"
    );

    // A record that differs from the JSON is read: the listing uses the table.
    let forged = forge(&env, "a", 77);
    put(&table_path(&env), "a", &forged);
    assert_eq!(listed(&env, "a")["restarts"], 77);
    assert_eq!(env.status_of("a")["restarts"], 0, "one name reads the JSON");

    // One byte off anywhere, and the JSON is read instead.
    for at in [0, 5, forged.len() / 2, forged.len() - 1] {
        let mut torn = forged.clone();
        torn[at] ^= 0x40;
        put(&table_path(&env), "a", &torn);
        assert_eq!(listed(&env, "a")["restarts"], 0, "damaged at {at}");
    }

    // Its supervisor writes the truth back with its next state.
    put(&table_path(&env), "a", &forged);
    env.ok(&["restart", "a"]);
    let row = listed(&env, "a");
    assert_eq!(row["state"], "running");
    assert_eq!(row["pid"], env.status_of("a")["pid"]);
    assert_ne!(row["restarts"], 77, "a new supervisor's record is its own");
}

#[test]
fn a_listing_leaves_the_tables_access_time_alone() {
    // Each read writing the table's atime made a listing's reads cost
    // several times their copy.
    let env = one_running();
    let long_ago = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let age = |path: &PathBuf| {
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_times(fs::FileTimes::new().set_accessed(long_ago))
            .unwrap();
    };
    let accessed = |path: &PathBuf| fs::metadata(path).unwrap().accessed().unwrap();
    // A plain read beside it writes the atime (relatime: it is older than
    // the mtime), unless the filesystem is mounted noatime.
    let plain = env.ws.join("plain");
    fs::write(&plain, b"x").unwrap();
    age(&plain);
    fs::read(&plain).unwrap();
    if accessed(&plain) == long_ago {
        eprintln!("skipped: this filesystem does not write access times");
        return;
    }
    let path = table_path(&env);
    age(&path);
    assert_eq!(listed(&env, "a")["state"], "running");
    assert_eq!(
        accessed(&path),
        long_ago,
        "the listing wrote the table's atime"
    );
}

#[test]
fn the_record_of_a_supervisor_that_is_gone_is_never_read() {
    let env = one_running();
    let sup = env.supervisor_pid("a");
    let command = env.pid_of("a").unwrap();
    put(&table_path(&env), "a", &forge(&env, "a", 77));
    assert_eq!(listed(&env, "a")["restarts"], 77);
    // No other supervisor lives to revive it (no warden, no cron).
    kill(sup, "KILL");
    assert!(wait_until(Duration::from_secs(10), || !alive(sup)));
    let row = listed(&env, "a");
    assert_eq!(row["state"], "dead", "{row}");
    assert_eq!(
        row["restarts"], 0,
        "the dead supervisor's record was read: {row}"
    );
    kill(command, "KILL");
}

#[test]
fn a_table_of_another_user_or_through_a_symlink_is_never_used() {
    let env = one_running();
    let path = table_path(&env);
    let forged = forge(&env, "a", 77);
    put(&path, "a", &forged);
    assert_eq!(
        listed(&env, "a")["restarts"],
        77,
        "the forged record is read"
    );

    // Owned by another user, or writable by others: the JSON is read.
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    assert_eq!(
        listed(&env, "a")["restarts"],
        0,
        "a table of nobody's was read"
    );
    std::os::unix::fs::chown(&path, Some(process_guardian::fsutil::euid()), None).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(
        listed(&env, "a")["restarts"],
        0,
        "a table others can write was read"
    );

    // A symlink in its place, to a file of ours holding the forged record:
    // neither read nor written through, by the listing or by supervisors
    // started after it was planted.
    env.ok(&["stop", "a"]);
    let elsewhere = env.ws.join("elsewhere");
    fs::rename(&path, &elsewhere).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
    put(&elsewhere, "a", &forged);
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    let before = fs::read(&elsewhere).unwrap();
    env.ok(&["start", "a"]);
    assert_eq!(listed(&env, "a")["restarts"], 0, "read through a symlink");
    env.ok(&["restart", "a"]);
    env.ok(&["stop", "a"]);
    assert!(
        fs::read(&elsewhere).unwrap() == before,
        "written through a symlink"
    );
    env.ok(&["start", "a"]);
    assert!(
        fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(listed(&env, "a")["state"], "running");
}
