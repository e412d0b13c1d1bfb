//! [`Browser`]: real headless Chromium driven through chromedriver (W3C
//! WebDriver over HTTP, spoken with ureq: no async client needed).
//!
//! Debian's `chromium` and `chromium-driver` (scripts/test.sh installs
//! them). Each browser has its own chromedriver port, profile directory and
//! log; both processes are killed on drop.

use super::child::ChildGuard;
use super::{require_program, tail, wait_for};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// WebDriver's key for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long element look-ups and waits last by default.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Browser {
    base: String,
    agent: ureq::Agent,
    _driver: ChildGuard,
    dir: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (1280x900,
    /// English unless `lang` says otherwise).
    pub fn start(lang: &str) -> Result<Browser> {
        let driver = require_program(&["chromedriver"], "chromium-driver")?;
        let chromium = require_program(&["chromium"], "chromium")?;
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-browser-")
            .tempdir()
            .context("browser: temp dir")?;
        let port = super::free_port();
        let mut cmd = Command::new(driver);
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ));
        let child = ChildGuard::spawn("chromedriver", cmd, &dir.path().join("driver.out.log"))?;
        let base = format!("http://127.0.0.1:{port}");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let ready = wait_for(Duration::from_secs(15), || {
            agent
                .get(&format!("{base}/status"))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .filter(|v| v["value"]["ready"] == true)
        });
        if ready.is_none() {
            bail!("chromedriver did not start on port {port}");
        }
        let profile = dir.path().join("profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-quic",
                    "--window-size=1280,900", format!("--lang={lang}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
                "prefs": {"intl.accept_languages": lang},
            }
        }}});
        let res = post(&agent, &format!("{base}/session"), &caps)?;
        let id = res["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session id: {res}"))?;
        Ok(Browser {
            base: format!("{base}/session/{id}"),
            agent,
            _driver: child,
            dir,
        })
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        post(&self.agent, &format!("{}{path}", self.base), body)
    }

    fn get(&self, path: &str) -> Result<Value> {
        let r = self.agent.get(&format!("{}{path}", self.base)).call();
        answer(r, path)
    }

    /// Opens `page` (antenne's login form answers it), logs in as `admin`
    /// with `password` and waits for the dashboard.
    pub fn log_in(&self, page: &str, password: &str) -> Result<()> {
        self.goto(page)?;
        self.fill("[data-testid=login-username]", "admin")?;
        self.fill("[data-testid=login-password]", password)?;
        self.click("[data-testid=login-submit]")?;
        self.find("[data-testid=ingest-card]")?;
        Ok(())
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", &json!({ "url": url })).map(drop)
    }

    pub fn url(&self) -> Result<String> {
        Ok(self.get("/url")?.as_str().unwrap_or_default().to_owned())
    }

    /// Runs JavaScript in the page and returns its result.
    pub fn js(&self, script: &str, args: Value) -> Result<Value> {
        self.post("/execute/sync", &json!({ "script": script, "args": args }))
    }

    fn find_now(&self, css: &str) -> Option<String> {
        self.post("/element", &json!({"using": "css selector", "value": css}))
            .ok()
            .and_then(|v| v[ELEMENT].as_str().map(str::to_owned))
    }

    /// Waits for an element matching `css`.
    pub fn find(&self, css: &str) -> Result<String> {
        wait_for(WAIT, || self.find_now(css)).ok_or_else(|| {
            anyhow!(
                "no element {css:?} within {WAIT:?} at {:?}",
                self.url().ok()
            )
        })
    }

    pub fn click(&self, css: &str) -> Result<()> {
        let e = self.find(css)?;
        self.post(&format!("/element/{e}/click"), &json!({}))
            .map(drop)
    }

    /// Clears a field and types `text`.
    pub fn fill(&self, css: &str, text: &str) -> Result<()> {
        let e = self.find(css)?;
        self.post(&format!("/element/{e}/clear"), &json!({}))?;
        self.post(&format!("/element/{e}/value"), &json!({ "text": text }))
            .map(drop)
    }

    pub fn text(&self, css: &str) -> Result<String> {
        let e = self.find(css)?;
        Ok(self
            .get(&format!("/element/{e}/text"))?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    pub fn attr(&self, css: &str, name: &str) -> Result<Option<String>> {
        let e = self.find(css)?;
        Ok(self
            .get(&format!("/element/{e}/attribute/{name}"))?
            .as_str()
            .map(str::to_owned))
    }

    /// The current value of a form field.
    pub fn value(&self, css: &str) -> Result<String> {
        let e = self.find(css)?;
        Ok(self
            .get(&format!("/element/{e}/property/value"))?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Waits until `css` has attribute `name` equal to `want`.
    pub fn wait_attr(&self, css: &str, name: &str, want: &str, timeout: Duration) -> Result<()> {
        let mut last = None;
        let ok = wait_for(timeout, || {
            last = self.attr(css, name).ok().flatten();
            (last.as_deref() == Some(want)).then_some(())
        });
        ok.ok_or_else(|| anyhow!("{css} [{name}] is {last:?}, not {want:?} after {timeout:?}"))
    }

    /// Waits until the text of `css` satisfies `pred`.
    pub fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let mut last = String::new();
        wait_for(timeout, || {
            last = self.text(css).ok()?;
            pred(&last).then(|| last.clone())
        })
        .ok_or_else(|| anyhow!("{css}: text {last:?} never matched within {timeout:?}"))
    }

    /// Saves a PNG screenshot.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        use base64::Engine;
        let data = self.get("/screenshot")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .context("screenshot is not base64")?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, png).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.post("/window/rect", &json!({"width": width, "height": height}))
            .map(drop)
    }

    pub fn driver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log"))
            .map(|s| tail(&s, 40))
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session (closes Chromium); the guard kills chromedriver.
        let _ = self.agent.delete(&self.base).call();
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>, what: &str) -> Result<Value> {
    let (status, resp) = match r {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => return Err(e).with_context(|| format!("webdriver {what}")),
    };
    let v: Value = resp
        .into_json()
        .with_context(|| format!("webdriver {what}: not JSON"))?;
    if status >= 400 {
        bail!("webdriver {what}: {status} {}", v["value"]);
    }
    Ok(v["value"].clone())
}

fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Result<Value> {
    answer(agent.post(url).send_json(body.clone()), url)
}

/// Where tests save screenshots: `target/test-artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts")
}
