//! Wiring: store, listeners, hubs, destinations, HTTP, shutdown; and the
//! `export` / `import` / `reset-password` commands.
//!
//! The data directory holds secrets (stream keys, password hashes,
//! sessions): it is created 0700 and its files 0600, and looser modes left
//! by an older antenne are fixed at every start (and logged).

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
use crate::destinations::{validate, Destinations};
use crate::history::{EventKind, History};
use crate::http::{self, AppState};
use crate::hub::QueueLimits;
use crate::ingest;
use crate::ingest_keys::{self, IngestKeys, Origin};
use crate::output::connection::Timeouts;
use crate::output::lanes::Lanes;
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
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
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
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    secure_data_dir(&data_dir);
    let store = Store::open(&data_dir)?;
    secure_data_dir(&data_dir);
    Ok((data_dir, store))
}

/// Makes the data directory 0700 and its files 0600, logging each fix.
fn secure_data_dir(data_dir: &Path) {
    for (path, old, new) in crate::store::secure_permissions(data_dir) {
        warn!(
            path = %path.display(),
            "permissions fixed: {old:o} → {new:o} (it holds secrets; other users could read it)"
        );
    }
}

/// Runs the command line.
pub async fn main(mut cli: Cli) -> anyhow::Result<()> {
    cli.read_secret_files()?;
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => run(cli).await,
        Command::Export => export(&cli),
        Command::Import { file } => import(&cli, &file),
        Command::ResetPassword => reset_password(&cli),
        Command::ImportNginx {
            nginx_conf,
            stunnel,
            yes,
        } => import_nginx(&cli, &nginx_conf, stunnel.as_deref(), yes),
    }
}

fn export(cli: &Cli) -> anyhow::Result<()> {
    let (_dir, store) = open_store(cli)?;
    let backup = store.export()?;
    eprintln!("{}", export_warning(&backup));
    println!("{}", serde_json::to_string_pretty(&backup)?);
    Ok(())
}

/// What an export holds in clear, every kind of secret named.
fn export_warning(backup: &Backup) -> String {
    let mut kinds = vec![
        format!("{} destination stream key(s)", backup.destinations.len()),
        format!(
            "{} ingest key(s) (OBS's stream keys)",
            backup.ingest_keys.len()
        ),
    ];
    let set = |k: &str| backup.settings.get(k).is_some_and(|v| !v.is_empty());
    if set(crate::obs::SETTING_PASSWORD) {
        kinds.push("the OBS WebSocket password".into());
    }
    if set(crate::obs::SETTING_PREVIOUS_SERVICE) {
        kinds.push("OBS's previous stream settings (they may hold a platform's stream key)".into());
    }
    format!(
        "antenne: warning: this backup holds in clear: {}. Keep it private (chmod 600)",
        kinds.join(", ")
    )
}

fn reset_password(cli: &Cli) -> anyhow::Result<()> {
    let (data_dir, store) = open_store(cli)?;
    let _lock = lock_data_dir(&data_dir)?;
    let password = Auth::reset_password(&store)?;
    eprintln!(
        "antenne: new password set for {ADMIN} in {}; every browser session has ended",
        data_dir.display()
    );
    println!("{password}");
    Ok(())
}

/// Checks a backup fully, with the API's rules ([`validate`]); returns
/// what is wrong, all of it.
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
    let rules = validate::all(&b.destinations, presets);
    for (d, broken) in b.destinations.iter().zip(rules) {
        let who = format!("destination {:?} ({})", d.name, d.id);
        if d.id.is_empty() || !ids.insert(d.id.as_str()) {
            problems.push(format!("{who}: missing or duplicate id"));
        }
        problems.extend(broken.into_iter().map(|e| format!("{who}: {e}")));
        if !b.ingest_keys.is_empty() && !keys.contains(d.ingest.as_str()) {
            problems.push(format!("{who}: its ingest key is not in the backup"));
        }
    }
    for (k, p) in &b.srt_passphrases {
        if let Err(e) = ingest::srt::validate_passphrase(p) {
            problems.push(format!("SRT passphrase of {}: {e}", crate::secret::mask(k)));
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

/// `antenne import-nginx`: the plan, a confirmation, then the
/// destinations, checked with the API's rules, all or none.
fn import_nginx(
    cli: &Cli,
    nginx_conf: &Path,
    stunnel: Option<&Path>,
    yes: bool,
) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let conf = read(nginx_conf)?;
    let stunnel = stunnel.map(read).transpose()?;
    let presets = Presets::embedded()?;
    let (data_dir, store) = open_store(cli)?;
    let _lock = lock_data_dir(&data_dir)?;
    let existing = store.destinations()?;
    let names: Vec<String> = existing.iter().map(|d| d.name.clone()).collect();
    let plan = crate::import::plan(&conf, stunnel.as_deref(), &presets, &names)
        .context("nothing was created")?;
    print!("{}", plan.render(cli.rtmp_listen.port(), ingest::APP));
    if plan.destinations.is_empty() {
        return Ok(());
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("nothing was created: run again with --yes to create these destinations");
        }
        print!(
            "Create these {} destination(s)? [y/N] ",
            plan.destinations.len()
        );
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("antenne: nothing was created");
            return Ok(());
        }
    }
    let (keys, _) = ingest_keys::load(&cli.ingest_keys, &store)?;
    let ingest = keys.first().context("no ingest key")?.expose().to_owned();
    let new = crate::import::stored(&plan, &ingest);
    let problems = crate::import::problems(&existing, &new, &presets);
    if !problems.is_empty() {
        bail!("nothing was created:\n  - {}", problems.join("\n  - "));
    }
    store.insert_destinations(&new)?;
    eprintln!(
        "antenne: created {} destination(s) in {}",
        new.len(),
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
        gop_cache: !cli.no_gop_cache,
        ..QueueLimits::default()
    };
    let ctx = Arc::new(OutputContext {
        tls: Arc::new(tls_config(cli.extra_ca_file.as_deref())?),
        timeouts: Timeouts {
            stall: Duration::from_secs(cli.stall_timeout_secs.max(1)),
            // Renditions' hubs (their encoder restarting); ingest hubs are
            // held by the standby for the hold limit.
            grace: Duration::from_secs(cli.grace_period_secs.unwrap_or(30)),
            ..Timeouts::default()
        },
        lanes: Lanes::start(cli.relay_threads(), cli.relay_threads_after)
            .context("cannot start the relay threads")?,
    });
    let auth = Arc::new(Auth::new(store.clone(), cli.api_token.clone())?);
    let generated_password = auth.ensure_admin(cli.admin_password.clone())?;
    let history = History::start(store.clone());
    let ingest_keys = Arc::new(IngestKeys::new(
        &keys,
        limits,
        store.clone(),
        history.clone(),
        matches!(origin, Origin::CommandLine),
    ));
    let hubs = ingest_keys.hubs().clone();
    let presets = Arc::new(Presets::embedded()?);
    let shutdown = CancellationToken::new();
    let destinations = Arc::new(Destinations::new(
        hubs.clone(),
        ctx,
        store.clone(),
        history.clone(),
        presets.clone(),
        shutdown.clone(),
    ));
    // Renditions load first: destinations find their source there.
    let renditions = Arc::new(crate::encoders::registry::Renditions::new(
        hubs.clone(),
        store.clone(),
        history.clone(),
        crate::encoders::EncoderConfig {
            ffmpeg: cli.ffmpeg.clone(),
            queue: limits,
            ..crate::encoders::EncoderConfig::default()
        },
    ));
    renditions.load().await?;
    destinations.set_renditions(renditions.clone());
    let loaded = destinations.load().await?;

    let rtmp = TcpListener::bind(cli.rtmp_listen)
        .await
        .with_context(|| format!("cannot listen for RTMP on {}", cli.rtmp_listen))?;
    let http_listener = TcpListener::bind(cli.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", cli.http_listen))?;
    let rtmps = match cli.rtmps()? {
        None => None,
        Some((addr, cert, key)) => {
            let acceptor = ingest::tls::acceptor(cert, key)?;
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for RTMPS on {addr}"))?;
            Some(ingest::Rtmps { listener, acceptor })
        }
    };
    let rtmps_addr = match &rtmps {
        Some(r) => Some(r.listener.local_addr()?),
        None => None,
    };
    let rtmp_addr = rtmp.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    if !http_addr.ip().is_loopback() && !cli.behind_tls_proxy {
        warn!(%http_addr, "the web interface listens beyond this machine without TLS: passwords and keys travel in clear. Put a TLS-terminating proxy in front and pass --behind-tls-proxy");
    }
    info!(rtmp = %rtmp_addr, rtmps = ?rtmps_addr, http = %http_addr, data_dir = %data_dir.display(), destinations = loaded, "antenne listening");

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
    if let Some(addr) = rtmps_addr {
        println!(
            "               or rtmps://{host}:{}/{} (TLS)",
            addr.port(),
            ingest::APP
        );
    }
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
        EventKind::Started,
        None,
        format!("antenne started ({loaded} destination(s))"),
        None,
    );
    let obs = crate::obs::Obs::new(store.clone(), history.clone(), hubs.clone(), rtmp_addr)?;
    let obs_task = obs.start(shutdown.child_token());
    destinations.set_obs_direct(Arc::new(crate::obs_direct::ObsDirectMode::new(
        obs.clone(),
        tokio::runtime::Handle::current(),
    )));
    let ingest_task = tokio::spawn(ingest::serve_all(
        rtmp,
        rtmps,
        hubs.clone(),
        history.clone(),
        shutdown.child_token(),
    ));
    let pulls = ingest::pull::Pulls::new(
        hubs.clone(),
        store.clone(),
        history.clone(),
        Arc::new(tls_config(cli.extra_ca_file.as_deref())?),
        shutdown.child_token(),
    );
    let pulling = pulls.load().await?;
    if pulling > 0 {
        info!(pulls = pulling, "pulls configured");
    }
    let srt_status = match cli.srt()? {
        None => ingest::srt::SrtStatus::Off,
        Some(listen) => ingest::srt::SrtIngest {
            listen,
            latency: cli.srt_latency_ms.map(Duration::from_millis),
            idle_close: (cli.srt_idle_secs > 0).then(|| Duration::from_secs(cli.srt_idle_secs)),
            hubs: hubs.clone(),
            history: history.clone(),
            passphrases: ingest_keys.srt_passphrases().clone(),
        }
        .start(shutdown.child_token()),
    };
    if let ingest::srt::SrtStatus::Listening(addr) = &srt_status {
        println!(
            "               or srt://{host}:{}?streamid=<stream key> (SRT)",
            addr.port()
        );
    }
    let recorder = crate::recording::Recorder::start(
        cli.recordings_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("recordings")),
        hubs.clone(),
        store.clone(),
        history.clone(),
        cli.hold_limit().as_duration(),
        shutdown.child_token(),
    )
    .await?;
    let standby = crate::standby::Standby::start(
        crate::standby::StandbyConfig {
            ffmpeg: cli.ffmpeg.clone(),
            enabled: !cli.no_standby,
            wait: Duration::from_millis(cli.standby_wait_ms),
            hold_limit: cli.hold_limit(),
        },
        data_dir.join("standby"),
        store.clone(),
        hubs.clone(),
        history.clone(),
        shutdown.child_token(),
    )
    .await?;
    if let Some(addr) = cli.metrics_listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        info!(metrics = %listener.local_addr()?, "serving /metrics without a token");
        let open = http::metrics::open_router(destinations.clone(), hubs.clone());
        let limits = http::serve::Limits::default();
        tokio::spawn(http::serve::serve(
            listener,
            open,
            limits,
            shutdown.child_token(),
        ));
    }
    let alerts = crate::alerts::Alerts::start(
        store.clone(),
        history.clone(),
        destinations.clone(),
        hubs.clone(),
        Arc::new(tls_config(cli.extra_ca_file.as_deref())?),
        shutdown.child_token(),
    )
    .await?;
    let app = http::router(
        AppState {
            destinations: destinations.clone(),
            ingest_keys,
            hubs,
            store: store.clone(),
            history: history.clone(),
            presets,
            auth,
            obs,
            rtmp_port: rtmp_addr.port(),
            rtmps_port: rtmps_addr.map(|a| a.port()),
            srt: srt_status,
            alerts,
            secure_cookies: cli.behind_tls_proxy,
            recorder: recorder.clone(),
            renditions,
            pulls,
            standby,
        },
        http::AllowedHosts::new(&cli.allowed_hosts, store.clone()),
    );
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = wait_for_signal() => info!("shutting down"),
            _ = stop.cancelled() => {}
        }
        stop.cancel();
    });
    http::serve::serve(
        http_listener,
        app,
        http::serve::Limits::default(),
        shutdown.clone(),
    )
    .await;
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
