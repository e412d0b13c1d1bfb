//! RTMPS ingest (issue 14): ffmpeg publishes over TLS to the real `antenne`
//! binary started with `--rtmps-listen`, verifying antenne's certificate
//! against a test CA; an nginx-rtmp destination must receive decodable
//! media. A wrong key over TLS is refused, a client that never finishes
//! the TLS handshake is closed by the connect deadline, and bad
//! certificate or key files stop antenne at start-up with a clear message.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use support::antenne::ANTENNE_BIN;
use support::*;

const KEY: &str = "rtmps_ingest_key_0123456789";

/// antenne with RTMP as usual plus RTMPS on a free port, presenting the
/// test PKI's certificate for 127.0.0.1; returns it with the RTMPS port.
fn start_with_rtmps(pki: &TestPki) -> Result<(Antenne, u16)> {
    let port = free_port();
    let antenne = Antenne::options()
        .ingest_key(KEY)
        .arg("--rtmps-listen")
        .arg(&format!("127.0.0.1:{port}"))
        .env("ANTENNE_TLS_CERT", &pki.server_cert.display().to_string())
        .env("ANTENNE_TLS_KEY", &pki.server_key.display().to_string())
        .start()?;
    Ok((antenne, port))
}

fn rtmps_url(port: u16, key: &str) -> String {
    format!("rtmps://127.0.0.1:{port}/live/{key}")
}

#[test]
fn ffmpeg_publishes_over_rtmps_and_the_destination_gets_decodable_media() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = make_test_pki(dir.path())?;
    let nginx = Nginx::start()?;
    let (antenne, port) = start_with_rtmps(&pki)?;
    let settings = antenne.request("GET", "/api/v1/settings", None)?.1;
    assert_eq!(settings["rtmps_port"], port, "{settings}");

    let d = antenne.add_destination("N", &nginx.url(), "rtmps_dest_stream", true)?;
    let mut publisher = Publisher::options()
        .size(640, 360)
        .ca_file(&pki.ca_cert)
        .start(&rtmps_url(port, KEY))?;
    antenne
        .wait_for_state(&Antenne::id_of(&d), "live", Duration::from_secs(20))
        .with_context(|| {
            format!(
                "ffmpeg:\n{}\nantenne:\n{}",
                tail(&publisher.log(), 20),
                tail(&antenne.log(), 30)
            )
        })?;
    let ingest = antenne.ingest()?;
    assert_eq!(ingest["ingests"][0]["live"], true, "{ingest}");
    nginx
        .wait_for_recording("rtmps_dest_stream", 100_000, Duration::from_secs(20))
        .context("nginx records the stream")?;
    std::thread::sleep(Duration::from_secs(4));
    let rec = nginx
        .latest_recording("rtmps_dest_stream")
        .context("a recording")?;
    let report = assert_good_recording(&rec, 2000);
    assert_eq!(report.width, Some(640), "{}", report.summary());
    assert!(
        antenne.log().contains("scheme=\"rtmps\"") || antenne.log().contains("scheme=rtmps"),
        "the connection is logged as RTMPS: {}",
        tail(&antenne.log(), 20)
    );
    publisher.stop();
    assert!(!antenne.log().contains(KEY), "the ingest key is not logged");
    Ok(())
}

#[test]
fn a_wrong_key_over_rtmps_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = make_test_pki(dir.path())?;
    let (antenne, port) = start_with_rtmps(&pki)?;
    let mut intruder = Publisher::options()
        .ca_file(&pki.ca_cert)
        .start(&rtmps_url(port, "wrong_key_over_tls_123456"))?;
    let status = intruder.wait(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| !s.success()),
        "ffmpeg is refused: {}",
        intruder.log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || antenne
            .log()
            .contains("wrong stream key")),
        "antenne refused the key after the TLS handshake: {}",
        tail(&antenne.log(), 20)
    );
    assert_eq!(antenne.ingest()?["ingests"][0]["live"], false);
    Ok(())
}

#[test]
fn a_client_that_never_finishes_the_tls_handshake_is_closed_by_the_deadline() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = make_test_pki(dir.path())?;
    let (antenne, port) = start_with_rtmps(&pki)?;
    // Half a ClientHello record header, then silence.
    let mut socket = TcpStream::connect(("127.0.0.1", port))?;
    std::io::Write::write_all(&mut socket, &[0x16, 0x03, 0x01])?;
    socket.set_read_timeout(Some(Duration::from_secs(30)))?;
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let closed = loop {
        match socket.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let after = t.elapsed();
    ensure!(
        closed,
        "antenne kept a silent TLS client open for {after:?}; log:\n{}",
        tail(&antenne.log(), 20)
    );
    // The connect deadline is 5 s; allow for a loaded machine.
    assert!(after < Duration::from_secs(25), "closed after {after:?}");
    assert!(
        wait_until(Duration::from_secs(5), || antenne
            .log()
            .contains("did not finish the TLS handshake")),
        "{}",
        tail(&antenne.log(), 20)
    );
    // The slot came back: a real publisher still gets live over RTMPS.
    let _p = Publisher::options()
        .ca_file(&pki.ca_cert)
        .start(&rtmps_url(port, KEY))?;
    assert!(
        wait_until(Duration::from_secs(20), || antenne
            .ingest()
            .is_ok_and(|i| i["ingests"][0]["live"] == true)),
        "{}",
        tail(&antenne.log(), 20)
    );
    Ok(())
}

/// Runs antenne with these arguments; it must exit with an error quickly.
/// Returns what it printed.
fn start_up_error(data: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(ANTENNE_BIN)
        .args([
            "--rtmp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data)
        .args(["--ingest-key", KEY])
        .args(args)
        .env("ANTENNE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("ANTENNE_TLS_CERT")
        .env_remove("ANTENNE_TLS_KEY")
        .env_remove("ANTENNE_RTMPS_LISTEN")
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run antenne")?;
    ensure!(
        !out.status.success(),
        "antenne started with {args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[test]
fn bad_certificate_or_key_files_stop_antenne_with_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = make_test_pki(dir.path())?;
    let listen = format!("127.0.0.1:{}", free_port());
    let cert = pki.server_cert.display().to_string();
    let key = pki.server_key.display().to_string();
    let missing = dir.path().join("nowhere.pem").display().to_string();
    let cases: [(&str, Vec<&str>, &str); 6] = [
        (
            "missing certificate",
            vec![
                "--rtmps-listen",
                &listen,
                "--tls-cert",
                &missing,
                "--tls-key",
                &key,
            ],
            "cannot read the TLS certificate file",
        ),
        (
            "missing key",
            vec![
                "--rtmps-listen",
                &listen,
                "--tls-cert",
                &cert,
                "--tls-key",
                &missing,
            ],
            "cannot read the TLS key file",
        ),
        (
            "key of another certificate",
            vec![
                "--rtmps-listen",
                &listen,
                "--tls-cert",
                &cert,
                "--tls-key",
                pki.self_signed_key.to_str().context("utf-8 path")?,
            ],
            "does not belong to the certificate",
        ),
        (
            "certificate file holding a key",
            vec![
                "--rtmps-listen",
                &listen,
                "--tls-cert",
                &key,
                "--tls-key",
                &key,
            ],
            "no certificate",
        ),
        (
            "certificate without --rtmps-listen",
            vec!["--tls-cert", &cert, "--tls-key", &key],
            "are for RTMPS ingest: add --rtmps-listen",
        ),
        (
            "no certificate at all",
            vec!["--rtmps-listen", &listen],
            "--rtmps-listen needs both --tls-cert and --tls-key",
        ),
    ];
    for (what, args, expected) in cases {
        let data = tempfile::tempdir()?;
        let out = start_up_error(data.path(), &args)?;
        assert!(
            out.contains(expected),
            "{what}: expected {expected:?} in:\n{out}"
        );
    }
    Ok(())
}
