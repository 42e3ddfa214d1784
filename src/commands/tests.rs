//! Unit tests of every command through the engine seam: a fake engine
//! (`engine::fake`), a fake CRIU, a fixture `/proc` with one container
//! process and a fixture freezer cgroup, and a store in a temp dir. No
//! root, no runtime, no CRIU: each test checks what the command decided
//! (its output, its exit code, what it wrote) and what it asked of its
//! engine, and, for each refusal, that nothing was changed.

use super::*;
use crate::cli::{CreateArgs, CriuFlags, InspectArgs, LsArgs, LsFormat, RmArgs, StartArgs, VerifyArgs};
use crate::commands::ls::View;
use crate::criu::CriuVersion;
use crate::engine::fake::{FakeCriu, FakeEngine, Script};
use crate::engine::{Container, Report};
use crate::output::Output;
use crate::plan::restore::{Restorer, TargetState};
use crate::store::{CheckpointMeta, InventorySummary, SCHEMA_VERSION};
use std::collections::BTreeMap;
use std::os::unix::fs::symlink;

const PID: i32 = 4242;
const CRIU: CriuVersion = CriuVersion {
    major: 4,
    minor: 1,
    sublevel: 1,
};
const SPEC: &str = r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"},
    "process": {"terminal": false, "cwd": "/", "args": ["counter"], "user": {"uid": 0, "gid": 0}}}"#;

/// A container `web` whose init is fixture process 4242, with its bundle,
/// freezer and a store, behind a fake engine and a fake CRIU.
struct World {
    tmp: tempfile::TempDir,
    engine: FakeEngine,
    criu: FakeCriu,
    root: bool,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let w = |path: &str, text: &str| {
            let path = t.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let link = |path: &str, target: &str| {
            let path = t.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            symlink(target, path).unwrap();
        };
        // ckpt itself: its namespaces, and the host's cgroup root (v1: a
        // tmpfs holding the freezer hierarchy).
        link("proc/self/ns/pid", "pid:[1]");
        link("proc/self/ns/time", "time:[1]");
        w(
            "proc/self/mountinfo",
            &format!(
                "24 1 0:28 / {} rw - tmpfs tmpfs rw\n25 24 0:34 / {} rw - cgroup cgroup rw,freezer\n",
                t.join("cgroup").display(),
                t.join("cgroup/freezer").display()
            ),
        );
        w("proc/self/cgroup", "4:freezer:/\n");
        // The container's init, in a pid and time namespace of its own.
        fixture_process(t, PID, "counter");
        w("cgroup/freezer/web/freezer.state", "THAWED\n");
        w("cgroup/freezer/web/cgroup.procs", &format!("{PID}\n"));
        w("bundle/config.json", SPEC);
        std::fs::create_dir_all(t.join("bundle/rootfs")).unwrap();
        let mut script = Script::new(&t.join("store"), "web");
        script.container = Some(Container {
            id: "web".into(),
            runtime: crate::engine::RuntimeKind::Runc,
            runtime_root: t.join("run/runc"),
            init_pid: PID,
            init_start: 777,
            bundle: t.join("bundle"),
            rootfs: t.join("bundle/rootfs"),
            spec_path: t.join("bundle/config.json"),
            external_descriptors: vec![],
            cgroup_paths: BTreeMap::new(),
        });
        script.restored_pid = PID;
        World {
            engine: FakeEngine::new(script),
            criu: FakeCriu::new(CRIU),
            root: true,
            tmp,
        }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.tmp.path().join(rel)
    }

    fn script(&mut self) -> &mut Script {
        &mut self.engine.script
    }

    fn ctx(&self) -> Context {
        Context {
            store_root: self.path("store"),
            runtime_roots: vec![self.path("run/runc")],
            proc: ProcRoot::new(self.path("proc")),
            cgroup_root: self.path("cgroup"),
            quiet: false,
            engines: Box::new(self.engine.clone()),
            criu: Box::new(self.criu.clone()),
            root: self.root,
            // The watchdog helper: a stand-in that reads nothing and exits.
            exe: Some("/bin/true".into()),
        }
    }

    fn store(&self) -> Store {
        Store::open_with(&self.path("store"), &ProcRoot::new(self.path("proc"))).unwrap()
    }

    fn freezer(&self) -> String {
        std::fs::read_to_string(self.path("cgroup/freezer/web/freezer.state")).unwrap()
    }

    /// Publishes checkpoint `name` of `web` as `create` would have.
    fn checkpoint(&self, name: &str) {
        let store = self.store();
        let staging = store.begin("web", name).unwrap();
        staging.write_file("inventory.img", b"inv").unwrap();
        staging.write_file("pstree.img", b"tree").unwrap();
        staging.write_file("pages-1.img", &[7u8; 4096]).unwrap();
        staging.publish(self.meta(name)).unwrap();
    }

    fn meta(&self, name: &str) -> CheckpointMeta {
        CheckpointMeta {
            schema_version: SCHEMA_VERSION,
            tool: "ckpt test".into(),
            container_id: "web".into(),
            name: name.into(),
            runtime: "runc".into(),
            runtime_root: Some(self.path("run/runc")),
            bundle: Some(self.path("bundle")),
            rootfs: Some(self.path("bundle/rootfs")),
            spec: serde_json::from_str(SPEC).unwrap(),
            inventory: InventorySummary {
                process_count: 1,
                fd_count: 3,
                anon_rss_bytes: 0,
                processes: vec![(1, "counter".into())],
            },
            criu_version: "4.1.1".into(),
            kernel: "6".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            frozen_ms: 3,
            dump_ms: 9,
            size_bytes: 0,
            options: Default::default(),
            descriptors: vec![],
            files: Default::default(),
            imported: None,
            incremental: None,
        }
    }
}

/// A fixture process `pid` named `comm`, pid 1 of its own pid namespace,
/// with stdio `/dev/null` and a pipe, in the freezer cgroup `/web`.
fn fixture_process(t: &std::path::Path, pid: i32, comm: &str) {
    let dir = t.join(format!("proc/{pid}"));
    for sub in ["ns", "fd", "fdinfo", "root"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    symlink("pid:[2]", dir.join("ns/pid")).unwrap();
    symlink(format!("time:[{pid}]"), dir.join("ns/time")).unwrap();
    let w = |file: &str, text: &str| std::fs::write(dir.join(file), text).unwrap();
    w(
        "stat",
        &format!("{pid} ({comm}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0"),
    );
    w("status", &format!("Name:\t{comm}\nNSpid:\t{pid}\t1\n"));
    w("comm", &format!("{comm}\n"));
    w("cmdline", &format!("/bin/{comm}\0"));
    w("mountinfo", "300 200 0:50 / / rw - overlay overlay rw\n");
    w("cgroup", "4:freezer:/web\n");
    for (fd, target) in [(0, "/dev/null"), (1, "pipe:[5]"), (2, "pipe:[5]")] {
        symlink(target, dir.join(format!("fd/{fd}"))).unwrap();
        w(&format!("fdinfo/{fd}"), "pos:\t0\nflags:\t02\nmnt_id:\t300\n");
    }
}

fn criu_flags() -> CriuFlags {
    CriuFlags::default()
}

fn create_args(name: &str, leave_running: bool) -> CreateArgs {
    CreateArgs {
        checkpoint_dir: None,
        leave_running,
        incremental: false,
        retain: None,
        criu: criu_flags(),
        json: false,
        print_stats: false,
        keep: false,
        all: false,
        latest: false,
        container: Some("web".into()),
        name: Some(name.into()),
        export: None,
        archive: Default::default(),
    }
}

fn start_args(checkpoint: &str, name: Option<&str>) -> StartArgs {
    StartArgs {
        checkpoint_dir: None,
        checkpoint: Some(checkpoint.into()),
        name: name.map(str::to_string),
        import: None,
        import_flags: Default::default(),
        json: false,
        print_stats: false,
        tcp_close: false,
        container: Some("web".into()),
    }
}

/// Runs a command; its output and its exit code.
fn run(f: impl FnOnce(&mut Output) -> Result<(), Error>) -> (String, u8, String) {
    let mut out = Output::new(false);
    let result = f(&mut out);
    let message = result
        .as_ref()
        .err()
        .map(|e| crate::error::chain(e))
        .unwrap_or_default();
    (
        out.text().to_string(),
        crate::error::exit_status(result.as_ref().err()),
        message,
    )
}

// ------------------------------------------------------------- create --

#[test]
fn create_dumps_publishes_then_has_the_engine_stop_the_container() {
    let w = World::new();
    let (text, code, err) = run(|out| create::run(&w.ctx(), &create_args("n1", false), out));
    assert_eq!(code, 0, "{err}");
    assert!(
        text.starts_with("checkpoint n1 of web created: ") && text.trim_end().ends_with("; container stopped"),
        "{text}"
    );
    let entry = w.store().load("web", "n1").unwrap();
    w.store().verify(&entry).unwrap();
    let meta = entry.meta.unwrap();
    assert_eq!((meta.runtime.as_str(), meta.options.leave_running), ("runc", false));
    assert_eq!(
        meta.descriptors,
        ["/dev/null", "pipe:[5]", "pipe:[5]"],
        "the init's stdio as /proc shows it"
    );
    assert_eq!(meta.inventory.processes, vec![(1, "counter".to_string())]);
    let calls = w.engine.calls();
    assert_eq!(calls, ["running web", "check_dump n1", "stop_after_dump web"]);
    // CRIU always leaves the tree running; ckpt froze it first.
    let args = &w.criu.runs()[0];
    assert!(args.contains(&"--leave-running".to_string()), "{args:?}");
    assert!(args
        .windows(2)
        .any(|a| a[0] == "--freeze-cgroup" && a[1].ends_with("cgroup/freezer/web")));
    assert_eq!(w.freezer(), "THAWED", "no freeze of ckpt's is left behind");
}

#[test]
fn create_leave_running_thaws_and_never_stops() {
    let w = World::new();
    let (text, code, err) = run(|out| create::run(&w.ctx(), &create_args("n1", true), out));
    assert_eq!(code, 0, "{err}");
    assert!(text.trim_end().ends_with("; container left running"), "{text}");
    assert!(!w.engine.calls().iter().any(|c| c.starts_with("stop_after_dump")));
    assert_eq!(w.freezer(), "THAWED");
    assert!(w.store().load("web", "n1").unwrap().meta.unwrap().options.leave_running);
}

/// issue 9: with a cgroup2 mount at the cgroup root, `create -R` refused
/// "no freezer cgroup found" because the kernel still lists the v1 freezer
/// line in `/proc/<pid>/cgroup`. The layout at the root decides now.
#[test]
fn create_on_a_cgroup_v2_root_freezes_the_unified_cgroup_despite_v1_lines() {
    let w = World::new();
    let t = w.tmp.path();
    std::fs::write(
        t.join("proc/self/mountinfo"),
        format!("24 1 0:38 / {} rw - cgroup2 cgroup2 rw\n", t.join("cgroup").display()),
    )
    .unwrap();
    std::fs::write(t.join(format!("proc/{PID}/cgroup")), "4:freezer:/\n0::/web\n").unwrap();
    let cg = t.join("cgroup/web");
    std::fs::create_dir_all(&cg).unwrap();
    std::fs::write(cg.join("cgroup.freeze"), "0\n").unwrap();
    // A plain file: once cgroup.freeze says 1, the kernel "got there".
    std::fs::write(cg.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    std::fs::write(cg.join("cgroup.procs"), format!("{PID}\n")).unwrap();

    let (text, code, err) = run(|out| create::run(&w.ctx(), &create_args("n1", true), out));
    assert_eq!(code, 0, "{err}");
    assert!(text.trim_end().ends_with("; container left running"), "{text}");
    let runs = w.criu.runs();
    let dump = runs.iter().find(|a| a[0] == "dump").expect("criu dump ran");
    let pair = |k: &str, v: &str| dump.windows(2).any(|p| p[0] == k && p[1] == v);
    assert!(pair("--freeze-cgroup", &cg.display().to_string()), "{dump:?}");
    assert!(pair("--cgroup-dump-controller", "unified"), "{dump:?}");
    assert_eq!(
        std::fs::read_to_string(cg.join("cgroup.freeze")).unwrap(),
        "0",
        "thawed after -R"
    );
    assert_eq!(w.freezer(), "THAWED\n", "the v1 freezer was never written");
}

#[test]
fn create_print_stats_carries_criu_and_phases_in_text_and_json() {
    let fixture = crate::criu::stats::parse_dump_stats(include_bytes!("../../tests/fixtures/stats-dump")).unwrap();
    let mut args = create_args("n1", true);
    args.print_stats = true;
    args.json = true;
    let w = World::new();
    let (text, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stats = &v["stats"];
    let c = &stats["container_statistics"][0];
    assert_eq!(c["id"], "web");
    assert_eq!(c["criu_statistics"]["frozen_time"], fixture.frozen_us);
    assert_eq!(c["criu_statistics"]["memdump_time"], fixture.memdump_us);
    assert_eq!(c["criu_statistics"]["memwrite_time"], fixture.memwrite_us);
    assert!(stats["ckpt_checkpoint_duration"].as_u64().unwrap() >= c["phases"]["dump"].as_u64().unwrap());
    for phase in ["preflight", "freeze", "dump", "publish", "stop"] {
        assert!(c["phases"][phase].is_u64(), "{phase}: {c}");
    }

    // Text: the same fields, as path: value lines after the result line.
    args.json = false;
    let w = World::new();
    let (text, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("checkpoint n1 of web created: "), "{text}");
    let frozen = format!(
        "container_statistics[0].criu_statistics.frozen_time: {}",
        fixture.frozen_us
    );
    assert!(text.lines().any(|l| l == frozen), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("container_statistics[0].phases.publish: ")),
        "{text}"
    );

    // Without the flag: no statistics.
    let w = World::new();
    let mut args = create_args("n1", true);
    args.json = true;
    let (text, _, _) = run(|out| create::run(&w.ctx(), &args, out));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v.get("stats").is_none(), "{v}");
}

fn listed(id: &str, secs: u64) -> crate::plan::select::Listed {
    crate::plan::select::Listed {
        id: id.into(),
        runtime: crate::engine::RuntimeKind::Runc,
        created: Some(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)),
    }
}

#[test]
fn create_all_goes_on_past_a_failure_and_its_code_says_so() {
    let mut w = World::new();
    // "gone" (the oldest) exits before its create finds it; "web" runs.
    w.script().listed = vec![listed("web", 20), listed("gone", 10)];
    w.script().gone.insert("gone".into());
    let mut args = create_args("n1", true);
    (args.all, args.container, args.name) = (true, Some("n1".into()), None);
    let (text, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 4, "the one failure's code: {err}");
    assert_eq!(err, "1 of 2 container(s) were not checkpointed (see each above)");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one line per container, oldest first: {text}");
    assert!(
        lines[0].starts_with("checkpoint n1 of gone not created (exit 4): no container \"gone\""),
        "{text}"
    );
    assert!(lines[1].starts_with("checkpoint n1 of web created: "), "{text}");
    assert!(
        w.store().load("web", "n1").is_ok(),
        "web was checkpointed after the failure"
    );
    let calls = w.engine.calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("running ")).collect::<Vec<_>>(),
        ["running gone", "running web"]
    );

    // JSON: one object per container, in an array.
    let w = World::new();
    let mut w = w;
    w.script().listed = vec![listed("web", 20), listed("gone", 10)];
    w.script().gone.insert("gone".into());
    args.json = true;
    let (text, code, _) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 4);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v[0]["container"], "gone");
    assert_eq!(v[0]["exit_code"], 4);
    assert!(v[0]["error"].as_str().unwrap().contains("no container"), "{v}");
    assert_eq!(
        (v[1]["container"].as_str(), v[1]["name"].as_str()),
        (Some("web"), Some("n1"))
    );
    assert!(v[1]["size_bytes"].is_u64(), "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2);
}

#[test]
fn create_latest_takes_the_newest_only() {
    let mut w = World::new();
    w.script().listed = vec![listed("web", 20), listed("old", 10)];
    let mut args = create_args("n1", true);
    (args.latest, args.container, args.name) = (true, Some("n1".into()), None);
    let (text, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("checkpoint n1 of web created: "), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(!w.engine.calls().contains(&"running old".to_string()));

    // Nothing running: --latest has nothing to take (4), --all nothing to do (0).
    w.script().listed.clear();
    let (_, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 4, "{err}");
    (args.latest, args.all) = (false, true);
    let (text, code, _) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!((code, text.as_str()), (0, "no running containers\n"));
}

#[test]
fn create_all_or_latest_with_a_container_is_a_usage_error_that_asks_nothing() {
    for (all, latest) in [(true, false), (false, true)] {
        let w = World::new();
        let mut args = create_args("n1", true);
        (args.all, args.latest) = (all, latest);
        let (_, code, err) = run(|out| create::run(&w.ctx(), &args, out));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("takes the checkpoint NAME only"), "{err}");
        assert!(w.engine.calls().is_empty(), "{:?}", w.engine.calls());
    }
    // --export to one file for several containers.
    let w = World::new();
    let mut args = create_args("n1", false);
    (args.all, args.container, args.name) = (true, Some("n1".into()), None);
    args.export = Some(w.path("x.tar.zst"));
    let (_, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 2, "{err}");
    assert!(w.engine.calls().is_empty());
}

#[test]
fn create_refusals_change_nothing() {
    // (case, how the world differs, exit code, in the message)
    type Case = (&'static str, fn(&mut World) -> CreateArgs, u8, &'static str);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("invalid name", |_| create_args("../x", false), 2, "invalid checkpoint name"),
        ("not root", |w| { w.root = false; create_args("n1", false) }, 5, "must run as root"),
        ("no such container", |w| { w.script().container = None; create_args("n1", false) }, 4, "no container \"web\""),
        ("the engine refuses", |w| { w.script().refuse_dump = true; create_args("n1", false) }, 3, "28.0.0 cannot restore"),
        ("the preflight refuses", |w| {
            std::fs::write(w.path("bundle/config.json"), SPEC.replace("\"terminal\": false", "\"terminal\": true")).unwrap();
            create_args("n1", false)
        }, 3, "cannot checkpoint container web (nothing was frozen or changed)"),
    ];
    for (case, setup, code, phrase) in cases {
        let mut w = World::new();
        let args = setup(&mut w);
        let (text, got, err) = run(|out| create::run(&w.ctx(), &args, out));
        assert_eq!((got, text.as_str()), (code, ""), "{case}: {err}");
        assert!(err.contains(phrase), "{case}: {phrase:?} not in {err}");
        assert!(w.criu.runs().is_empty(), "{case}: CRIU ran");
        assert_eq!(w.freezer(), "THAWED\n", "{case}: the freezer was touched");
        assert!(
            !w.path("store/web/checkpoints").exists(),
            "{case}: something was published"
        );
        assert!(!w.engine.calls().iter().any(|c| c.starts_with("stop")), "{case}");
    }
}

#[test]
fn create_of_a_name_that_exists_is_refused() {
    let w = World::new();
    w.checkpoint("n1");
    let (_, code, err) = run(|out| create::run(&w.ctx(), &create_args("n1", false), out));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already has a checkpoint named \"n1\""), "{err}");
    assert!(w.criu.runs().is_empty());
}

#[test]
fn create_whose_criu_fails_keeps_the_container_and_the_log() {
    let mut w = World::new();
    w.criu.fail = true;
    let (_, code, err) = run(|out| create::run(&w.ctx(), &create_args("n1", false), out));
    assert_eq!(code, 6, "{err}");
    assert!(
        err.starts_with("container web was not changed and keeps running"),
        "{err}"
    );
    assert!(
        err.contains("dump-failed.log"),
        "the message points at the kept log: {err}"
    );
    assert!(std::fs::read_to_string(w.path("store/web/dump-failed.log"))
        .unwrap()
        .contains("Can't lookup mount"));
    assert_eq!(w.freezer(), "THAWED");
    assert!(!w.path("store/web/checkpoints/n1").exists());
    assert!(!w.engine.calls().iter().any(|c| c.starts_with("stop")));
}

#[test]
fn create_keep_keeps_the_whole_failed_dump() {
    for keep in [false, true] {
        let mut w = World::new();
        w.criu.fail = true;
        let mut args = create_args("n1", false);
        args.keep = keep;
        let (_, code, err) = run(|out| create::run(&w.ctx(), &args, out));
        assert_eq!(code, 6, "{err}");
        let kept = w.path("store/web/dump-failed");
        assert_eq!(kept.is_dir(), keep, "keep={keep}");
        assert_eq!(w.path("store/web/dump-failed.log").exists(), !keep, "keep={keep}");
        if keep {
            for f in ["dump.log", "inventory.json", "descriptors.json"] {
                assert!(kept.join(f).is_file(), "no {f} kept");
            }
            assert!(
                err.contains(&format!("log: {}", kept.join("dump.log").display())),
                "{err}"
            );
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(kept.metadata().unwrap().permissions().mode() & 0o777, 0o700);
        }
        assert!(!w.path("store/web/checkpoints/n1").exists());
        let staging = w.path("store/web/.ckpt-staging");
        assert!(
            !staging.exists() || std::fs::read_dir(&staging).unwrap().next().is_none(),
            "staging left"
        );
        assert_eq!(w.freezer(), "THAWED");

        // A second failed dump replaces what the first kept.
        if keep {
            std::fs::write(kept.join("marker"), b"old").unwrap();
            let (_, code, _) = run(|out| create::run(&w.ctx(), &args, out));
            assert_eq!(code, 6);
            assert!(kept.join("dump.log").is_file() && !kept.join("marker").exists());
        }
    }
}

#[test]
fn create_whose_stop_fails_says_where_the_checkpoint_is() {
    let mut w = World::new();
    w.script().stop_fails = true;
    let (_, code, err) = run(|out| create::run(&w.ctx(), &create_args("n1", false), out));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("checkpoint n1 is saved in"), "{err}");
    assert!(err.contains("but container web could not be stopped"), "{err}");
    w.store().verify(&w.store().load("web", "n1").unwrap()).unwrap();
}

#[test]
fn create_keeps_a_pause_the_engine_recorded() {
    let mut w = World::new();
    w.script().recorded_pause = Some(true);
    let (_, code, err) = run(|out| create::run(&w.ctx(), &create_args("n1", true), out));
    assert_eq!(code, 0, "{err}");
    assert_eq!(w.freezer(), "FROZEN", "Docker's record of a pause decides");
}

// ------------------------------------------------------------ inspect --

fn inspect_args() -> InspectArgs {
    InspectArgs {
        json: false,
        criu: criu_flags(),
        container: "web".into(),
        checkpoint: None,
    }
}

#[test]
fn inspect_of_a_checkpoint_shows_what_create_recorded() {
    let w = World::new();
    let (_, code, err) = run(|out| create::run(&w.ctx(), &create_args("n1", true), out));
    assert_eq!(code, 0, "{err}");
    let calls_before = w.engine.calls().len();
    let args = InspectArgs {
        json: true,
        checkpoint: Some("n1".into()),
        ..inspect_args()
    };
    let (text, code, err) = run(|out| inspect::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["made_by"].as_str(), v["source"].as_str()),
        (Some("ckpt"), Some("recorded"))
    );
    assert_eq!(v["criu_version"], "4.1.1");
    assert_eq!(v["options"]["leave_running"], true);
    assert_eq!(v["incremental"], false);
    let p = &v["processes"][0];
    assert_eq!(
        (p["pid"].as_i64(), p["comm"].as_str()),
        (Some(1), Some("counter")),
        "{v}"
    );
    assert!(
        p["fds"].as_array().unwrap().iter().any(|f| f["target"] == "pipe:[5]"),
        "{p}"
    );
    let kinds: Vec<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    for k in ["ckpt", "inventory", "log", "pages", "pstree", "stats"] {
        assert!(kinds.contains(&k), "no {k} in {kinds:?}");
    }
    let total: u64 = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(
        total,
        v["size_bytes"].as_u64().unwrap(),
        "the kinds add up to the checkpoint's size"
    );
    // Only the checkpoint's home was asked for: no container touched.
    assert_eq!(&w.engine.calls()[calls_before..], ["home web"]);

    let args = InspectArgs {
        checkpoint: Some("n1".into()),
        ..inspect_args()
    };
    let (text, code, _) = run(|out| inspect::run(&w.ctx(), &args, out));
    assert_eq!(code, 0);
    assert!(text.starts_with("checkpoint n1 of web (made by ckpt "), "{text}");
    assert!(text.contains("criu 4.1.1, kernel "), "{text}");
    assert!(text.contains("pid 1 (ppid -) counter: "), "{text}");
    let args = InspectArgs {
        checkpoint: Some("nope".into()),
        ..inspect_args()
    };
    let (_, code, _) = run(|out| inspect::run(&w.ctx(), &args, out));
    assert_eq!(code, 4);
}

#[test]
fn inspect_reports_and_its_verdict_decides_the_code() {
    let w = World::new();
    let (text, code, err) = run(|out| inspect::run(&w.ctx(), &inspect_args(), out));
    assert_eq!(code, 0, "{err}");
    assert!(
        text.starts_with("container web (runc, init pid 4242, bundle "),
        "{text}"
    );
    assert!(text.contains("pid 4242 (ns pid 1) counter: 3 fds"), "{text}");
    assert!(text.contains("fd   1 pipe           pipe:[5]"), "{text}");
    assert!(text.trim_end().ends_with("verdict: ok, can be checkpointed"), "{text}");

    std::fs::write(
        w.path("bundle/config.json"),
        SPEC.replace("\"terminal\": false", "\"terminal\": true"),
    )
    .unwrap();
    let (text, code, err) = run(|out| inspect::run(&w.ctx(), &inspect_args(), out));
    assert_eq!(code, 3, "{err}");
    assert!(
        text.contains("verdict: refused\n  - the container has a terminal"),
        "{text}"
    );
    assert_eq!(err, "the container cannot be checkpointed as is (1 problem(s) above)");
    assert!(!w.path("store").exists(), "inspect creates no store");
}

#[test]
fn inspect_json_and_not_found() {
    let mut w = World::new();
    let args = InspectArgs {
        json: true,
        ..inspect_args()
    };
    let (text, code, _) = run(|out| inspect::run(&w.ctx(), &args, out));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["verdict"].as_str(), v["container"]["runtime"].as_str()),
        (Some("ok"), Some("runc"))
    );
    w.script().container = None;
    let (text, code, _) = run(|out| inspect::run(&w.ctx(), &args, out));
    assert_eq!((code, text.as_str()), (4, ""));
}

// ------------------------------------------------------------------ ls --

#[test]
fn ls_lists_every_home_and_one_container() {
    let w = World::new();
    let ls = |container: Option<&str>, json| LsArgs {
        checkpoint_dir: None,
        json,
        format: None,
        container: container.map(str::to_string),
    };
    let (text, code, _) = run(|out| ls::run(&w.ctx(), &ls(None, false), out));
    assert_eq!((code, text.as_str()), (0, "no checkpoints\n"));
    w.checkpoint("n1");
    let (text, code, _) = run(|out| ls::run(&w.ctx(), &ls(None, false), out));
    assert_eq!(code, 0);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("CONTAINER            NAME"), "{text}");
    assert!(lines[1].starts_with("web                  n1   "), "{text}");
    assert!(
        lines[1].contains("3 ms") && lines[1].trim_end().ends_with("ckpt"),
        "{text}"
    );
    let (text, code, _) = run(|out| ls::run(&w.ctx(), &ls(Some("web"), true), out));
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (rows[0]["name"].as_str(), rows[0]["made_by"].as_str()),
        (Some("n1"), Some("ckpt"))
    );
    assert_eq!(w.engine.calls(), ["home web"]);
    let (_, code, err) = run(|out| ls::run(&w.ctx(), &ls(Some("a/b"), false), out));
    assert_eq!(code, 2, "{err}");
}

/// Publishes checkpoint `name` of `container` made at `created_at`.
fn checkpoint_at(w: &World, container: &str, name: &str, created_at: &str) {
    let store = w.store();
    let staging = store.begin(container, name).unwrap();
    staging.write_file("inventory.img", b"inv").unwrap();
    let mut meta = w.meta(name);
    meta.container_id = container.into();
    meta.created_at = created_at.into();
    staging.publish(meta).unwrap();
}

fn ls_args(container: Option<&str>, json: bool, format: Option<LsFormat>) -> LsArgs {
    LsArgs {
        checkpoint_dir: None,
        json,
        format,
        container: container.map(str::to_string),
    }
}

/// issue 9: `ls nosuchcontainer` said "no checkpoints" and exited 0;
/// `docker checkpoint ls` says "No such container". Exit 4 now, unless a
/// runtime or the store knows the id.
#[test]
fn ls_of_an_id_nobody_knows_is_not_found() {
    let mut w = World::new();
    let args = LsArgs {
        checkpoint_dir: None,
        json: false,
        format: None,
        container: Some("web".into()),
    };
    // (case, how the world differs, exit code, output)
    type Case = (&'static str, fn(&mut World), u8, &'static str);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("known to the runtime, no checkpoints", |_| {}, 0, "no checkpoints\n"),
        ("unknown to runtime and store", |w| w.script().container = None, 4, ""),
        ("gone from the runtime, checkpoints all removed", |w| {
            std::fs::create_dir_all(w.path("store/web/checkpoints")).unwrap();
        }, 0, "no checkpoints\n"),
    ];
    for (case, setup, code, text) in cases {
        setup(&mut w);
        let (out, got, err) = run(|out| ls::run(&w.ctx(), &args, out));
        assert_eq!((got, out.as_str()), (code, text), "{case}: {err}");
        if code == 4 {
            assert!(err.contains("no such container \"web\""), "{case}: {err}");
        }
    }
    // Checkpoints of a container gone from every runtime are still listed.
    std::fs::remove_dir_all(w.path("store/web")).unwrap();
    w.checkpoint("n1");
    let (text, code, err) = run(|out| ls::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("web                  n1")),
        "{text}"
    );
    assert!(w.script().container.is_none());
}

#[test]
fn ls_quiet_prints_names_only_oldest_first() {
    let w = World::new();
    let mut ctx = w.ctx();
    ctx.quiet = true;
    let mut out = Output::new(true);
    ls::run(&ctx, &ls_args(None, false, None), &mut out).unwrap();
    assert_eq!(out.text(), "", "no checkpoints: no news under -q");
    checkpoint_at(&w, "web", "late", "2026-03-01T00:00:00Z");
    checkpoint_at(&w, "db", "mid", "2026-02-01T00:00:00Z");
    checkpoint_at(&w, "web", "early", "2026-01-01T00:00:00Z");
    let mut out = Output::new(true);
    ls::run(&ctx, &ls_args(None, false, None), &mut out).unwrap();
    assert_eq!(out.text(), "web early\ndb mid\nweb late\n");
    let mut out = Output::new(true);
    ls::run(&ctx, &ls_args(Some("web"), false, None), &mut out).unwrap();
    assert_eq!(out.text(), "early\nlate\n");
    // JSON asked for by name wins over -q.
    let mut out = Output::new(true);
    ls::run(&ctx, &ls_args(None, false, Some(LsFormat::Json)), &mut out).unwrap();
    let rows: serde_json::Value = serde_json::from_str(out.text()).unwrap();
    let names: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["early", "mid", "late"]);
}

#[test]
fn ls_format_table_has_stable_columns_sorted_by_creation_time() {
    let w = World::new();
    checkpoint_at(&w, "web", "b", "2026-01-02T00:00:00Z");
    checkpoint_at(&w, "web", "a", "2026-01-03T00:00:00Z");
    let (text, code, _) = run(|out| ls::run(&w.ctx(), &ls_args(None, false, Some(LsFormat::Table)), out));
    assert_eq!(code, 0);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "CONTAINER            NAME                 CREATED                     SIZE    LOGICAL  EXCLUSIVE    FROZEN RUNNING BY"
    );
    assert!(
        lines[1].starts_with("web                  b                    2026-01-02T00:00:00Z "),
        "{text}"
    );
    assert!(
        lines[2].starts_with("web                  a                    2026-01-03T00:00:00Z "),
        "{text}"
    );
    assert!(lines.iter().all(|l| !l.ends_with(' ')), "no trailing blanks: {text:?}");
}

#[test]
fn ls_view_table() {
    #[rustfmt::skip]
    let cases = [
        // json, format, quiet -> view
        (false, None, false, View::Table),
        (false, Some(LsFormat::Table), false, View::Table),
        (false, None, true, View::Names),
        (false, Some(LsFormat::Table), true, View::Names),
        (true, None, false, View::Json),
        (true, None, true, View::Json),
        (false, Some(LsFormat::Json), false, View::Json),
        (false, Some(LsFormat::Json), true, View::Json),
    ];
    for (json, format, quiet, want) in cases {
        assert_eq!(
            ls::view(&ls_args(None, json, format), quiet),
            want,
            "{json} {format:?} {quiet}"
        );
    }
}

#[test]
fn ls_json_and_format_conflict() {
    use clap::Parser;
    let e = crate::cli::Cli::try_parse_from(["ckpt", "ls", "--json", "--format", "table"]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
    let c = crate::cli::Cli::try_parse_from(["ckpt", "ls", "--format", "json"]).unwrap();
    assert!(matches!(
        c.command,
        crate::cli::Command::Ls(LsArgs {
            format: Some(LsFormat::Json),
            ..
        })
    ));
}

// ------------------------------------------------------------------ rm --

#[test]
fn rm_removes_and_refuses_what_it_must() {
    let mut w = World::new();
    w.checkpoint("n1");
    let rm = |name: &str| RmArgs {
        checkpoint_dir: None,
        container: "web".into(),
        name: name.into(),
    };
    let (_, code, err) = run(|out| rm::run(&w.ctx(), &rm("nope"), out));
    assert_eq!(code, 4, "{err}");
    let (_, code, err) = run(|out| rm::run(&w.ctx(), &rm("../x"), out));
    assert_eq!(code, 2, "{err}");
    w.root = false;
    let (_, code, err) = run(|out| rm::run(&w.ctx(), &rm("n1"), out));
    assert_eq!(code, 5, "{err}");
    assert!(w.path("store/web/checkpoints/n1").is_dir(), "not removed without root");
    w.root = true;
    let (text, code, err) = run(|out| rm::run(&w.ctx(), &rm("n1"), out));
    assert_eq!((code, text.as_str()), (0, "removed checkpoint n1 of web\n"), "{err}");
    assert!(!w.path("store/web/checkpoints/n1").exists());
}

// -------------------------------------------------------------- verify --

fn verify_args(name: &str) -> VerifyArgs {
    VerifyArgs {
        json: false,
        all: false,
        repair: false,
        container: Some("web".into()),
        name: Some(name.into()),
    }
}

#[test]
fn verify_says_intact_or_names_the_damage() {
    let mut w = World::new();
    w.checkpoint("n1");
    let (text, code, err) = run(|out| verify::run(&w.ctx(), &verify_args("n1"), out));
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("checkpoint n1 of web is intact: "), "{text}");
    assert!(text.trim_end().ends_with("every checksum matches"), "{text}");
    let pages = w.path("store/web/checkpoints/n1/pages-1.img");
    std::fs::write(&pages, [8u8; 4096]).unwrap();
    let (text, code, err) = run(|out| verify::run(&w.ctx(), &verify_args("n1"), out));
    assert_eq!((code, text.as_str()), (7, ""));
    assert!(err.contains("pages-1.img: checksum mismatch"), "{err}");
    let (_, code, _) = run(|out| verify::run(&w.ctx(), &verify_args("nope"), out));
    assert_eq!(code, 4);
    w.root = false;
    let (_, code, _) = run(|out| verify::run(&w.ctx(), &verify_args("n1"), out));
    assert_eq!(code, 5);
}

#[test]
fn verify_of_a_foreign_checkpoint_depends_on_its_home() {
    let mut w = World::new();
    let dir = w.path("store/web/checkpoints/theirs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("inventory.img"), b"inv").unwrap();
    // In ckpt's store a checkpoint without ckpt.json is damaged.
    let (_, code, err) = run(|out| verify::run(&w.ctx(), &verify_args("theirs"), out));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("ckpt.json: missing"), "{err}");
    // In Docker's directory it is Docker's, if CRIU's images are there.
    w.script().home.foreign = true;
    let (_, code, err) = run(|out| verify::run(&w.ctx(), &verify_args("theirs"), out));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("pstree.img: missing (not a CRIU checkpoint)"), "{err}");
    std::fs::write(dir.join("pstree.img"), b"tree").unwrap();
    let (text, code, _) = run(|out| verify::run(&w.ctx(), &verify_args("theirs"), out));
    assert_eq!(code, 0);
    assert!(text.contains("was not made by ckpt (no checksums)"), "{text}");
}

// --------------------------------------------------------------- start --

#[test]
fn start_restores_through_the_engine_and_confirms() {
    let w = World::new();
    w.checkpoint("n1");
    let (text, code, err) = run(|out| start::run(&w.ctx(), &start_args("n1", None), out));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        text,
        format!(
            "container web restored from checkpoint n1 in 7 ms (pid {PID}); its output goes to {}\n",
            w.path("store/web/output.log").display()
        )
    );
    assert_eq!(
        w.engine.calls(),
        [
            "home web",
            "check_restore",
            "restore_facts",
            "prepare web",
            "restore web"
        ]
    );
}

#[test]
fn start_as_a_new_container() {
    let w = World::new();
    w.checkpoint("n1");
    let mut args = start_args("n1", Some("copy"));
    args.json = true;
    let (text, code, err) = run(|out| start::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["container"].as_str(), v["runtime"].as_str()),
        (Some("copy"), Some("runc"))
    );
    assert_eq!(v["restore_ms"], 7);
    assert!(w.engine.calls().contains(&"prepare copy".to_string()));
}

#[test]
fn start_refusals_prepare_nothing() {
    // (case, how the world differs, the checkpoint's name and --name, exit code, in the message)
    type Case = (
        &'static str,
        fn(&mut World),
        (&'static str, Option<&'static str>),
        u8,
        &'static str,
    );
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("invalid --name", |_| {}, ("n1", Some("a/b")), 2, "invalid container id"),
        ("no such checkpoint", |_| {}, ("nope", None), 4, "has no checkpoint named \"nope\""),
        ("not root", |w| w.root = false, ("n1", None), 5, "must run as root"),
        ("the engine's prerequisite", |w| w.script().refuse_restore = true, ("n1", None), 5, "not in experimental mode"),
        ("target running", |w| w.script().target = TargetState::Running, ("n1", None), 3,
         "container web is running; stop it first"),
        ("made by a newer CRIU", |w| w.criu.version = CriuVersion { major: 4, minor: 0, sublevel: 0 }, ("n1", None), 5,
         "newer than the installed CRIU 4.0.0"),
        ("rootfs gone", |w| { let r = w.path("bundle/rootfs"); w.script().missing.insert(r); }, ("n1", Some("copy")), 4,
         "root filesystem"),
        ("a flipped byte", |w| std::fs::write(w.path("store/web/checkpoints/n1/pages-1.img"), [8u8; 4096]).unwrap(),
         ("n1", None), 7, "pages-1.img: checksum mismatch"),
        ("no ckpt.json in ckpt's store", |w| std::fs::remove_file(w.path("store/web/checkpoints/n1/ckpt.json")).unwrap(),
         ("n1", None), 7, "ckpt.json: missing"),
    ];
    for (case, setup, (checkpoint, name), code, phrase) in cases {
        let mut w = World::new();
        w.checkpoint("n1");
        setup(&mut w);
        let (text, got, err) = run(|out| start::run(&w.ctx(), &start_args(checkpoint, name), out));
        assert_eq!((got, text.as_str()), (code, ""), "{case}: {err}");
        assert!(err.contains(phrase), "{case}: {phrase:?} not in {err}");
        let calls = w.engine.calls();
        assert!(
            !calls
                .iter()
                .any(|c| c.starts_with("prepare") || c.starts_with("restore ")),
            "{case}: {calls:?}"
        );
        assert!(
            !w.path("store/copy").exists(),
            "{case}: a refused start left the target's directory"
        );
    }
}

#[test]
fn start_whose_restore_fails_is_undone() {
    let mut w = World::new();
    w.checkpoint("n1");
    w.script().restore_fails = true;
    let (_, code, err) = run(|out| start::run(&w.ctx(), &start_args("n1", None), out));
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("nothing was started"), "{err}");
    assert!(err.contains("criu failed: type RESTORE"), "{err}");
    assert_eq!(w.engine.calls().last().unwrap(), "undo web");
}

#[test]
fn start_whose_init_is_not_the_checkpointed_one_is_not_resumed() {
    let mut w = World::new();
    w.checkpoint("n1");
    fixture_process(w.tmp.path(), 5000, "sh");
    w.script().restored_pid = 5000;
    let (_, code, err) = run(|out| start::run(&w.ctx(), &start_args("n1", None), out));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("did not resume the checkpointed processes"), "{err}");
    assert!(
        err.contains("pid 1 (counter) in the container, the running init is pid 1 (sh)"),
        "{err}"
    );
    assert!(
        !w.engine.calls().iter().any(|c| c.starts_with("undo")),
        "left for the user to see"
    );
}

#[test]
fn start_print_stats_carries_criu_and_phases_in_text_and_json() {
    let criu = crate::criu::stats::RestoreStats {
        forking_us: 30,
        restore_us: 4000,
        pages_restored: 12,
        ..Default::default()
    };
    let mut w = World::new();
    w.script().restore_stats = Some(criu);
    w.checkpoint("n1");
    let mut args = start_args("n1", Some("copy"));
    args.print_stats = true;
    args.json = true;
    let (text, code, err) = run(|out| start::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stats = &v["stats"];
    let c = &stats["container_statistics"][0];
    assert_eq!(c["id"], "copy", "the container restored into: {stats}");
    assert_eq!(c["criu_statistics"]["forking_time"], 30);
    assert_eq!(c["criu_statistics"]["restore_time"], 4000);
    assert_eq!(c["criu_statistics"]["pages_restored"], 12);
    assert_eq!(c["runtime_restore_duration"], c["phases"]["restore"]);
    let phases: u64 = ["import", "verify", "plan", "prepare", "restore", "confirm"]
        .iter()
        .map(|p| c["phases"][p].as_u64().unwrap_or_else(|| panic!("{p}: {c}")))
        .sum();
    assert!(stats["ckpt_restore_duration"].as_u64().unwrap() >= phases, "{stats}");
    assert_eq!(c["phases"]["import"], 0);

    // Text: the result line, then the same fields as path: value lines.
    args.json = false;
    let (text, code, err) = run(|out| start::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("container copy restored from checkpoint n1"), "{text}");
    for want in [
        "container_statistics[0].criu_statistics.restore_time: 4000",
        "container_statistics[0].id: copy",
    ] {
        assert!(text.lines().any(|l| l == want), "{want:?} not in {text}");
    }

    // A Docker-like engine has no CRIU statistics to give: null, not absent.
    let s = w.script();
    s.restorer = Restorer::Docker;
    s.report = Report::Docker { retries: 0 };
    s.restore_stats = None;
    s.target = TargetState::Stopped;
    args.json = true;
    args.name = None;
    let (text, code, err) = run(|out| start::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let c = &v["stats"]["container_statistics"][0];
    assert!(c["criu_statistics"].is_null(), "{v}");
    assert!(c["runtime_restore_duration"].is_u64(), "{v}");

    // Without the flag: no statistics.
    args.print_stats = false;
    let (text, _, _) = run(|out| start::run(&w.ctx(), &args, out));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v.get("stats").is_none(), "{v}");
}

#[test]
fn start_tcp_close_is_refused_for_docker_and_prepares_nothing() {
    let mut w = World::new();
    w.checkpoint("n1");
    let s = w.script();
    s.restorer = Restorer::Docker;
    s.report = Report::Docker { retries: 0 };
    s.target = TargetState::Stopped;
    let mut args = start_args("n1", None);
    args.tcp_close = true;
    let (_, code, err) = run(|out| start::run(&w.ctx(), &args, out));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--tcp-close cannot be used for a Docker container"),
        "{err}"
    );
    assert!(
        !w.engine.calls().iter().any(|c| c.starts_with("prepare")),
        "{:?}",
        w.engine.calls()
    );
    // The same start through runc/crun is planned and restored.
    w.script().restorer = Restorer::Oci;
    w.script().report = Report::Oci {
        runtime: crate::engine::RuntimeKind::Runc,
        output_log: w.path("store/web/output.log"),
    };
    let (_, code, err) = run(|out| start::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn start_of_a_foreign_checkpoint_through_a_docker_like_engine() {
    let mut w = World::new();
    let dir = w.path("store/web/checkpoints/theirs");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["inventory.img", "pstree.img"] {
        std::fs::write(dir.join(f), b"x").unwrap();
    }
    let s = w.script();
    s.restorer = Restorer::Docker;
    s.home.foreign = true;
    s.target = TargetState::Stopped;
    s.report = Report::Docker { retries: 1 };
    let (text, code, err) = run(|out| start::run(&w.ctx(), &start_args("theirs", None), out));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        text,
        format!(
            "Docker container web restored from checkpoint theirs in 7 ms (pid {PID}) after 1 retry \
             (Docker's stale-content error, moby#42900); see `docker logs web`\n"
        )
    );
    // A Docker restore of a running container needs --name.
    w.script().target = TargetState::Running;
    let (_, code, _) = run(|out| start::run(&w.ctx(), &start_args("theirs", None), out));
    assert_eq!(code, 3);
    let (_, code, err) = run(|out| start::run(&w.ctx(), &start_args("theirs", Some("c2")), out));
    assert_eq!(code, 0, "{err}");
}

// --------------------------------------------------------------- relay --

#[test]
fn relay_appends_everything_and_never_writes_through_a_link() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("output.log");
    std::fs::write(&log, b"a").unwrap();
    relay::relay(&b"bc"[..], &log).unwrap();
    assert_eq!(std::fs::read(&log).unwrap(), b"abc");
    let outside = tmp.path().join("outside");
    std::fs::write(&outside, b"keep").unwrap();
    let link = tmp.path().join("linked.log");
    symlink(&outside, &link).unwrap();
    let mut input = std::io::Cursor::new(vec![1u8; 200_000]);
    let e = relay::relay(&mut input, &link).unwrap_err();
    assert_eq!(input.position(), 200_000, "read to the end all the same");
    assert_eq!(e.exit_code(), 5, "{e}");
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
}

// ------------------------------------------------------ --checkpoint-dir --

/// issue 9: Docker's `--checkpoint-dir`. Made with `--checkpoint-dir=/x`,
/// a checkpoint is found at start, ls and rm with `/x` and with the form
/// Docker users know, `/x/<id>/checkpoints`; `--store` is never touched.
#[test]
fn checkpoint_dir_base_and_per_container_forms_name_the_same_checkpoints() {
    let w = World::new();
    let base = w.path("x");
    let per = base.join("web/checkpoints");
    let mut create = create_args("n1", true);
    create.checkpoint_dir = Some(base.clone());
    let (_, code, err) = run(|out| create::run(&w.ctx(), &create, out));
    assert_eq!(code, 0, "{err}");
    assert!(
        per.join("n1/ckpt.json").is_file(),
        "not written under DIR/<id>/checkpoints"
    );
    assert!(!w.path("store/web/checkpoints").exists(), "written into --store");

    for dir in [&base, &per] {
        let ls = LsArgs {
            checkpoint_dir: Some(dir.clone()),
            json: true,
            format: None,
            container: Some("web".into()),
        };
        let (text, code, err) = run(|out| ls::run(&w.ctx(), &ls, out));
        assert_eq!(code, 0, "{}: {err}", dir.display());
        let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(rows[0]["name"], "n1", "{}", dir.display());
    }
    let mut start = start_args("n1", None);
    start.checkpoint_dir = Some(per.clone());
    let (text, code, err) = run(|out| start::run(&w.ctx(), &start, out));
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("container web restored from checkpoint n1"), "{text}");
    // Without the flag the checkpoint is not in --store.
    let (_, code, _) = run(|out| start::run(&w.ctx(), &start_args("n1", None), out));
    assert_eq!(code, 4);

    let rm = RmArgs {
        checkpoint_dir: Some(per.clone()),
        container: "web".into(),
        name: "n1".into(),
    };
    let (text, code, err) = run(|out| rm::run(&w.ctx(), &rm, out));
    assert_eq!((code, text.as_str()), (0, "removed checkpoint n1 of web\n"), "{err}");
    assert!(!per.join("n1").exists());
}

#[test]
fn checkpoint_dir_refusals_are_usage_errors_that_change_nothing() {
    let mut w = World::new();
    // An ambiguous per-container form: DIR/web/checkpoints exists as well.
    let ambiguous = w.path("x/web/checkpoints");
    std::fs::create_dir_all(ambiguous.join("web/checkpoints")).unwrap();
    let cases: Vec<(&str, std::path::PathBuf, &str)> = vec![
        ("relative", "x".into(), "not an absolute path"),
        ("climbing out", w.path("x/../../etc"), "`.` or `..`"),
        ("the root", "/".into(), "root directory"),
        ("ambiguous", ambiguous.clone(), "ambiguous"),
    ];
    for (case, dir, words) in cases {
        let mut create = create_args("n1", true);
        create.checkpoint_dir = Some(dir.clone());
        let mut start = start_args("n1", None);
        start.checkpoint_dir = Some(dir.clone());
        for (verb, (_, code, err)) in [
            ("create", run(|out| create::run(&w.ctx(), &create, out))),
            ("start", run(|out| start::run(&w.ctx(), &start, out))),
        ] {
            assert_eq!(code, 2, "{case} {verb}: {err}");
            assert!(err.contains(words), "{case} {verb}: {err}");
        }
    }
    assert!(!w.path("store/web").exists() && !w.path("x/web/checkpoints/n1").exists());
    // Docker's checkpoints stay in Docker's directory.
    w.script().home.foreign = true;
    let mut create = create_args("n1", true);
    create.checkpoint_dir = Some(w.path("y"));
    let (_, code, err) = run(|out| create::run(&w.ctx(), &create, out));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not supported for Docker container web"), "{err}");
    assert!(!w.path("y").exists());
}
#[path = "archive_tests.rs"]
mod archive_tests;
mod error_examples;
#[path = "incremental_tests.rs"]
mod incremental_tests;
#[path = "retention_tests.rs"]
mod retention_tests;
