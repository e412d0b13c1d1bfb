//! Live preview end to end: real ffmpeg publishes to the real antenne and
//! the ingest card plays the stream in real headless Chromium (Media
//! Source Extensions fed by the streamed fMP4 preview). Also: the preview
//! needs a session, and nothing runs while no page watches.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

const KEY: &str = "preview_test_key_0123456789";

fn viewers(antenne: &Antenne) -> u64 {
    antenne
        .request_expect("GET", "/api/v1/runtime", None, 200)
        .expect("GET /api/v1/runtime")["preview_viewers"]
        .as_u64()
        .expect("preview_viewers is a number")
}

fn ingest_id(antenne: &Antenne) -> String {
    antenne.ingest().expect("GET /api/v1/ingest")["ingests"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

#[test]
fn the_ingest_card_plays_the_live_stream() {
    let antenne = Antenne::start(KEY).expect("antenne starts");
    let _publisher = Publisher::options()
        .gop(15)
        .start(&antenne.ingest_url(KEY))
        .expect("ffmpeg publishes");
    assert!(
        wait_until(Duration::from_secs(20), || antenne
            .ingest()
            .is_ok_and(|v| v["ingests"][0]["live"] == json!(true))),
        "the ingest goes live"
    );
    // Live, but no page: nothing runs.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(viewers(&antenne), 0, "no preview without a page");

    let browser = Browser::start("en-US").expect("chromium + chromedriver");
    browser
        .log_in(&antenne.url("/"), ADMIN_PASSWORD)
        .expect("logs in to the dashboard");

    // The preview plays: its time advances, at the ingest's size.
    let state = "const v = document.querySelector('[data-testid=preview-video]');\
                 if (!v) return null;\
                 return [v.currentTime, v.videoWidth, v.videoHeight, v.error ? v.error.code : 0];";
    let first = wait_for(Duration::from_secs(20), || {
        let v = browser.js(state, json!([])).ok()?;
        (v[0].as_f64()? > 0.5).then_some(v)
    })
    .unwrap_or_else(|| panic!("the preview plays: {:?}", browser.js(state, json!([]))));
    assert_eq!(
        (first[1].clone(), first[2].clone()),
        (json!(640), json!(360)),
        "{first}"
    );
    assert_eq!(first[3], json!(0), "no media error");
    std::thread::sleep(Duration::from_secs(2));
    let later = browser.js(state, json!([])).expect("js");
    let advanced = later[0].as_f64().unwrap_or(0.0) - first[0].as_f64().unwrap_or(0.0);
    assert!(advanced > 1.0, "time advances: {first} then {later}");
    assert!(viewers(&antenne) >= 1, "the page is counted");
    // Close to the live edge: what is buffered but not yet shown.
    let behind = browser
        .js(
            "const v = document.querySelector('[data-testid=preview-video]');\
             const b = v.buffered; return b.length ? b.end(b.length - 1) - v.currentTime : null;",
            json!([]),
        )
        .expect("js");
    println!("preview: {behind} s behind the newest frame received");
    assert!(
        behind.as_f64().is_some_and(|s| s <= 1.5),
        "at most ~1 s behind the live edge: {behind}"
    );

    // The level meter moves with the sound once the page was clicked
    // (browsers hold audio until a gesture): the publisher sends a sine.
    browser
        .click("[data-testid=ingest-card] .card-title")
        .expect("a click on the page");
    let level = wait_for(Duration::from_secs(10), || {
        let v = browser
            .js(
                "return document.querySelector('[data-role=preview]').dataset.level || null;",
                json!([]),
            )
            .ok()?;
        let l: f64 = v.as_str()?.parse().ok()?;
        (l > 0.2).then_some(l)
    });
    assert!(level.is_some(), "the audio meter shows the sound");

    // Two pictures of the preview a second apart differ (the pattern
    // moves): what the user sees is the live stream, not a still.
    let grab = "const v = document.querySelector('[data-testid=preview-video]');\
                const c = document.createElement('canvas');\
                c.width = v.videoWidth; c.height = v.videoHeight;\
                c.getContext('2d').drawImage(v, 0, 0);\
                return c.toDataURL('image/png');";
    let a = browser.js(grab, json!([])).expect("grab");
    std::thread::sleep(Duration::from_secs(1));
    let b = browser.js(grab, json!([])).expect("grab");
    assert!(a.as_str().is_some_and(|s| s.len() > 1000), "a picture");
    assert_ne!(a, b, "two pictures a second apart differ");

    // Close the page: the viewer goes away.
    drop(browser);
    assert!(
        wait_until(Duration::from_secs(15), || viewers(&antenne) == 0),
        "no viewer once the page is closed"
    );
}

#[test]
fn the_preview_is_refused_without_a_session() {
    let antenne = Antenne::start(KEY).expect("antenne starts");
    let id = ingest_id(&antenne);
    let (code, _) = antenne
        .request_anonymous("GET", &format!("/api/v1/ingest/{id}/preview"), None)
        .expect("request");
    assert_eq!(code, 401);
    // With credentials but offline: a clear refusal, nothing held.
    let (code, body) = antenne
        .request("GET", &format!("/api/v1/ingest/{id}/preview"), None)
        .expect("request");
    assert_eq!(code, 409, "{body}");
    assert_eq!(viewers(&antenne), 0);
}

#[test]
fn a_viewer_that_never_reads_does_not_slow_the_relay() {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    let nginx = Nginx::start().expect("nginx-rtmp receiver");
    let antenne = Antenne::start(KEY).expect("antenne starts");
    let dest = antenne
        .add_destination("nginx", &nginx.url(), "out", true)
        .expect("destination");
    let dest_id = Antenne::id_of(&dest);
    let _publisher = Publisher::options()
        .video_kbps(4000)
        .start(&antenne.ingest_url(KEY))
        .expect("ffmpeg publishes");
    antenne
        .wait_for_state(&dest_id, "live", Duration::from_secs(20))
        .expect("the destination goes live");
    let id = ingest_id(&antenne);

    // A viewer that asks for the preview and then reads nothing, with a
    // tiny receive buffer so that antenne's writes soon block.
    let mut sock =
        std::net::TcpStream::connect(("127.0.0.1", antenne.http_port())).expect("connects");
    let small: libc::c_int = 4096;
    // SAFETY: setsockopt on a socket we own, with a valid int option.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUF");
    write!(
        sock,
        "GET /api/v1/ingest/{id}/preview HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\r\n",
        antenne.token()
    )
    .expect("sends the request");
    assert!(
        wait_until(Duration::from_secs(10), || viewers(&antenne) == 1),
        "the viewer is counted"
    );
    std::thread::sleep(Duration::from_secs(10));
    let d = antenne.get_destination(&dest_id).expect("destination");
    assert_eq!(Antenne::state_of(&d), Some("live"), "{d}");
    assert_eq!(d["status"]["dropped_frames"], json!(0), "{d}");
    drop(sock);
    assert!(
        wait_until(Duration::from_secs(15), || viewers(&antenne) == 0),
        "the viewer goes away with its connection"
    );
    let received = nginx.recordings("out");
    let last = received.last().expect("nginx recorded the relay");
    let report = assert_good_recording(last, 9_000);
    assert!(report.max_video_gap_ms() < 200, "{}", report.summary());
}
