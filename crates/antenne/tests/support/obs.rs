//! [`Obs`]: real OBS Studio, headless, as a test peer: obs-websocket v5 on
//! a free port with a known password, publishing (when told to) a small
//! generated scene over RTMP.
//!
//! Facts this relies on (Debian 12 `obs-studio` 29.0.2, obs-websocket
//! 5.1.0; see /work/shared/tools/obs-headless/README.md):
//! - OBS runs under Xvfb with Mesa llvmpipe (`LIBGL_ALWAYS_SOFTWARE=1`,
//!   `QT_QPA_PLATFORM=xcb`); the websocket answers ~1 s after the start.
//! - In 29.0.x the websocket settings are read from `global.ini`
//!   `[OBSWebSocket]` (`ServerEnabled` is off by default); from 29.1 on from
//!   `plugin_config/obs-websocket/config.json`. Both are written.
//! - `FirstRun=true` and `LastVersion` in `[General]` suppress the
//!   first-run wizard; `PreviewEnabled=false` saves CPU.
//! - CPU is the limit (2 cores, no GPU): the canvas and the output are
//!   640x360 at 30 fps, the visible source is a 640x360 clip (the colour
//!   background is hidden: a visible full-canvas colour pass costs ~20 % of
//!   a core), x264 `veryfast` with a keyframe every 2 s.
//! - OBS dies at once on SIGTERM (no clean shutdown); the configuration is
//!   written anew at every start, so nothing OBS saved matters.
//!
//! Only one OBS runs at a time in a test process: [`Obs::start`] waits for
//! the previous one to be dropped (two would starve the machine).

use super::child::ChildGuard;
use super::{port_accepts, require_program, tail, wait_until};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tempfile::TempDir;

/// The obs-websocket password of every test OBS.
pub const OBS_PASSWORD: &str = "obs-test-password-4455";
/// Where the test OBS streams to before antenne changes it.
pub const ORIGINAL_SERVER: &str = "rtmp://127.0.0.1:9/original-app";
/// The stream key that goes with [`ORIGINAL_SERVER`].
pub const ORIGINAL_KEY: &str = "original_obs_stream_key_0123";
/// The scenes of the test scene collection, in OBS's order; the first is
/// the program scene at start.
pub const SCENES: [&str; 2] = ["Clip", "Colour"];

/// Canvas and output size, frame rate.
const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
const FPS: u32 = 30;

/// How long [`Obs::start`] waits for the websocket port.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One OBS at a time per test process.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running OBS (and its Xvfb). Both are killed on drop, whatever
/// happened.
pub struct Obs {
    // Fields drop in declaration order: OBS, then its X server, then the
    // lock, then the files.
    obs: Option<ChildGuard>,
    xvfb: Option<ChildGuard>,
    _turn: MutexGuard<'static, ()>,
    display: String,
    port: u16,
    clip: PathBuf,
    /// The stream service OBS starts with (server, key).
    service: (String, String),
    dir: TempDir,
}

impl Obs {
    /// Writes a fresh configuration in a temp HOME, starts Xvfb and OBS,
    /// and waits until obs-websocket accepts connections. OBS's stream
    /// settings: custom server [`ORIGINAL_SERVER`], key [`ORIGINAL_KEY`].
    pub fn start() -> Result<Obs> {
        Self::start_with_service(ORIGINAL_SERVER, ORIGINAL_KEY)
    }

    /// Like [`Obs::start`], with OBS's stream settings set to a custom
    /// server and key (e.g. an [`super::Nginx`] receiver).
    pub fn start_with_service(server: &str, key: &str) -> Result<Obs> {
        let turn = one_at_a_time();
        require_program(&["obs"], "obs-studio")?;
        require_program(&["Xvfb"], "xvfb")?;
        let clip = test_clip()?;
        let dir = tempfile::Builder::new()
            .prefix("antenne-test-obs-")
            .tempdir()
            .context("obs: cannot create temp dir")?;
        let mut obs = Obs {
            obs: None,
            xvfb: None,
            _turn: turn,
            display: String::new(),
            port: 0,
            clip,
            service: (server.to_owned(), key.to_owned()),
            dir,
        };
        obs.start_xvfb()?;
        let mut last_err = None;
        for _ in 0..3 {
            obs.port = super::free_port();
            match obs.spawn_obs() {
                Ok(()) => return Ok(obs),
                Err(e) => {
                    if let Some(mut c) = obs.obs.take() {
                        c.kill();
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.expect("at least one attempt")).context("obs: could not start")
    }

    /// The obs-websocket port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The body of `PUT /api/v1/obs` that connects antenne to this OBS.
    pub fn settings(&self) -> Value {
        json!({"host": "127.0.0.1", "port": self.port, "password": OBS_PASSWORD})
    }

    /// The temp dir (HOME, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The X display OBS runs on.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The OBS process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.obs.as_ref().map(|c| c.pid())
    }

    /// True while OBS runs.
    pub fn is_running(&mut self) -> bool {
        self.obs.as_mut().is_some_and(|c| c.is_running())
    }

    /// SIGKILL OBS (a crash), leaving Xvfb up.
    pub fn kill(&mut self) {
        if let Some(c) = self.obs.as_mut() {
            c.kill();
        }
    }

    /// Kills OBS if it runs and starts it again on the same port and
    /// display, with the configuration written anew.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut c) = self.obs.take() {
            c.kill();
        }
        self.spawn_obs().context("obs: restart failed")
    }

    /// What OBS printed (all starts), then the tail of its newest own log.
    pub fn log(&self) -> String {
        let out = std::fs::read(self.dir.path().join("obs.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let logs = self.config_dir().join("logs");
        let newest = std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .max();
        let own = newest
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        format!("{}\n--- OBS log ---\n{}", tail(&out, 20), tail(&own, 60))
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn config_dir(&self) -> PathBuf {
        self.home().join(".config/obs-studio")
    }

    /// Xvfb picks a free display itself (`-displayfd`) and writes its
    /// number to its stdout, which goes to the log file.
    fn start_xvfb(&mut self) -> Result<()> {
        let log = self.dir.path().join("xvfb.log");
        let mut cmd = Command::new("Xvfb");
        cmd.args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ]);
        let mut child = ChildGuard::spawn("Xvfb", cmd, &log)?;
        let mut display = None;
        let ready = wait_until(Duration::from_secs(10), || {
            display = child
                .log()
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
                .map(|n| format!(":{n}"));
            display.is_some() || !child.is_running()
        });
        let Some(display) = display.filter(|_| ready && child.is_running()) else {
            child.kill();
            bail!(
                "Xvfb did not start (no display number); log:\n{}",
                tail(&child.log(), 20)
            );
        };
        self.display = display;
        self.xvfb = Some(child);
        Ok(())
    }

    fn spawn_obs(&mut self) -> Result<()> {
        self.write_config()?;
        let xdg = self.dir.path().join("xdg");
        std::fs::create_dir_all(&xdg)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut cmd = Command::new("obs");
        cmd.args([
            "--multi",
            "--disable-missing-files-check",
            "--profile",
            "Test",
            "--collection",
            "Test",
        ])
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("SESSION_MANAGER")
        .env("HOME", self.home())
        .env("DISPLAY", &self.display)
        .env("XDG_RUNTIME_DIR", &xdg)
        .env("QT_QPA_PLATFORM", "xcb")
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .current_dir(self.dir.path());
        let child = ChildGuard::spawn("obs", cmd, &self.dir.path().join("obs.log"))?;
        self.obs = Some(child);
        let port = self.port;
        let mut alive = true;
        let up = wait_until(START_TIMEOUT, || {
            alive = self.obs.as_mut().is_some_and(|c| c.is_running());
            !alive || port_accepts(port)
        });
        if !up || !alive {
            bail!(
                "obs-websocket did not answer on port {port} within {START_TIMEOUT:?} \
                 (OBS running: {alive}); log:\n{}",
                self.log()
            );
        }
        Ok(())
    }

    fn write_config(&self) -> Result<()> {
        let cfg = self.config_dir();
        let profile = cfg.join("basic/profiles/Test");
        let scenes = cfg.join("basic/scenes");
        let ws = cfg.join("plugin_config/obs-websocket");
        let rec = self.dir.path().join("recordings");
        for d in [&profile, &scenes, &ws, &rec] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        // LastVersion 29.0.2: no first-run wizard, no "what's new".
        let last_version = (29 << 24) | 2;
        let port = self.port;
        write(
            &cfg.join("global.ini"),
            &format!(
                "[General]\nPre19Defaults=false\nPre21Defaults=false\nPre23Defaults=false\n\
                 Pre24.1Defaults=false\nFirstRun=true\nLastVersion={last_version}\n\
                 EnableAutoUpdates=false\nConfirmOnExit=false\nMaxLogs=5\nInfoIncrement=-1\n\n\
                 [Basic]\nProfile=Test\nProfileDir=Test\nSceneCollection=Test\n\
                 SceneCollectionFile=Test\nConfigOnNewProfile=false\n\n\
                 [BasicWindow]\nSysTrayEnabled=false\nSysTrayWhenStarted=false\n\
                 WarnBeforeStartingStream=false\nWarnBeforeStoppingStream=false\n\
                 WarnBeforeStoppingRecord=false\nPreviewEnabled=false\nShowTransitions=true\n\n\
                 [OBSWebSocket]\nFirstLoad=false\nServerEnabled=true\nServerPort={port}\n\
                 AlertsEnabled=false\nAuthRequired=true\nServerPassword={OBS_PASSWORD}\n"
            ),
        )?;
        write(
            &ws.join("config.json"),
            &json!({
                "first_load": false, "server_enabled": true, "server_port": port,
                "alerts_enabled": false, "auth_required": true, "server_password": OBS_PASSWORD,
            })
            .to_string(),
        )?;
        write(
            &profile.join("basic.ini"),
            &format!(
                "[General]\nName=Test\n\n\
                 [Output]\nMode=Simple\n\n\
                 [SimpleOutput]\nFilePath={rec}\nRecFormat=mkv\nVBitrate=800\nABitrate=128\n\
                 UseAdvanced=true\nPreset=veryfast\nx264Settings=keyint={keyint}\n\
                 StreamEncoder=x264\nRecQuality=Stream\nRecEncoder=x264\n\n\
                 [Video]\nBaseCX={WIDTH}\nBaseCY={HEIGHT}\nOutputCX={WIDTH}\nOutputCY={HEIGHT}\n\
                 FPSType=1\nFPSInt={FPS}\nScaleType=bilinear\nColorFormat=NV12\n\
                 ColorSpace=709\nColorRange=Partial\n\n\
                 [Audio]\nSampleRate=48000\nChannelSetup=Stereo\n",
                rec = rec.display(),
                keyint = FPS * 2,
            ),
        )?;
        write(
            &profile.join("service.json"),
            &json!({"type": "rtmp_custom", "settings": {
                "server": self.service.0, "key": self.service.1, "use_auth": false, "bwtest": false,
            }})
            .to_string(),
        )?;
        write(
            &scenes.join("Test.json"),
            &serde_json::to_string_pretty(&self.scene_collection())?,
        )
    }

    /// Scene "Clip": the looping 640x360 clip over a hidden colour
    /// background. Scene "Colour": the colour only.
    fn scene_collection(&self) -> Value {
        let item = |name: &str, id: u32, visible: bool| {
            json!({
                "name": name, "id": id, "visible": visible, "locked": false, "rot": 0.0,
                "scale": {"x": 1.0, "y": 1.0}, "align": 5, "bounds_align": 0,
                "bounds_type": 0, "bounds": {"x": 0.0, "y": 0.0}, "pos": {"x": 0.0, "y": 0.0},
                "crop_left": 0, "crop_top": 0, "crop_right": 0, "crop_bottom": 0,
            })
        };
        let scene = |name: &str, items: Vec<Value>| {
            json!({
                "id": "scene", "versioned_id": "scene", "name": name, "enabled": true,
                "flags": 0, "mixers": 0,
                "settings": {"custom_size": false, "id_counter": items.len(), "items": items},
            })
        };
        json!({
            "name": "Test",
            "current_scene": SCENES[0],
            "current_program_scene": SCENES[0],
            "scene_order": [{"name": SCENES[0]}, {"name": SCENES[1]}],
            "current_transition": "Cut",
            "transition_duration": 300,
            "transitions": [], "quick_transitions": [], "groups": [], "saved_projectors": [],
            "preview_locked": false, "scaling_enabled": false, "modules": {},
            "sources": [
                scene(SCENES[0], vec![item("Background", 1, false), item("TestClip", 2, true)]),
                scene(SCENES[1], vec![item("Background", 1, true)]),
                {
                    "id": "color_source", "versioned_id": "color_source_v3",
                    "name": "Background", "enabled": true, "flags": 0, "mixers": 0,
                    "settings": {"color": 4283782485u32, "width": WIDTH, "height": HEIGHT},
                },
                {
                    "id": "ffmpeg_source", "versioned_id": "ffmpeg_source", "name": "TestClip",
                    "enabled": true, "flags": 0, "mixers": 255, "volume": 1.0, "muted": false,
                    "monitoring_type": 0,
                    "settings": {
                        "is_local_file": true, "local_file": self.clip.display().to_string(),
                        "looping": true, "restart_on_activate": false, "hw_decode": false,
                        "close_when_inactive": false, "clear_on_media_end": false,
                    },
                },
            ],
        })
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The clip OBS plays: testsrc2 640x360 at 30 fps with a 440 Hz tone, 10 s,
/// H.264 (keyframe every second) + AAC. Made once and shared by every test
/// (written under a temporary name, then renamed).
fn test_clip() -> Result<PathBuf> {
    static CLIP: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    CLIP.get_or_init(|| make_clip().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn make_clip() -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("antenne-test-obs-clip-{WIDTH}x{HEIGHT}.mp4"));
    if path.metadata().is_ok_and(|m| m.len() > 10_000) {
        return Ok(path);
    }
    let ffmpeg = require_program(&["ffmpeg"], "ffmpeg")?;
    let partial = path.with_extension(format!("{}.part.mp4", std::process::id()));
    let out = Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}"))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-g"])
        .arg(FPS.to_string())
        .args([
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-shortest",
        ])
        .arg(&partial)
        .output()
        .context("cannot run ffmpeg")?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "ffmpeg could not make the OBS test clip: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::rename(&partial, &path).context("cannot move the OBS test clip in place")?;
    Ok(path)
}
