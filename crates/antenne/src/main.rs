use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    bound_allocator_caches();
    let cli = antenne::config::Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.worker_threads(cli.worker_threads.max(1));
    match rt.enable_all().build() {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("antenne: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: antenne::config::Cli) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("ANTENNE_LOG")
                .or_else(|_| EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| EnvFilter::new("info"))
                // obws logs raw requests (stream keys included) at trace.
                .add_directive("obws=info".parse().expect("a valid directive")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match raise_open_file_limit() {
        Ok(Some((from, to))) => tracing::info!(from, to, "open-file limit raised"),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    match antenne::app::main(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("antenne: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit of open files to the hard limit, so that the web
/// port (capped at a few hundred connections) can never use up the file
/// descriptors the RTMP port and the destinations need. Returns the old and
/// new soft limits when it changed.
fn raise_open_file_limit() -> std::io::Result<Option<(libc::rlim_t, libc::rlim_t)>> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur >= lim.rlim_max {
        return Ok(None);
    }
    let from = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Some((from, lim.rlim_max)))
}

/// Makes glibc's allocator return large blocks to the system when freed.
/// By default it raises its mmap threshold after the first large free, and
/// then keeps such blocks in per-thread arenas: each password check
/// (argon2, 19 MiB) on another blocking thread left 19-38 MiB behind, and
/// a login flood grew antenne to 550 MiB. A fixed threshold keeps the
/// memory of two concurrent checks at ~40 MiB, returned when they end.
fn bound_allocator_caches() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called first thing
    // in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
