//! Command line and environment. Every flag has an `ANTENNE_…` variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

/// antenne: OBS publishes once, antenne relays to every platform.
#[derive(Debug, Clone, Parser)]
#[command(name = "antenne", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Where OBS publishes (RTMP): rtmp://HOST:PORT/live/<ingest key>.
    #[arg(long, env = "ANTENNE_RTMP_LISTEN", default_value = "0.0.0.0:1935")]
    pub rtmp_listen: SocketAddr,

    /// Also accept OBS over TLS (RTMPS) here, e.g. 0.0.0.0:1936:
    /// rtmps://HOST:PORT/live/<ingest key>. Needs --tls-cert and --tls-key.
    #[arg(long, env = "ANTENNE_RTMPS_LISTEN")]
    pub rtmps_listen: Option<SocketAddr>,

    /// PEM certificate chain (server certificate first) for --rtmps-listen.
    #[arg(long, env = "ANTENNE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "ANTENNE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Where OBS and ffmpeg publish over SRT (UDP):
    /// srt://HOST:PORT?streamid=<ingest key>. Empty: off. Needs libsrt
    /// (Debian: libsrt1.5-openssl); without it antenne says SRT is
    /// unavailable and serves RTMP as before.
    #[arg(long, env = "ANTENNE_SRT_LISTEN", default_value = "0.0.0.0:9000")]
    pub srt_listen: String,

    /// SRT receive latency in ms (libsrt's default is 120; the larger of
    /// this and the publisher's is used). More rides out more loss.
    #[arg(long, env = "ANTENNE_SRT_LATENCY_MS")]
    pub srt_latency_ms: Option<u64>,

    /// Seconds without an SRT publisher after which antenne closes libsrt's
    /// listener and waits for the next caller on a plain UDP socket of the
    /// same port (libsrt's threads wake over 200 times a second while it
    /// listens). The caller's first handshake wakes it; callers repeat it
    /// every 250 ms, so connecting takes up to ~0.3 s longer. 0: libsrt
    /// listens all the time.
    #[arg(long, env = "ANTENNE_SRT_IDLE_SECS", default_value_t = 30)]
    pub srt_idle_secs: u64,

    /// Web interface and REST API.
    #[arg(long, env = "ANTENNE_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    pub http_listen: SocketAddr,

    /// Also serve the Prometheus scrape `/metrics` here, without a token
    /// (a loopback or private address: anyone who reaches it reads the
    /// metrics). On the web port `/metrics` always needs an API token.
    #[arg(long, env = "ANTENNE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Where antenne keeps its state. Default: $XDG_DATA_HOME/antenne or
    /// ~/.local/share/antenne.
    #[arg(long, env = "ANTENNE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Where recordings go. Default: `recordings/` in the data directory.
    #[arg(long, env = "ANTENNE_RECORDINGS_DIR")]
    pub recordings_dir: Option<PathBuf>,

    /// Ingest key OBS must use (repeatable; comma-separated in the
    /// environment). Without one, antenne generates a key at first start
    /// and keeps it in the data directory. A flag is visible to every local
    /// user in the process list: prefer ANTENNE_INGEST_KEY or
    /// --ingest-key-file.
    #[arg(
        long = "ingest-key",
        env = "ANTENNE_INGEST_KEY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub ingest_keys: Vec<String>,

    /// File holding the ingest key(s), one per line (replaces
    /// --ingest-key).
    #[arg(long, env = "ANTENNE_INGEST_KEY_FILE")]
    pub ingest_key_file: Option<PathBuf>,

    /// PEM file of extra certificate authorities to trust for rtmps://
    /// destinations (on top of the built-in web PKI roots).
    /// A server's certificate must not itself be a CA (CA:TRUE, as plain `openssl req -x509` makes): give it one issued by a CA listed here, or a self-signed one with `basicConstraints=CA:FALSE`.
    #[arg(long, env = "ANTENNE_EXTRA_CA_FILE")]
    pub extra_ca_file: Option<PathBuf>,

    /// The ffmpeg program renditions run (a path, or a name looked up on
    /// PATH). Without it renditions say "ffmpeg not found" and
    /// destinations relaying the ingest work as before.
    #[arg(long, env = "ANTENNE_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// A destination whose socket accepts nothing for this long is
    /// reconnected.
    #[arg(long, env = "ANTENNE_STALL_TIMEOUT_SECS", default_value_t = 10)]
    pub stall_timeout_secs: u64,

    /// How long destinations stay connected after OBS drops, receiving the
    /// standby picture: seconds, or `forever`. Default 600.
    #[arg(long, env = "ANTENNE_HOLD_LIMIT", value_parser = crate::standby::HoldLimit::parse)]
    pub hold_limit: Option<crate::standby::HoldLimit>,

    /// The hold limit's former name (seconds): still accepted, used when
    /// --hold-limit is not given.
    #[arg(long, env = "ANTENNE_GRACE_PERIOD_SECS")]
    pub grace_period_secs: Option<u64>,

    /// No standby picture: while OBS is away destinations stay connected
    /// for the hold limit but receive nothing (antenne before 0.x).
    #[arg(long, env = "ANTENNE_NO_STANDBY")]
    pub no_standby: bool,

    /// Keep no GOP for destinations that are switched on (or reconnect),
    /// recordings and previews that start mid-stream: they wait for the
    /// publisher's next keyframe (up to its keyframe interval, 2 s with
    /// OBS's default) instead of starting at once. Saves about 1.5 MiB per
    /// live ingest at 6 Mbit/s (a host with many channels).
    #[arg(long, env = "ANTENNE_NO_GOP_CACHE")]
    pub no_gop_cache: bool,

    /// Milliseconds between OBS dropping and the standby picture starting.
    #[arg(long, env = "ANTENNE_STANDBY_WAIT_MS", default_value_t = 1000)]
    pub standby_wait_ms: u64,

    /// How far (media time) a destination may fall behind before it skips
    /// to the next keyframe.
    #[arg(long, env = "ANTENNE_MAX_LAG_MS", default_value_t = 4000)]
    pub max_lag_ms: u64,

    /// Threads that run the relay and the web server. One is the most
    /// efficient (every frame wakes every destination: across threads that
    /// costs a context switch); more help with many RTMPS destinations,
    /// whose encryption is the heaviest part.
    #[arg(long, env = "ANTENNE_WORKER_THREADS", default_value_t = 1)]
    pub worker_threads: usize,

    /// Extra threads a stream's destinations are spread over once it has
    /// more than --relay-threads-after (default: one per core beyond the
    /// first, at most 7). 0 keeps every destination on the worker threads.
    #[arg(long, env = "ANTENNE_RELAY_THREADS")]
    pub relay_threads: Option<usize>,

    /// Live destinations of one stream the worker threads carry before its
    /// new ones are spread over the relay threads.
    #[arg(long, env = "ANTENNE_RELAY_THREADS_AFTER", default_value_t = 100)]
    pub relay_threads_after: usize,

    /// antenne's HTTP is served through a TLS-terminating reverse proxy:
    /// cookies are marked Secure, and binding beyond loopback is expected.
    #[arg(long, env = "ANTENNE_BEHIND_TLS_PROXY")]
    pub behind_tls_proxy: bool,

    /// Host names the web interface may be reached under, besides IP
    /// addresses, localhost and the public host set in Settings
    /// (comma-separated). Requests naming another host are refused, which
    /// defeats DNS rebinding.
    #[arg(long, env = "ANTENNE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Password of the `admin` account created at first start (generated
    /// and printed once when unset; at least 10 characters). A flag is
    /// visible to every local user in the process list: prefer
    /// ANTENNE_ADMIN_PASSWORD or --admin-password-file.
    #[arg(long, env = "ANTENNE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// File holding the admin password (replaces --admin-password).
    #[arg(long, env = "ANTENNE_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,

    /// A bearer token the API accepts besides those created in the web
    /// interface. A flag is visible to every local user in the process
    /// list: prefer ANTENNE_API_TOKEN or --api-token-file.
    #[arg(long, env = "ANTENNE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,

    /// File holding the API token (replaces --api-token).
    #[arg(long, env = "ANTENNE_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
}

/// What to do instead of serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve (the default).
    Serve,
    /// Print a backup of destinations, ingest keys and settings as JSON
    /// (stream keys included, in clear).
    Export,
    /// Replace destinations, ingest keys and settings with a backup made by
    /// `export`. Everything is checked before anything changes. Stop antenne
    /// first.
    Import {
        /// The backup file (`-` for standard input).
        file: PathBuf,
    },
    /// Set a new generated password for `admin` and print it; every
    /// browser session ends and failed logins are forgotten. Stop antenne
    /// first.
    ResetPassword,
    /// Create a destination for each `push` of an nginx-rtmp
    /// configuration (a local stunnel port becomes the platform's rtmps://
    /// URL with --stunnel). Prints the plan first (keys masked) and asks
    /// before creating anything. Stop antenne first.
    ImportNginx {
        /// nginx.conf (the file with the `rtmp { }` block).
        nginx_conf: PathBuf,
        /// stunnel.conf, for pushes to a local stunnel port (Facebook,
        /// Instagram…).
        #[arg(long)]
        stunnel: Option<PathBuf>,
        /// Create without asking (needed when standard input is not a
        /// terminal).
        #[arg(long)]
        yes: bool,
    },
}

/// Reads a secret from a file: surrounding whitespace (the final newline)
/// is not part of it. Warns when other users may read the file.
fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "the {what} file can be read by other users: chmod 600 it");
        }
    }
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    Ok(secret)
}

impl Cli {
    /// `--relay-threads`, or one per core beyond the first (at most 7).
    pub fn relay_threads(&self) -> usize {
        self.relay_threads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            cores.saturating_sub(1).min(7)
        })
    }

    /// The hold limit: `--hold-limit`, else the former
    /// `--grace-period-secs`, else 10 minutes.
    pub fn hold_limit(&self) -> crate::standby::HoldLimit {
        use crate::standby::HoldLimit;
        self.hold_limit
            .or(self
                .grace_period_secs
                .map(|s| HoldLimit::For(std::time::Duration::from_secs(s))))
            .unwrap_or(HoldLimit::For(std::time::Duration::from_secs(600)))
    }

    /// Reads the secrets given as files (`--…-file`) into their fields.
    pub fn read_secret_files(&mut self) -> anyhow::Result<()> {
        if let Some(p) = &self.admin_password_file {
            self.admin_password = Some(read_secret_file(p, "admin password")?);
        }
        if let Some(p) = &self.api_token_file {
            self.api_token = Some(read_secret_file(p, "API token")?);
        }
        if let Some(p) = &self.ingest_key_file {
            self.ingest_keys = read_secret_file(p, "ingest key")?
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(())
    }

    /// The RTMPS listener's address, certificate and key, when asked for;
    /// an error when the three flags do not go together.
    pub fn rtmps(&self) -> anyhow::Result<Option<(SocketAddr, &Path, &Path)>> {
        match (&self.rtmps_listen, &self.tls_cert, &self.tls_key) {
            (None, None, None) => Ok(None),
            (Some(addr), Some(cert), Some(key)) => Ok(Some((*addr, cert, key))),
            (Some(_), _, _) => {
                bail!("--rtmps-listen needs both --tls-cert and --tls-key (PEM files)")
            }
            (None, _, _) => bail!(
                "--tls-cert and --tls-key are for RTMPS ingest: add --rtmps-listen (e.g. \
                 0.0.0.0:1936)"
            ),
        }
    }

    /// The SRT listener's address; `None` when `--srt-listen` is empty.
    pub fn srt(&self) -> anyhow::Result<Option<SocketAddr>> {
        let v = self.srt_listen.trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse()
            .map(Some)
            .with_context(|| format!("--srt-listen {v:?} is not an address like 0.0.0.0:9000"))
    }

    /// The data directory, with the default applied.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("antenne");
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/share/antenne"),
            None => PathBuf::from("antenne-data"),
        }
    }
}
