//! The freezer against the kernel's real cgroup filesystems (root only):
//! cgroup v2 (`cgroup.freeze`/`cgroup.events`) on whatever cgroup2 mount
//! the host has (the unified hierarchy of a hybrid host, or /sys/fs/cgroup
//! on a pure v2 host), and cgroup v1 (`freezer.state`) where mounted.
//! The unit tests cover the same code over fixture files; these check that
//! the kernel answers the way the code expects.

use ckpt::cgroups::{CgroupVersion, FreezerDir};
use ckpt::freezer::{self, FreezeGuard, State};
use ckpt::mountinfo;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child cgroup holding one `sleep`, removed on drop.
struct Cgroup {
    dir: PathBuf,
    child: Child,
}

impl Cgroup {
    fn new(mount: PathBuf, version: CgroupVersion) -> Option<Cgroup> {
        let dir = mount.join(format!("ckpt-freezer-test-{}-{version:?}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let child = Command::new("sleep").arg("60").stdout(Stdio::null()).spawn().ok()?;
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).expect("move the sleep into the cgroup");
        Some(Cgroup { dir, child })
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Thaw first: a frozen sleep does not die. (cgroupfs refuses to
        // create the file of the other version, so one write is a no-op.)
        let _ = std::fs::write(self.dir.join("freezer.state"), "THAWED");
        let _ = std::fs::write(self.dir.join("cgroup.freeze"), "0");
        let _ = self.child.kill();
        let _ = self.child.wait();
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn mount_of(fstype: &str, option: Option<&str>) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo::parse(&text)
        .into_iter()
        .find(|m| m.fstype == fstype && option.is_none_or(|o| m.super_options.iter().any(|s| s == o)))
        .map(|m| m.mount_point)
}

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("freezer tests need root under CI=true");
    }
    eprintln!("!!!!!!!! SKIPPED: freezer tests need root");
    false
}

fn freeze_thaw_and_guard(mount: PathBuf, version: CgroupVersion) {
    let cg = Cgroup::new(mount, version).expect("create a test cgroup");
    let f = FreezerDir {
        dir: cg.dir.clone(),
        version,
    };
    assert_eq!(freezer::state(&f).unwrap(), State::Thawed);

    freezer::freeze(&f, Duration::from_secs(5)).unwrap();
    assert_eq!(
        freezer::state(&f).unwrap(),
        State::Frozen,
        "the kernel reports the cgroup frozen"
    );
    freezer::thaw(&f, Duration::from_secs(5)).unwrap();
    assert_eq!(freezer::state(&f).unwrap(), State::Thawed);

    // A guard made while thawed undoes a freeze that happens under it.
    let guard = FreezeGuard::new(f.clone()).unwrap();
    freezer::freeze(&f, Duration::from_secs(5)).unwrap();
    drop(guard);
    assert_eq!(freezer::state(&f).unwrap(), State::Thawed, "the guard thawed on drop");

    // A guard made while frozen (a user-paused container) leaves it frozen.
    freezer::freeze(&f, Duration::from_secs(5)).unwrap();
    let guard = FreezeGuard::new(f.clone()).unwrap();
    drop(guard);
    assert_eq!(
        freezer::state(&f).unwrap(),
        State::Frozen,
        "a paused cgroup stays paused"
    );
    assert_eq!(freezer::pids(&f).unwrap(), vec![cg.child.id() as i32]);
}

#[test]
fn cgroup_v2_freeze_thaw_and_guard() {
    if !root() {
        return;
    }
    let Some(mount) = mount_of("cgroup2", None) else {
        eprintln!("!!!!!!!! SKIPPED: this host has no cgroup2 mount");
        return;
    };
    freeze_thaw_and_guard(mount, CgroupVersion::V2);
}

#[test]
fn cgroup_v1_freeze_thaw_and_guard() {
    if !root() {
        return;
    }
    let Some(mount) = mount_of("cgroup", Some("freezer")) else {
        eprintln!("!!!!!!!! SKIPPED: this host has no cgroup v1 freezer hierarchy");
        return;
    };
    freeze_thaw_and_guard(mount, CgroupVersion::V1);
}

/// ckpt's layout decision (from mountinfo) agrees with runc's own test:
/// `statfs(/sys/fs/cgroup)` is cgroup2 exactly on a pure v2 layout. Run on
/// the hybrid host and inside scripts/in-cgroup2, it sees both answers.
#[test]
fn cgroup_layout_agrees_with_statfs_of_the_cgroup_root() {
    if !root() {
        return;
    }
    let root = std::path::Path::new(ckpt::cgroups::CGROUP_ROOT);
    let is_cgroup2 = nix::sys::statfs::statfs(root)
        .expect("statfs /sys/fs/cgroup")
        .filesystem_type()
        == nix::sys::statfs::CGROUP2_SUPER_MAGIC;
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let layout = ckpt::cgroups::layout(&mountinfo::parse(&text), root).expect("a cgroup layout at /sys/fs/cgroup");
    assert_eq!(
        matches!(layout, ckpt::cgroups::Layout::Unified(_)),
        is_cgroup2,
        "layout {layout:?}"
    );
}
