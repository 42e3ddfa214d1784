//! PURE: the argument vectors ckpt gives `criu`. One test pair (set / not
//! set) per option. CRIU always gets a vector, never a shell string.

use crate::cgroups::CgroupDump;
use crate::plan::DumpPlan;
use std::ffi::OsString;
use std::path::Path;

/// The name of CRIU's log inside the checkpoint.
pub const DUMP_LOG: &str = "dump.log";

/// `criu dump` arguments that write images, `dump.log` and `stats-dump`
/// into `images_dir`, matching what `runc checkpoint` asks of CRIU so that
/// runc (and Docker) can restore the images.
pub fn dump_args(plan: &DumpPlan, images_dir: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["dump".into(), "--tree".into(), plan.pid.to_string().into()];
    a.extend(["--images-dir".into(), images_dir.into()]);
    // Logs and stats next to the images so they are kept with the checkpoint.
    a.extend(["--work-dir".into(), images_dir.into()]);
    a.extend(["--log-file".into(), DUMP_LOG.into(), "-v4".into()]);
    a.extend(["--root".into(), plan.root.as_os_str().into()]);
    // `=` is required: the argument is optional in CRIU's getopt table.
    match &plan.cgroup_dump {
        CgroupDump::All => a.push("--manage-cgroups=soft".into()),
        CgroupDump::Only(names) => {
            a.push("--manage-cgroups=soft".into());
            for name in names {
                a.extend(["--cgroup-dump-controller".into(), name.into()]);
            }
        }
        CgroupDump::Nothing => a.push("--manage-cgroups=ignore".into()),
    }
    // runc never dumps network devices ("runc doesn't manage network
    // devices") and always restores with an empty netns: do the same.
    a.extend(["--empty-ns".into(), "net".into()]);
    a.extend(["--freeze-cgroup".into(), plan.freezer.dir.as_os_str().into()]);
    let flags = [
        (plan.criu.leave_running, "--leave-running"),
        (plan.criu.tcp_established, "--tcp-established"),
        (plan.criu.file_locks, "--file-locks"),
        (plan.criu.ext_unix_sk, "--ext-unix-sk"),
    ];
    a.extend(flags.iter().filter(|(on, _)| *on).map(|(_, f)| OsString::from(f)));
    for e in &plan.externals {
        a.extend(["--external".into(), e.into()]);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::{CgroupVersion, FreezerDir};
    use crate::plan::{AfterDump, DumpOptions};

    /// A plan whose CRIU options are `opts` (the planner always sets
    /// leave_running there; these tests check each flag either way).
    fn plan(opts: DumpOptions) -> DumpPlan {
        DumpPlan {
            pid: 4871,
            root: "/b/rootfs".into(),
            freezer: FreezerDir {
                dir: "/sys/fs/cgroup/freezer/c".into(),
                version: CgroupVersion::V1,
            },
            cgroup_dump: CgroupDump::All,
            externals: vec!["mnt[/etc/hosts]:/etc/hosts".into()],
            options: DumpOptions::default(),
            criu: opts,
            after: AfterDump::Stop,
            descriptors: vec![],
            warnings: vec![],
        }
    }

    fn args(opts: DumpOptions) -> Vec<String> {
        dump_args(&plan(opts), Path::new("/s/stage"))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    fn has_pair(a: &[String], k: &str, v: &str) -> bool {
        a.windows(2).any(|w| w[0] == k && w[1] == v)
    }

    #[test]
    fn base_arguments() {
        let a = args(DumpOptions::default());
        assert_eq!(a[0], "dump");
        assert!(has_pair(&a, "--tree", "4871"));
        assert!(has_pair(&a, "--images-dir", "/s/stage"));
        assert!(has_pair(&a, "--work-dir", "/s/stage"));
        assert!(has_pair(&a, "--log-file", "dump.log"));
        assert!(has_pair(&a, "--root", "/b/rootfs"));
        assert!(has_pair(&a, "--empty-ns", "net"));
        assert!(has_pair(&a, "--freeze-cgroup", "/sys/fs/cgroup/freezer/c"));
        assert!(has_pair(&a, "--external", "mnt[/etc/hosts]:/etc/hosts"));
        assert!(a.contains(&"--manage-cgroups=soft".to_string()));
        assert!(a.contains(&"-v4".to_string()));
    }

    #[test]
    fn only_the_selected_cgroup_hierarchies_are_dumped() {
        let mut p = plan(DumpOptions::default());
        let a = |p: &DumpPlan| -> Vec<String> {
            dump_args(p, Path::new("/x"))
                .into_iter()
                .map(|s| s.into_string().unwrap())
                .collect()
        };
        assert!(!a(&p).contains(&"--cgroup-dump-controller".to_string()));
        p.cgroup_dump = CgroupDump::Only(vec!["memory".into(), "cpu,cpuacct".into()]);
        assert!(has_pair(&a(&p), "--cgroup-dump-controller", "memory"));
        assert!(has_pair(&a(&p), "--cgroup-dump-controller", "cpu,cpuacct"));
        assert!(a(&p).contains(&"--manage-cgroups=soft".to_string()));
        p.cgroup_dump = CgroupDump::Nothing;
        assert!(!a(&p).contains(&"--cgroup-dump-controller".to_string()));
        assert!(a(&p).contains(&"--manage-cgroups=ignore".to_string()));
    }

    #[test]
    fn the_users_options_do_not_reach_criu_only_the_plans() {
        let mut p = plan(DumpOptions::default());
        p.options.tcp_established = true;
        let a: Vec<_> = dump_args(&p, Path::new("/x"))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert!(!a.contains(&"--tcp-established".to_string()));
    }

    macro_rules! option_pair {
        ($name:ident, $field:ident, $flag:literal) => {
            #[test]
            fn $name() {
                assert!(
                    !args(DumpOptions::default()).contains(&$flag.to_string()),
                    "unset: no {}",
                    $flag
                );
                let opts = DumpOptions {
                    $field: true,
                    ..Default::default()
                };
                assert!(args(opts).contains(&$flag.to_string()), "set: {}", $flag);
            }
        };
    }

    option_pair!(leave_running, leave_running, "--leave-running");
    option_pair!(tcp_established, tcp_established, "--tcp-established");
    option_pair!(file_locks, file_locks, "--file-locks");
    option_pair!(ext_unix_sk, ext_unix_sk, "--ext-unix-sk");
}
