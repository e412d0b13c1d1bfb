//! Unit tests of the import plan (the files nginx accepts are tested
//! end to end in `tests/import_nginx.rs`).

use super::*;

fn presets() -> Presets {
    Presets::embedded().expect("presets")
}

const CONF: &str = r#"
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
events {}
rtmp {
    server {
        listen 1935;
        chunk_size 4096;
        application live {
            live on;
            record off;
            push rtmp://a.rtmp.youtube.com/live2/yt-key-123;   # YouTube
            push "rtmp://live-cdg.twitch.tv/app/live_twitch_456";
            push rtmp://127.0.0.1:19350/rtmp/FB-789?s_bl=1;
            include /etc/nginx/rtmp-extra.conf;
        }
    }
}
"#;

const STUNNEL: &str =
    "[fb-live]\nclient = yes\naccept = 127.0.0.1:19350\nconnect = live-api-s.facebook.com:443\n";

#[test]
fn turns_each_push_into_a_destination_named_after_its_platform() {
    let plan = plan(CONF, Some(STUNNEL), &presets(), &[]).expect("plan");
    let got: Vec<(&str, &str, &str, &str)> = plan
        .destinations
        .iter()
        .map(|d| {
            (
                d.name.as_str(),
                d.platform.as_str(),
                d.url.as_str(),
                d.key.expose(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "YouTube",
                "youtube",
                "rtmp://a.rtmp.youtube.com/live2",
                "yt-key-123"
            ),
            (
                "Twitch",
                "twitch",
                "rtmp://live-cdg.twitch.tv/app",
                "live_twitch_456"
            ),
            (
                "Facebook",
                "facebook",
                "rtmps://live-api-s.facebook.com:443/rtmp",
                "FB-789?s_bl=1"
            ),
        ]
    );
    assert_eq!(plan.destinations[2].via_stunnel.as_deref(), Some("fb-live"));
    assert_eq!(
        plan.ingests,
        [IngestPoint {
            port: 1935,
            application: "live".into(),
            line: 8
        }]
    );
    let notes: Vec<(usize, &str)> = plan
        .notes
        .iter()
        .map(|n| (n.line, n.text.as_str()))
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0].0, 10);
    assert!(notes[0].1.starts_with("record off"), "{notes:?}");
    assert_eq!(notes[1].0, 14);
    assert!(notes[1].1.contains("not followed"), "{notes:?}");
}

#[test]
fn keys_never_show_in_the_rendered_plan() {
    let plan = plan(CONF, Some(STUNNEL), &presets(), &[]).expect("plan");
    let text = plan.render(1935, "live");
    for key in ["yt-key-123", "live_twitch_456", "FB-789"] {
        assert!(!text.contains(key), "{key} in:\n{text}");
    }
    assert!(text.contains("stays as it is"), "{text}");
    let json = serde_json::to_string(&plan.destinations[0].view()).expect("json");
    assert!(!json.contains("yt-key-123"), "{json}");
}

#[test]
fn a_local_push_without_stunnel_is_listed_not_created() {
    let plan = plan(CONF, None, &presets(), &[]).expect("plan");
    assert_eq!(plan.destinations.len(), 2);
    assert!(plan
        .notes
        .iter()
        .any(|n| n.line == 13 && n.text.contains("port 19350") && !n.text.contains("FB-789")));
}

#[test]
fn names_do_not_repeat_existing_ones() {
    let conf = "rtmp { server { application live { live on; push rtmp://a.rtmp.youtube.com/live2/a; push rtmp://b.rtmp.youtube.com/live2/b; push rtmp://example.org:1936/x/k; } } }";
    let plan = plan(conf, None, &presets(), &["YouTube".into()]).expect("plan");
    let names: Vec<&str> = plan.destinations.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["YouTube 2", "YouTube 3", "example.org"]);
    assert_eq!(plan.destinations[2].platform, "custom");
    assert_eq!(plan.ingests[0].port, 1935, "no listen: nginx's default");
}

#[test]
fn a_push_without_a_key_is_listed() {
    let conf = "rtmp { server { listen 1936; application cam { live on; push rtmp://a.rtmp.youtube.com/live2; } } }";
    let plan = plan(conf, None, &presets(), &[]).expect("plan");
    assert!(plan.destinations.is_empty());
    assert!(
        plan.notes[0].text.contains("no stream key"),
        "{:?}",
        plan.notes
    );
    let advice = plan.obs_advice(1935, "live").join("\n");
    assert!(
        advice.contains("port 1936") && advice.contains("rtmp://HOST:1935/live"),
        "{advice}"
    );
}

#[test]
fn a_file_without_rtmp_or_broken_is_an_error() {
    assert!(matches!(
        plan("events {}\nhttp { }\n", None, &presets(), &[]),
        Err(ImportError::NoRtmp)
    ));
    let e = plan("rtmp {\n server {\n", None, &presets(), &[]).expect_err("broken");
    assert!(e.to_string().contains("line 2"), "{e}");
    let e = plan(CONF, Some("[x\n"), &presets(), &[]).expect_err("broken");
    assert!(e.to_string().contains("stunnel.conf line 1"), "{e}");
}

#[test]
fn a_plan_is_saved_all_or_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = crate::store::Store::open(dir.path()).expect("store");
    let plan = plan(CONF, Some(STUNNEL), &presets(), &[]).expect("plan");
    let mut new = stored(&plan, "ingest");
    assert!(problems(&[], &new, &presets()).is_empty());
    // The last one collides with the first: the whole save is refused.
    new[2].id = new[0].id.clone();
    assert!(store.insert_destinations(&new).is_err());
    assert!(store.destinations().expect("read").is_empty());
    new[2].id = crate::destinations::new_id();
    store.insert_destinations(&new).expect("saved");
    assert_eq!(store.destinations().expect("read").len(), 3);
}

#[test]
fn a_planned_destination_breaking_a_rule_is_reported_by_name() {
    let plan = plan(CONF, Some(STUNNEL), &presets(), &[]).expect("plan");
    let mut new = stored(&plan, "ingest");
    new[1].name = String::new();
    let found = problems(&[], &new, &presets());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("name must be"), "{found:?}");
}
