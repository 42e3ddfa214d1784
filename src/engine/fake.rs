//! A fake engine for the commands' unit tests: it answers as its
//! [`Script`] says and records every call, so that a test can check what a
//! command asked of its engine, and what it never asked (a refused start
//! prepares nothing). Nothing here touches a container.

use super::{Container, Engine, Engines, Found, Home, Listing, Prepared, Report, Restored, RuntimeKind, Undo};
use crate::cgroups::FreezerDir;
use crate::criu::CriuVersion;
use crate::error::Error;
use crate::plan::restore::{self, How, RestoreFacts, RestoreOptions, RestorePlan, Restorer, TargetState};
use crate::store::{CheckpointEntry, Store};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::rc::Rc;

/// What the fake engine answers.
#[derive(Debug, Clone)]
pub struct Script {
    pub home: Home,
    /// `running` finds this container (`None`: not found).
    pub container: Option<Container>,
    pub restorer: Restorer,
    /// `check_dump` refuses as Docker does for a version it cannot restore.
    pub refuse_dump: bool,
    pub recorded_pause: Option<bool>,
    pub stop_fails: bool,
    pub refuse_restore: bool,
    pub target: TargetState,
    /// Paths `restore_facts` says are missing.
    pub missing: BTreeSet<PathBuf>,
    /// `restore` fails as a runtime does.
    pub restore_fails: bool,
    pub report: Report,
    /// What `restore` says CRIU's stats-restore held.
    pub restore_stats: Option<crate::criu::stats::RestoreStats>,
    /// What `restored_init` answers.
    pub restored_pid: i32,
    /// `export_facts` says the container runs.
    pub export_running: bool,
    /// What `running_all` lists.
    pub listed: Vec<crate::plan::select::Listed>,
    /// References `running` does not find (though `container` is set).
    pub gone: BTreeSet<String>,
}

impl Script {
    /// An engine of container `id` (no container running) whose
    /// checkpoints are in the store at `root`.
    pub fn new(root: &std::path::Path, id: &str) -> Script {
        Script {
            home: Home {
                root: root.to_path_buf(),
                id: id.into(),
                name: id.into(),
                foreign: false,
            },
            container: None,
            restorer: Restorer::Oci,
            refuse_dump: false,
            recorded_pause: None,
            stop_fails: false,
            refuse_restore: false,
            target: TargetState::Absent,
            missing: BTreeSet::new(),
            restore_fails: false,
            report: Report::Oci {
                runtime: RuntimeKind::Runc,
                output_log: root.join(id).join("output.log"),
            },
            restore_stats: None,
            restored_pid: 0,
            export_running: false,
            listed: Vec::new(),
            gone: BTreeSet::new(),
        }
    }
}

/// The fake [`Engines`] and [`Engine`] at once: every reference names the
/// script's container. Clones share their record of calls.
#[derive(Debug, Clone)]
pub struct FakeEngine {
    pub script: Script,
    calls: Rc<RefCell<Vec<String>>>,
    /// What `restore` found in the plan's image directory: its path and
    /// every file's bytes.
    images: Rc<RefCell<Option<RestoredImages>>>,
}

/// The image directory a restore was given, and its files.
pub type RestoredImages = (PathBuf, std::collections::BTreeMap<String, Vec<u8>>);

impl FakeEngine {
    pub fn new(script: Script) -> FakeEngine {
        FakeEngine {
            script,
            calls: Rc::default(),
            images: Rc::default(),
        }
    }

    /// The calls made so far, by name (`prepare`, `undo`, ...).
    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    /// The image directory of the last `restore` and its files.
    pub fn restored_images(&self) -> Option<RestoredImages> {
        self.images.borrow().clone()
    }

    fn called(&self, name: impl Into<String>) {
        self.calls.borrow_mut().push(name.into());
    }
}

impl Engines for FakeEngine {
    fn running(&self, reference: &str) -> Result<Found, Error> {
        self.called(format!("running {reference}"));
        match &self.script.container {
            Some(c) if !self.script.gone.contains(reference) => Ok(Found {
                container: c.clone(),
                engine: Box::new(self.clone()),
            }),
            _ => Err(super::EngineError::NotFound {
                id: reference.to_string(),
                searched: "the fake engine".into(),
            }
            .into()),
        }
    }

    fn home(&self, reference: &str) -> Result<Box<dyn Engine>, Error> {
        self.called(format!("home {reference}"));
        Ok(Box::new(self.clone()))
    }

    fn running_all(&self) -> Result<Vec<crate::plan::select::Listed>, Error> {
        self.called("running_all");
        Ok(self.script.listed.clone())
    }

    fn listings(&self) -> Result<Vec<Listing>, Error> {
        Ok(vec![Listing {
            root: self.script.home.root.clone(),
            runtime: None,
            required: true,
        }])
    }
}

impl Engine for FakeEngine {
    fn home(&self) -> Home {
        self.script.home.clone()
    }

    fn check_dump(&self, name: &str, _leave_running: bool) -> Result<(), Error> {
        self.called(format!("check_dump {name}"));
        if self.script.refuse_dump {
            return Err(super::docker::DockerError::BrokenRestore {
                version: "28.0.0".into(),
                network_mode: "bridge".into(),
            }
            .into());
        }
        Ok(())
    }

    fn recorded_pause(&self) -> Option<bool> {
        self.script.recorded_pause
    }

    fn stop_after_dump(&self, c: &Container, _freezer: &FreezerDir) -> Result<(), Error> {
        self.called(format!("stop_after_dump {}", c.id));
        if self.script.stop_fails {
            return Err(Error::StillRunning { pid: c.init_pid });
        }
        Ok(())
    }

    fn defers_signals(&self) -> bool {
        self.script.restorer == Restorer::Oci
    }

    fn target_lock_id(&self, opts: &RestoreOptions) -> Option<String> {
        match self.script.restorer {
            Restorer::Oci => Some(opts.new_name.clone().unwrap_or_else(|| self.script.home.id.clone())),
            Restorer::Docker => None,
        }
    }

    fn check_restore(&self, _opts: &RestoreOptions) -> Result<(), Error> {
        self.called("check_restore");
        if self.script.refuse_restore {
            return Err(super::docker::DockerError::NotExperimental {
                socket: "unix:///fake.sock".into(),
            }
            .into());
        }
        Ok(())
    }

    fn restore_facts(
        &self,
        _store: &Store,
        entry: &CheckpointEntry,
        opts: &RestoreOptions,
        criu: Option<CriuVersion>,
    ) -> Result<RestoreFacts, Error> {
        self.called("restore_facts");
        let present = restore::paths_to_check(entry)
            .into_iter()
            .filter(|p| !self.script.missing.contains(p))
            .collect();
        Ok(RestoreFacts {
            restorer: self.script.restorer,
            criu,
            home_id: self.script.home.id.clone(),
            target_name: opts.new_name.clone().unwrap_or_else(|| self.script.home.name.clone()),
            target: self.script.target,
            // The original bundle as recorded: it is used again.
            original_spec: entry.meta.as_ref().map(|m| m.spec.clone()),
            present,
            unsafe_target: None,
            missing_image: None,
        })
    }

    fn prepare(&self, _store: &Store, _entry: &CheckpointEntry, plan: &RestorePlan) -> Result<Prepared, Error> {
        self.called(format!("prepare {}", plan.target));
        Ok(Prepared {
            id: plan.target.clone(),
            name: plan.target.clone(),
            created: plan.how == (How::Docker { copy: true }),
            bundle: None,
            work: None,
        })
    }

    fn restore(&self, _store: &Store, plan: &RestorePlan, _prepared: &Prepared) -> Result<Restored, Error> {
        self.called(format!("restore {}", plan.target));
        let files = std::fs::read_dir(&plan.images)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read(e.path()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        *self.images.borrow_mut() = Some((plan.images.clone(), files));
        if self.script.restore_fails {
            return Err(super::oci::runtime::RuntimeError::Failed {
                runtime: "runc",
                action: "restore",
                id: plan.target.clone(),
                message: "criu failed: type RESTORE errno 0".into(),
            }
            .into());
        }
        Ok(Restored {
            restore_ms: 7,
            restore_log: (self.script.restorer == Restorer::Oci)
                .then(|| "(00.1) Restore finished successfully. Tasks resumed.\n".to_string()),
            criu_stats: self.script.restore_stats,
            report: self.script.report.clone(),
        })
    }

    fn restored_init(&self, _plan: &RestorePlan, _prepared: &Prepared) -> Result<i32, Error> {
        Ok(self.script.restored_pid)
    }

    fn undo(&self, _store: &Store, _plan: &RestorePlan, prepared: &Prepared, why: Undo) -> Error {
        self.called(format!("undo {}", prepared.id));
        match (why.failure, why.signal) {
            (_, Some(sig)) => Error::from(crate::interrupt::Interrupted(sig)).context("the restore was undone"),
            (Some(e), None) => e.context("nothing was started"),
            (None, None) => Error::RestoreUndone { detail: String::new() },
        }
    }

    fn export_facts(&self, entry: &CheckpointEntry) -> Result<crate::plan::export::ExportFacts, Error> {
        self.called(format!("export_facts {}", entry.name));
        let rootfs = match entry.meta.as_ref().and_then(|m| m.rootfs.clone()) {
            Some(p) => crate::plan::export::ExportRootfs::Tree(p),
            None => crate::plan::export::ExportRootfs::Unknown("none recorded".into()),
        };
        Ok(crate::plan::export::ExportFacts {
            running: self.script.export_running,
            rootfs,
            container_name: None,
            created: None,
            oci_runtime: "runc".into(),
            docker_create: None,
        })
    }
}

/// A fake CRIU: reports `version`, and a dump writes a few images and a
/// log into its images dir and succeeds, or fails as CRIU does.
#[derive(Debug, Clone)]
pub struct FakeCriu {
    pub version: CriuVersion,
    pub fail: bool,
    runs: Rc<RefCell<Vec<Vec<String>>>>,
}

impl FakeCriu {
    pub fn new(version: CriuVersion) -> FakeCriu {
        FakeCriu {
            version,
            fail: false,
            runs: Rc::default(),
        }
    }

    /// The argument vectors of every run.
    pub fn runs(&self) -> Vec<Vec<String>> {
        self.runs.borrow().clone()
    }
}

impl crate::criu::Locate for FakeCriu {
    fn locate(&self) -> Result<Box<dyn crate::criu::Runner>, crate::criu::CriuError> {
        Ok(Box::new(self.clone()))
    }
}

impl crate::criu::Runner for FakeCriu {
    fn version(&self) -> CriuVersion {
        self.version
    }

    fn run(
        &self,
        action: &'static str,
        args: &[std::ffi::OsString],
        log_path: &std::path::Path,
        monitor: &mut dyn crate::criu::runner::Monitor,
    ) -> Result<(), crate::criu::CriuError> {
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        self.runs.borrow_mut().push(args.clone());
        monitor.spawned(std::process::id());
        let _ = monitor.tick();
        let images = args
            .windows(2)
            .find(|w| w[0] == "--images-dir")
            .map(|w| PathBuf::from(&w[1]))
            .expect("a dump names its images dir");
        if self.fail {
            let _ = std::fs::write(
                log_path,
                "(00.06) Error (criu/files-reg.c:1710): Can't lookup mount=42\n",
            );
            return Err(crate::criu::CriuError::Failed {
                action,
                status: "exit status 1".into(),
                log_path: log_path.to_path_buf(),
                errors: vec!["Error (criu/files-reg.c:1710): Can't lookup mount=42".into()],
                hint: None,
            });
        }
        for (file, bytes) in [
            ("inventory.img", &b"inv"[..]),
            ("pstree.img", b"tree"),
            ("pages-1.img", &[7u8; 4096]),
            // As real CRIU does: its statistics, a real CRIU 4.1.1 stats-dump.
            ("stats-dump", include_bytes!("../../tests/fixtures/stats-dump")),
        ] {
            std::fs::write(images.join(file), bytes).expect("the fake CRIU writes its images");
        }
        std::fs::write(log_path, "(00.2) Dumping finished successfully\n").expect("the fake CRIU logs");
        Ok(())
    }
}
