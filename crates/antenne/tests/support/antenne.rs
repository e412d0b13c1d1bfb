//! [`Antenne`]: the real `antenne` binary as a test peer, plus helpers for
//! its HTTP JSON API.
//!
//! Contract with the binary:
//! - `antenne --rtmp-listen 127.0.0.1:P1 --http-listen 127.0.0.1:P2
//!   --data-dir <dir> --ingest-key <KEY>...` plus optional
//!   `--extra-ca-file <PEM>`, `--stall-timeout-secs N`,
//!   `--grace-period-secs N`;
//! - env `RUST_LOG=info,antenne=debug` (and `NO_COLOR=1`), stdout+stderr to
//!   `<tempdir>/antenne.log`;
//! - ready when `GET /api/v1/health` answers 200.
//! - API: `POST /api/v1/destinations` (201, object with string `id`),
//!   `GET|PATCH|DELETE /api/v1/destinations/{id}` (200, 200, 204),
//!   `GET /api/v1/destinations` (array), `GET /api/v1/ingest`; destination
//!   state at `status.state`: idle, connecting, live, retrying, rejected,
//!   disabled.

use super::child::ChildGuard;
use super::{tail, wait_for};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;
use tempfile::TempDir;

/// Path of the binary under test (built by cargo for integration tests).
pub const ANTENNE_BIN: &str = env!("CARGO_BIN_EXE_antenne");

/// How long to wait for `/api/v1/health` after a start.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Timeout of one HTTP request to the API.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Does one HTTP request with an optional JSON body and returns the status
/// and the body parsed as JSON: `Value::Null` for an empty body,
/// `Value::String` for a body that is not JSON. 4xx/5xx are returned, not
/// errors; only transport failures (connection refused, timeout) are errors.
pub fn http_json(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    http_json_as(agent, None, method, url, body)
}

/// Like [`http_json`], with `Authorization: Bearer <token>` when given.
pub fn http_json_as(
    agent: &ureq::Agent,
    token: Option<&str>,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let mut req = agent.request(method, url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let res = match body {
        Some(b) => req.send_json(b.clone()),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e).with_context(|| format!("{method} {url}: request failed")),
    };
    let status = resp.status();
    let text = resp
        .into_string()
        .with_context(|| format!("{method} {url}: cannot read the body"))?;
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, value))
}

/// Password of the `admin` account of every test antenne.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// Options for starting [`Antenne`].
#[derive(Clone, Debug, Default)]
pub struct AntenneOptions {
    /// `--ingest-key` (repeatable).
    pub ingest_keys: Vec<String>,
    /// `--extra-ca-file`.
    pub extra_ca_file: Option<PathBuf>,
    /// `--stall-timeout-secs`.
    pub stall_timeout_secs: Option<u64>,
    /// `--grace-period-secs`.
    pub grace_period_secs: Option<u64>,
    /// Any other arguments, appended.
    pub extra_args: Vec<String>,
    /// Extra environment variables (override the defaults).
    pub env: Vec<(String, String)>,
    /// Run antenne in its own mount namespace where this file is
    /// bind-mounted over `/etc/hosts` (names resolve as the test says,
    /// and the test can change them while antenne runs; the machine's
    /// `/etc/hosts` is untouched). Needs `unshare` and the right to use it
    /// (root in the test containers); see [`super::can_private_hosts`].
    pub hosts_file: Option<PathBuf>,
    /// Use this data directory instead of a fresh one in the temp dir
    /// (e.g. a [`super::Tmpfs`]).
    pub data_dir: Option<PathBuf>,
}

impl AntenneOptions {
    /// Adds an `--ingest-key`.
    pub fn ingest_key(mut self, key: &str) -> Self {
        self.ingest_keys.push(key.to_string());
        self
    }

    /// `--extra-ca-file` (e.g. [`super::Stunnel::ca_file`]).
    pub fn extra_ca_file(mut self, path: &Path) -> Self {
        self.extra_ca_file = Some(path.to_path_buf());
        self
    }

    /// `--stall-timeout-secs`.
    pub fn stall_timeout_secs(mut self, secs: u64) -> Self {
        self.stall_timeout_secs = Some(secs);
        self
    }

    /// `--grace-period-secs`.
    pub fn grace_period_secs(mut self, secs: u64) -> Self {
        self.grace_period_secs = Some(secs);
        self
    }

    /// An extra command-line argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_string());
        self
    }

    /// See [`AntenneOptions::hosts_file`].
    pub fn hosts_file(mut self, path: &Path) -> Self {
        self.hosts_file = Some(path.to_path_buf());
        self
    }

    /// See [`AntenneOptions::data_dir`].
    pub fn data_dir(mut self, path: &Path) -> Self {
        self.data_dir = Some(path.to_path_buf());
        self
    }

    /// An extra environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts antenne with these options (see [`Antenne::start_with`]).
    pub fn start(self) -> Result<Antenne> {
        Antenne::start_with(self)
    }
}

/// A running `antenne` with its own ports, data dir and log. Killed on drop
/// (SIGTERM, then SIGKILL after 2 s).
pub struct Antenne {
    child: Option<ChildGuard>,
    rtmp_port: u16,
    http_port: u16,
    opts: AntenneOptions,
    agent: ureq::Agent,
    /// Bearer token antenne accepts (`ANTENNE_API_TOKEN`), used by
    /// [`Antenne::request`].
    token: String,
    // Dropped after `child`.
    dir: TempDir,
}

impl Antenne {
    /// Starts antenne accepting one ingest key.
    pub fn start(ingest_key: &str) -> Result<Antenne> {
        AntenneOptions::default().ingest_key(ingest_key).start()
    }

    /// Default options, to customise then `.start()`.
    pub fn options() -> AntenneOptions {
        AntenneOptions::default()
    }

    /// Starts antenne on free ports with a fresh data dir and waits until
    /// `/api/v1/health` answers 200 (retries on other ports if it could not
    /// bind).
    pub fn start_with(opts: AntenneOptions) -> Result<Antenne> {
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-antenne-")
            .tempdir()
            .context("antenne: cannot create temp dir")?;
        // Private, as antenne itself makes it (it warns about and fixes a
        // data dir others can read).
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.path().join("data"))
            .context("antenne: cannot create data dir")?;
        let agent = ureq::AgentBuilder::new()
            .timeout(HTTP_TIMEOUT)
            .redirects(0)
            .build();
        let mut antenne = Antenne {
            child: None,
            rtmp_port: 0,
            http_port: 0,
            opts,
            agent,
            token: format!(
                "test-token-{:016x}",
                std::process::id() as u64 * 7919 + super::free_port() as u64
            ),
            dir,
        };
        let mut last_err = None;
        for _ in 0..3 {
            antenne.rtmp_port = super::free_port();
            antenne.http_port = super::free_port();
            match antenne.spawn() {
                Ok(()) => return Ok(antenne),
                Err(e) => {
                    let bind_failed = antenne.log().to_lowercase().contains("address in use")
                        || antenne
                            .log()
                            .to_lowercase()
                            .contains("address already in use");
                    last_err = Some(e);
                    if !bind_failed {
                        break;
                    }
                }
            }
        }
        Err(last_err.expect("at least one attempt")).context("antenne: could not start")
    }

    fn spawn(&mut self) -> Result<()> {
        let d = self.dir.path();
        let mut cmd = match &self.opts.hosts_file {
            // unshare(1) and sh exec: the pid stays antenne's.
            Some(hosts) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
                    .arg(hosts)
                    .arg(ANTENNE_BIN);
                c
            }
            None => Command::new(ANTENNE_BIN),
        };
        cmd.arg("--rtmp-listen")
            .arg(format!("127.0.0.1:{}", self.rtmp_port))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .arg("--data-dir")
            .arg(self.data_dir());
        for key in &self.opts.ingest_keys {
            cmd.arg("--ingest-key").arg(key);
        }
        if let Some(ca) = &self.opts.extra_ca_file {
            cmd.arg("--extra-ca-file").arg(ca);
        }
        if let Some(s) = self.opts.stall_timeout_secs {
            cmd.arg("--stall-timeout-secs").arg(s.to_string());
        }
        if let Some(s) = self.opts.grace_period_secs {
            cmd.arg("--grace-period-secs").arg(s.to_string());
        }
        cmd.args(&self.opts.extra_args)
            .env("RUST_LOG", "info,antenne=debug")
            .env("NO_COLOR", "1")
            // SRT off unless a test asks (`.arg("--srt-listen")`, which
            // wins over the variable): tests bind only their own ports,
            // never the default 0.0.0.0:9000.
            .env("ANTENNE_SRT_LISTEN", "")
            .env("ANTENNE_API_TOKEN", &self.token)
            .env("ANTENNE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("RUST_LOG_STYLE")
            .envs(self.opts.env.iter().map(|(k, v)| (k, v)))
            .current_dir(d);
        let mut child = ChildGuard::spawn("antenne", cmd, &self.log_path())?;
        let health = self.url("/api/v1/health");
        let agent = self.agent.clone();
        let ready = wait_for(READY_TIMEOUT, || {
            if !child.is_running() {
                return Some(false);
            }
            match http_json(&agent, "GET", &health, None) {
                Ok((200, _)) => Some(true),
                _ => None,
            }
        });
        if ready != Some(true) {
            let status = child.kill();
            self.child = Some(child);
            bail!(
                "antenne did not answer 200 on {health} within {READY_TIMEOUT:?} \
                 (exit status {status:?}); log:\n{}",
                tail(&self.log(), 40)
            );
        }
        self.child = Some(child);
        Ok(())
    }

    /// Kills antenne (SIGKILL) if it runs and starts it again with the same
    /// ports, options and data dir (persistence tests). The log is appended.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
        self.spawn().context("antenne: restart failed")
    }

    /// The RTMP ingest port.
    pub fn rtmp_port(&self) -> u16 {
        self.rtmp_port
    }

    /// The HTTP API port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// `rtmp://127.0.0.1:P1/live/<key>`: where OBS/ffmpeg publishes.
    pub fn ingest_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    /// `http://127.0.0.1:P2`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `http://127.0.0.1:P2<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        match &self.opts.data_dir {
            Some(d) => d.clone(),
            None => self.dir.path().join("data"),
        }
    }

    /// The temp dir (holds data/ and antenne.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where stdout+stderr go.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("antenne.log")
    }

    /// Everything antenne logged so far (all starts).
    pub fn log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The process id (None before the first start succeeded).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid())
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.is_running())
    }

    /// Exit status once it exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.exit_status())
    }

    /// SIGKILL.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.kill())
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status
    /// (graceful-shutdown tests).
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.terminate(grace))
    }

    /// Resident memory (VmRSS) in KiB, from /proc/<pid>/status.
    pub fn rss_kib(&self) -> Result<u64> {
        let pid = self.pid().context("antenne is not started")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("cannot read /proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .context("no VmRSS line in /proc/<pid>/status")
    }

    /// Raw API request: (status, JSON body); never errors on 4xx/5xx.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        http_json_as(
            &self.agent,
            Some(&self.token),
            method,
            &self.url(path),
            body,
        )
    }

    /// A request without credentials.
    pub fn request_anonymous(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        http_json(&self.agent, method, &self.url(path), body)
    }

    /// The bearer token this antenne accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Like [`Antenne::request`] but fails (with the body and the log tail)
    /// unless the status is `expected`.
    pub fn request_expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> Result<Value> {
        let (status, value) = self.request(method, path, body)?;
        if status != expected {
            bail!(
                "{method} {path}: status {status}, expected {expected}; body: {value}; \
                 antenne log:\n{}",
                tail(&self.log(), 20)
            );
        }
        Ok(value)
    }

    /// `GET /api/v1/health` status.
    pub fn health(&self) -> Result<u16> {
        Ok(self.request("GET", "/api/v1/health", None)?.0)
    }

    /// `POST /api/v1/destinations` -> 201 and the created destination (has
    /// a string `id`).
    pub fn add_destination(
        &self,
        name: &str,
        url: &str,
        key: &str,
        enabled: bool,
    ) -> Result<Value> {
        let body = json!({"name": name, "url": url, "key": key, "enabled": enabled});
        let v = self.request_expect("POST", "/api/v1/destinations", Some(&body), 201)?;
        if !v["id"].is_string() {
            bail!("POST /api/v1/destinations: no string \"id\" in {v}");
        }
        Ok(v)
    }

    /// The `id` of a destination object.
    pub fn id_of(destination: &Value) -> String {
        destination["id"].as_str().unwrap_or_default().to_string()
    }

    /// `PATCH /api/v1/destinations/{id}` -> 200 and the updated destination.
    pub fn patch_destination(&self, id: &str, patch: &Value) -> Result<Value> {
        self.request_expect(
            "PATCH",
            &format!("/api/v1/destinations/{id}"),
            Some(patch),
            200,
        )
    }

    /// `DELETE /api/v1/destinations/{id}` -> 204.
    pub fn delete_destination(&self, id: &str) -> Result<()> {
        self.request_expect("DELETE", &format!("/api/v1/destinations/{id}"), None, 204)
            .map(drop)
    }

    /// `GET /api/v1/destinations/{id}` -> 200 and the destination.
    pub fn get_destination(&self, id: &str) -> Result<Value> {
        self.request_expect("GET", &format!("/api/v1/destinations/{id}"), None, 200)
    }

    /// `GET /api/v1/destinations` -> 200 and the array.
    pub fn list_destinations(&self) -> Result<Vec<Value>> {
        match self.request_expect("GET", "/api/v1/destinations", None, 200)? {
            Value::Array(v) => Ok(v),
            other => bail!("GET /api/v1/destinations: not an array: {other}"),
        }
    }

    /// `GET /api/v1/ingest` -> 200 and its JSON.
    pub fn ingest(&self) -> Result<Value> {
        self.request_expect("GET", "/api/v1/ingest", None, 200)
    }

    /// `status.state` of a destination object.
    pub fn state_of(destination: &Value) -> Option<&str> {
        destination["status"]["state"].as_str()
    }

    /// Polls the destination until `status.state == state`; returns the
    /// destination object. On timeout the error shows the last object seen
    /// and the tail of the log.
    pub fn wait_for_state(&self, id: &str, state: &str, timeout: Duration) -> Result<Value> {
        let mut last = Value::Null;
        let found = wait_for(timeout, || match self.get_destination(id) {
            Ok(d) if Self::state_of(&d) == Some(state) => Some(d),
            Ok(d) => {
                last = d;
                None
            }
            Err(e) => {
                last = Value::String(format!("{e:#}"));
                None
            }
        });
        match found {
            Some(d) => Ok(d),
            None => bail!(
                "destination {id} not '{state}' within {timeout:?}; last seen: {last}; \
                 antenne log:\n{}",
                tail(&self.log(), 40)
            ),
        }
    }
}
