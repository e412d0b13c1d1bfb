//! The Debian package (`scripts/package-deb.sh`): what it holds, a unit
//! `systemd-analyze verify` accepts with the hardening the README promises,
//! and an install with `dpkg -i` after which `antenne --version` runs.
//!
//! The install test changes the machine (it needs root, as CI runs): it
//! refuses to run over an antenne already installed, never starts the
//! service (a `policy-rc.d` refusing every start is put in place, and there
//! is no running systemd here), and purges the package whatever happens.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use support::{wait_until, ChildGuard};

const ANTENNE_BIN: &str = env!("CARGO_BIN_EXE_antenne");

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Builds the package of the binary under test into `out`.
fn build_package(out: &Path) -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/package-deb.sh");
    let printed = run(Command::new(&script)
        .arg(out)
        .env("ANTENNE_BIN", ANTENNE_BIN))?;
    let deb = PathBuf::from(printed.lines().last().context("no output")?.trim());
    anyhow::ensure!(deb.is_file(), "{} was not built", deb.display());
    Ok(deb)
}

/// `Key=value` lines of a unit's `[Service]` section (last one wins).
fn service_section(unit: &str) -> BTreeMap<String, String> {
    let mut in_service = false;
    let mut out = BTreeMap::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && !line.starts_with('#') {
            if let Some((k, v)) = line.split_once('=') {
                out.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    out
}

#[test]
fn the_package_holds_a_hardened_unit_that_systemd_accepts() -> Result<()> {
    let work = tempfile::tempdir()?;
    let deb = build_package(work.path())?;
    let field = |f: &str| run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(f));
    assert_eq!(field("Package")?.trim(), "antenne");
    assert_eq!(
        field("Version")?.trim(),
        env!("CARGO_PKG_VERSION"),
        "the package's version is the binary's"
    );

    let root = work.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    let bin = root.join("usr/bin/antenne");
    let version = run(Command::new(&bin).arg("--version"))?;
    assert_eq!(
        version.trim(),
        format!("antenne {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(root.join("etc/default/antenne").is_file());
    let unit_path = root.join("usr/lib/systemd/system/antenne.service");
    let unit = std::fs::read_to_string(&unit_path).context("the unit is packaged")?;
    let service = service_section(&unit);
    for (key, want) in [
        ("User", "antenne"),
        ("ExecStart", "/usr/bin/antenne serve"),
        ("Environment", "ANTENNE_DATA_DIR=/var/lib/antenne"),
        ("StateDirectory", "antenne"),
        ("Restart", "on-failure"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
    ] {
        assert_eq!(
            service.get(key).map(String::as_str),
            Some(want),
            "{key} in the unit"
        );
    }

    // systemd-analyze verify checks that ExecStart exists on this machine:
    // a copy of the unit points at the extracted binary.
    let check = work.path().join("antenne.service");
    std::fs::write(
        &check,
        unit.replace(
            "ExecStart=/usr/bin/antenne",
            &format!("ExecStart={}", bin.display()),
        ),
    )?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&check)
        .output()
        .context("systemd-analyze (package systemd) is needed")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {} {said}",
        out.status
    );
    Ok(())
}

/// Undoes the install whatever happens: purges the package and removes the
/// `policy-rc.d` this test put in place.
struct InstallGuard {
    policy: Option<PathBuf>,
}

impl Drop for InstallGuard {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "antenne"]).output();
        if let Some(p) = self.policy.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

#[test]
fn the_package_installs_with_dpkg_and_runs() -> Result<()> {
    // dpkg -i needs root.
    let uid = run(Command::new("id").arg("-u"))?;
    anyhow::ensure!(
        uid.trim() == "0",
        "installing a package needs root (CI runs as root)"
    );
    let installed = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "antenne"])
        .output()?;
    anyhow::ensure!(
        !String::from_utf8_lossy(&installed.stdout).contains("installed")
            || String::from_utf8_lossy(&installed.stdout).contains("not-installed"),
        "antenne is already installed on this machine: not touching it"
    );
    let work = tempfile::tempdir()?;
    let deb = build_package(work.path())?;

    // No service start: no running systemd, and a policy refusing starts.
    let mut guard = InstallGuard { policy: None };
    if !Path::new(POLICY_RC_D).exists() {
        std::fs::write(
            POLICY_RC_D,
            "#!/bin/sh\n# antenne's package test\nexit 101\n",
        )?;
        run(Command::new("chmod").args(["755", POLICY_RC_D]))?;
        guard.policy = Some(PathBuf::from(POLICY_RC_D));
    }

    run(Command::new("dpkg").arg("-i").arg(&deb))?;
    let version = run(Command::new("/usr/bin/antenne").arg("--version"))?;
    assert_eq!(
        version.trim(),
        format!("antenne {}", env!("CARGO_PKG_VERSION"))
    );
    // Its own system user, without a login shell.
    let user = run(Command::new("getent").args(["passwd", "antenne"]))?;
    let fields: Vec<&str> = user.trim().split(':').collect();
    let uid: u32 = fields.get(2).context("uid")?.parse()?;
    assert!(uid < 1000, "a system user: {user}");
    assert!(
        fields
            .get(6)
            .is_some_and(|s| s.ends_with("nologin") || s.ends_with("false")),
        "no login shell: {user}"
    );
    assert!(Path::new("/usr/lib/systemd/system/antenne.service").is_file());
    // The service did not start.
    let running =
        run(Command::new("pgrep").args(["-x", "-u", "antenne", "antenne"])).unwrap_or_default();
    assert!(running.trim().is_empty(), "antenne was started: {running}");

    // What the service does at first start, by hand (no systemd here): as
    // the antenne user, in /var/lib/antenne (the unit's StateDirectory),
    // it serves and writes the generated admin password to its output
    // (the journal, under systemd).
    run(Command::new("install").args([
        "-d",
        "-o",
        "antenne",
        "-g",
        "antenne",
        "-m",
        "0700",
        "/var/lib/antenne",
    ]))?;
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "antenne", "--", "/usr/bin/antenne"])
        .args([
            "--rtmp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("serve")
        .env("ANTENNE_DATA_DIR", "/var/lib/antenne")
        .env_remove("ANTENNE_ADMIN_PASSWORD")
        .env_remove("ANTENNE_API_TOKEN");
    let mut service = ChildGuard::spawn("antenne-service", cmd, &work.path().join("service.log"))?;
    let started = wait_until(std::time::Duration::from_secs(20), || {
        service.log().contains("password") || !service.is_running()
    });
    let log = service.log();
    service.terminate(std::time::Duration::from_secs(10));
    assert!(started, "no first-start password in the output:\n{log}");
    assert!(log.contains("user admin, password "), "{log}");
    assert!(
        Path::new("/var/lib/antenne/antenne.db").exists()
            || std::fs::read_dir("/var/lib/antenne")?.next().is_some(),
        "state written in /var/lib/antenne"
    );

    run(Command::new("dpkg").args(["--purge", "antenne"]))?;
    assert!(!Path::new("/usr/bin/antenne").exists(), "purged");
    assert!(
        !Path::new("/var/lib/antenne").exists(),
        "purge removes the state"
    );
    drop(guard);
    Ok(())
}
