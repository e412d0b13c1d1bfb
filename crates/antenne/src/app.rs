//! Wiring: listeners, hubs, destinations, API, shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{self, ApiState};
use crate::config::Cli;
use crate::destinations::Destinations;
use crate::hub::{Hub, QueueLimits};
use crate::ingest::{self, Hubs};
use crate::ingest_keys::{self, Origin};
use crate::output::connection::Timeouts;
use crate::output::supervisor::OutputContext;

/// Builds the TLS client configuration: web PKI roots plus `extra_ca`.
pub fn tls_config(extra_ca: Option<&std::path::Path>) -> anyhow::Result<rustls::ClientConfig> {
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
            anyhow::bail!("no certificate found in {}", path.display());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Runs antenne until Ctrl-C or SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = cli.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let (keys, origin) = ingest_keys::load(&cli.ingest_keys, &data_dir)?;
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
    let shutdown = CancellationToken::new();
    let destinations = Arc::new(Destinations::new(hubs.clone(), ctx, shutdown.clone()));

    let rtmp = TcpListener::bind(cli.rtmp_listen)
        .await
        .with_context(|| format!("cannot listen for RTMP on {}", cli.rtmp_listen))?;
    let http = TcpListener::bind(cli.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", cli.http_listen))?;
    let rtmp_addr = rtmp.local_addr()?;
    let http_addr = http.local_addr()?;
    if !http_addr.ip().is_loopback() {
        warn!(%http_addr, "the API listens beyond this machine and has no login yet: keep it behind a firewall");
    }
    info!(rtmp = %rtmp_addr, http = %http_addr, data_dir = %data_dir.display(), "antenne listening");

    // The OBS settings, once. A generated key is shown in clear this one
    // time (it is never logged); afterwards it is masked.
    let host = if rtmp_addr.ip().is_unspecified() {
        "HOST".to_owned()
    } else {
        rtmp_addr.ip().to_string()
    };
    println!(
        "OBS settings: Server rtmp://{host}:{}/{}",
        rtmp_addr.port(),
        ingest::APP
    );
    for key in &keys {
        match origin {
            Origin::Generated => println!(
                "              Stream key {} (generated now, kept in {})",
                key.expose(),
                data_dir.join("ingest-key").display()
            ),
            _ => println!(
                "              Stream key {} (shown in clear by GET /api/v1/ingest?reveal=keys)",
                key.masked()
            ),
        }
    }

    let ingest_task = tokio::spawn(ingest::serve(rtmp, hubs, shutdown.child_token()));
    let app = api::router(ApiState {
        destinations: destinations.clone(),
    });
    let stop = shutdown.clone();
    axum::serve(http, app)
        .with_graceful_shutdown(async move {
            wait_for_signal().await;
            info!("shutting down");
            stop.cancel();
        })
        .await
        .context("HTTP server failed")?;
    shutdown.cancel();
    // Close every destination cleanly, within a bound.
    let _ = tokio::time::timeout(Duration::from_secs(5), destinations.shutdown()).await;
    let _ = ingest_task.await;
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
