//! `GET /api/v1/obs/multitrack-config`: the "Config Override (JSON)" a
//! streamer pastes in OBS (Settings → Stream, service *Custom…*, *Enable
//! multitrack video*, *Enable Config Override*) so OBS sends its main
//! canvas as video track 0 and its vertical canvas as track 1 on the one
//! connection to antenne.
//!
//! Checked against obs-studio's sources (obsproject/obs-studio at
//! f86e9c1d5, August 2026):
//! - `frontend/utility/models/multitrack-video.hpp`: the override parses
//!   as `GoLiveApi::Config` — `meta {service, schema_version, config_id}`
//!   (all three required when `meta` is given), `encoder_configurations[]`
//!   of `{type, width, height, framerate {numerator, denominator},
//!   settings, canvas_index, …}`, and `audio_configurations.live[]` of
//!   `{codec, track_id, channels, settings}` (all four required);
//!   `ingest_endpoints` may be left out with a Custom server URL.
//! - `frontend/utility/MultitrackVideoOutput.cpp`: `create_video_encoders`
//!   gives encoder configuration *i* to output video track *i*
//!   (`obs_output_set_video_encoder2(output, encoder, i)`), so the track id
//!   on the wire is the position in `encoder_configurations`; its
//!   `canvases` are the main canvas then the extra canvas chosen in the
//!   stream settings (`MultitrackExtraCanvas`), so `canvas_index: 1` is the
//!   vertical canvas (Aitum Vertical, Dual Format). `settings` are the
//!   encoder's own settings (obs_x264: `rate_control`, `bitrate`,
//!   `keyint_sec`, `profile`).
//! - Commit e35b16cba (PR #12665, in 32.0.1) shows multitrack for Custom
//!   services without `--enable-multitrack-video-dev`; commit f61619ce3
//!   (PR #13487, in 32.2.0) makes a Custom service *require* the override
//!   (without it OBS stops with "no config supplied"). 31.1–32.0.0 need
//!   the `--enable-multitrack-video-dev` launch flag.
//!
//! What it asks for: the main canvas 1920×1080 and the vertical canvas
//! 1080×1920, both H.264 (obs_x264, every OBS build has it) at 30 fps with
//! a keyframe every 2 s (what the vertical platforms require), 6 and 4
//! Mbit/s CBR; one AAC stereo 160 kbit/s (OBS sends it as audio track 0;
//! the vertical track takes it on antenne's side). Streamers may change
//! sizes and bitrates; the track order and `canvas_index` must stay.

use axum::Json;
use serde_json::{json, Value};

/// The Config Override JSON (see the module comment).
pub fn config_override() -> Value {
    let video = |width: u32, height: u32, kbps: u32, canvas: u32| {
        json!({
            "type": "obs_x264",
            "width": width,
            "height": height,
            "framerate": {"numerator": 30, "denominator": 1},
            "settings": {
                "rate_control": "CBR",
                "bitrate": kbps,
                "keyint_sec": 2,
                "profile": "high"
            },
            "canvas_index": canvas
        })
    };
    json!({
        "meta": {
            "service": "antenne",
            "schema_version": "2025-01-25",
            "config_id": "antenne-main-and-vertical"
        },
        "encoder_configurations": [
            video(1920, 1080, 6000, 0),
            video(1080, 1920, 4000, 1)
        ],
        "audio_configurations": {
            "live": [
                {"codec": "aac", "track_id": 1, "channels": 2, "settings": {"bitrate": 160}}
            ]
        }
    })
}

/// The answer: the JSON to paste, and as text (pretty, for the copy
/// button).
pub async fn get() -> Json<Value> {
    let config = config_override();
    let text = serde_json::to_string_pretty(&config).unwrap_or_default();
    Json(json!({"config_override": config, "text": text}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_canvas_is_track_zero_and_the_vertical_canvas_track_one() {
        let c = config_override();
        let enc = c["encoder_configurations"].as_array().expect("an array");
        assert_eq!(enc.len(), 2);
        assert_eq!(
            (enc[0]["canvas_index"].as_u64(), enc[0]["width"].as_u64()),
            (Some(0), Some(1920))
        );
        assert_eq!(
            (enc[1]["canvas_index"].as_u64(), enc[1]["height"].as_u64()),
            (Some(1), Some(1920))
        );
        for e in enc {
            assert_eq!(e["settings"]["keyint_sec"], 2, "2 s keyframes: {e}");
            assert_eq!(e["framerate"]["denominator"], 1);
        }
        let audio = c["audio_configurations"]["live"]
            .as_array()
            .expect("live audio");
        assert_eq!(audio.len(), 1, "one AAC");
        for field in ["codec", "track_id", "channels", "settings"] {
            assert!(!audio[0][field].is_null(), "OBS requires {field}");
        }
        for field in ["service", "schema_version", "config_id"] {
            assert!(c["meta"][field].is_string(), "OBS requires meta.{field}");
        }
    }
}
