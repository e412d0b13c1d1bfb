//! Wiring: store, listeners, hubs, destinations, HTTP, shutdown; and the
//! `export` / `import` commands.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::auth::{Auth, ADMIN};
use crate::config::{Cli, Command};
use crate::destinations::Destinations;
use crate::history::History;
use crate::http::{self, AppState};
use crate::hub::{Hub, QueueLimits};
use crate::ingest::{self, Hubs};
use crate::ingest_keys::{self, Origin};
use crate::output::connection::Timeouts;
use crate::output::supervisor::OutputContext;
use crate::presets::Presets;
use crate::store::{Backup, Store};

/// Builds the TLS client configuration: web PKI roots plus `extra_ca`.
pub fn tls_config(extra_ca: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read CA file {}", path.display()))?
        {
            let cert = cert.with_context(|| format!("invalid PEM in {}", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("invalid CA certificate in {}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            bail!("no certificate found in {}", path.display());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Holds the data directory for this process: a second antenne (or an
/// import) on the same directory is refused with a clear message.
fn lock_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join("antenne.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another antenne is using the data directory {} (stop it first)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

fn open_store(cli: &Cli) -> anyhow::Result<(std::path::PathBuf, Store)> {
    let data_dir = cli.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let store = Store::open(&data_dir)?;
    Ok((data_dir, store))
}

/// Runs the command line.
pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => run(cli).await,
        Command::Export => export(&cli),
        Command::Import { file } => import(&cli, &file),
    }
}

fn export(cli: &Cli) -> anyhow::Result<()> {
    let (_dir, store) = open_store(cli)?;
    let backup = store.export()?;
    eprintln!(
        "antenne: warning: this backup holds {} stream key(s) in clear: keep it private",
        backup.destinations.len() + backup.ingest_keys.len()
    );
    println!("{}", serde_json::to_string_pretty(&backup)?);
    Ok(())
}

/// Checks a backup fully; returns what is wrong, all of it.
pub fn validate_backup(b: &Backup, presets: &Presets) -> Vec<String> {
    let mut problems = Vec::new();
    if b.antenne_backup != 1 {
        problems.push(format!("unknown backup version {}", b.antenne_backup));
    }
    let mut keys = std::collections::HashSet::new();
    for k in &b.ingest_keys {
        if let Err(e) = ingest_keys::validate(&k.key) {
            problems.push(format!("ingest key {}: {e}", crate::secret::mask(&k.key)));
        }
        if !keys.insert(k.key.as_str()) {
            problems.push(format!(
                "ingest key {} appears twice",
                crate::secret::mask(&k.key)
            ));
        }
    }
    let mut ids = std::collections::HashSet::new();
    for d in &b.destinations {
        let who = format!("destination {:?} ({})", d.name, d.id);
        if d.id.is_empty() || !ids.insert(d.id.as_str()) {
            problems.push(format!("{who}: missing or duplicate id"));
        }
        if d.name.trim().is_empty() || d.name.chars().count() > 100 {
            problems.push(format!("{who}: name must be 1 to 100 characters"));
        }
        if let Err(e) = crate::output::url::parse(&d.url, &d.key) {
            problems.push(format!("{who}: invalid url: {e}"));
        }
        if presets.get(&d.platform).is_none() {
            problems.push(format!("{who}: unknown platform {:?}", d.platform));
        }
        if !b.ingest_keys.is_empty() && !keys.contains(d.ingest.as_str()) {
            problems.push(format!("{who}: its ingest key is not in the backup"));
        }
    }
    problems
}

fn import(cli: &Cli, file: &Path) -> anyhow::Result<()> {
    let mut text = String::new();
    if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    let backup: Backup =
        serde_json::from_str(&text).context("the backup is not valid antenne backup JSON")?;
    let problems = validate_backup(&backup, &Presets::embedded()?);
    if !problems.is_empty() {
        bail!("nothing was imported:\n  - {}", problems.join("\n  - "));
    }
    let (data_dir, store) = open_store(cli)?;
    let _lock = lock_data_dir(&data_dir)?;
    store.import(&backup)?;
    eprintln!(
        "antenne: imported {} destination(s), {} ingest key(s), {} setting(s) into {}",
        backup.destinations.len(),
        backup.ingest_keys.len(),
        backup.settings.len(),
        store.path().display()
    );
    Ok(())
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let (data_dir, store) = open_store(&cli)?;
    let _lock = lock_data_dir(&data_dir)?;
    let store = Arc::new(store);
    let (keys, origin) = ingest_keys::load(&cli.ingest_keys, &store)?;
    let limits = QueueLimits {
        max_lag: Duration::from_millis(cli.max_lag_ms.max(100)),
        ..QueueLimits::default()
    };
    let hubs = Hubs::new(keys.iter().map(|k| Hub::new(k.clone(), limits)).collect());
    let ctx = Arc::new(OutputContext {
        tls: Arc::new(tls_config(cli.extra_ca_file.as_deref())?),
        timeouts: Timeouts {
            stall: Duration::from_secs(cli.stall_timeout_secs.max(1)),
            grace: Duration::from_secs(cli.grace_period_secs),
            ..Timeouts::default()
        },
    });
    let auth = Arc::new(Auth::new(store.clone(), cli.api_token.clone()));
    let generated_password = auth.ensure_admin(cli.admin_password.clone())?;
    let history = History::start(store.clone());
    let presets = Arc::new(Presets::embedded()?);
    let shutdown = CancellationToken::new();
    let destinations = Arc::new(Destinations::new(
        hubs.clone(),
        ctx,
        store.clone(),
        history.clone(),
        presets,
        shutdown.clone(),
    ));
    let loaded = destinations.load()?;

    let rtmp = TcpListener::bind(cli.rtmp_listen)
        .await
        .with_context(|| format!("cannot listen for RTMP on {}", cli.rtmp_listen))?;
    let http_listener = TcpListener::bind(cli.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", cli.http_listen))?;
    let rtmp_addr = rtmp.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    if !http_addr.ip().is_loopback() && !cli.behind_tls_proxy {
        warn!(%http_addr, "the web interface listens beyond this machine without TLS: passwords and keys travel in clear. Put a TLS-terminating proxy in front and pass --behind-tls-proxy");
    }
    info!(rtmp = %rtmp_addr, http = %http_addr, data_dir = %data_dir.display(), destinations = loaded, "antenne listening");

    // What the user needs once. Generated secrets are shown in clear this
    // one time (never logged); afterwards they are masked.
    let host = if rtmp_addr.ip().is_unspecified() {
        "HOST".to_owned()
    } else {
        rtmp_addr.ip().to_string()
    };
    println!("Web interface: http://{http_addr}/");
    if let Some(pw) = &generated_password {
        println!("               user {ADMIN}, password {pw} (generated now: change ANTENNE_ADMIN_PASSWORD before first start to choose it)");
    }
    println!(
        "OBS settings:  Server rtmp://{host}:{}/{}",
        rtmp_addr.port(),
        ingest::APP
    );
    for key in &keys {
        match origin {
            Origin::Generated => {
                println!("               Stream key {} (generated now)", key.expose())
            }
            _ => println!(
                "               Stream key {} (shown in the web interface)",
                key.masked()
            ),
        }
    }

    history.record(
        "started",
        None,
        format!("antenne started ({loaded} destination(s))"),
        None,
    );
    let obs = crate::obs::Obs::new(
        store.clone(),
        history.clone(),
        destinations.hubs().clone(),
        rtmp_addr,
    )?;
    let obs_task = obs.start(shutdown.child_token());
    destinations.set_obs_direct(Arc::new(crate::obs_direct::ObsDirectMode::new(
        obs.clone(),
        tokio::runtime::Handle::current(),
    )));
    let ingest_task = tokio::spawn(ingest::serve(
        rtmp,
        hubs,
        history.clone(),
        shutdown.child_token(),
    ));
    let recorder = crate::recording::Recorder::start(
        cli.recordings_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("recordings")),
        destinations.hubs().clone(),
        store.clone(),
        history.clone(),
        Duration::from_secs(cli.grace_period_secs),
        shutdown.child_token(),
    )
    .await?;
    let app = http::router(AppState {
        destinations: destinations.clone(),
        auth,
        obs,
        rtmp_port: rtmp_addr.port(),
        secure_cookies: cli.behind_tls_proxy,
        ingest_keys_fixed: matches!(origin, Origin::CommandLine),
        recorder: recorder.clone(),
    });
    let stop = shutdown.clone();
    axum::serve(
        http_listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        tokio::select! {
            _ = wait_for_signal() => info!("shutting down"),
            _ = stop.cancelled() => {}
        }
        stop.cancel();
    })
    .await
    .context("HTTP server failed")?;
    shutdown.cancel();
    // Close every destination cleanly, within a bound.
    let _ = tokio::time::timeout(Duration::from_secs(5), destinations.shutdown()).await;
    recorder.shutdown().await;
    let _ = ingest_task.await;
    let _ = obs_task.await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
