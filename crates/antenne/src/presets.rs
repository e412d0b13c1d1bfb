//! Platform presets: data (`assets/presets.json`), not code branches. A
//! preset fills the server URL and says where on the platform the key is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The presets file, embedded at compile time.
pub const PRESETS_JSON: &str = include_str!("../assets/presets.json");

/// One platform.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Preset {
    pub id: String,
    pub name: String,
    /// Server URL; empty when the platform gives one per session/account.
    pub url: String,
    /// Where to find the key, by language.
    pub key_help: BTreeMap<String, String>,
    #[serde(default)]
    pub key_per_session: bool,
    #[serde(default)]
    pub url_per_session: bool,
    /// The platform may give a new stream key for each live (always for
    /// Instagram and TikTok; for Facebook unless "Use a persistent stream
    /// key" is on): the OBS dock offers a quick way to paste it. Sources:
    /// README, "OBS dock".
    #[serde(default)]
    pub new_key_each_live: bool,
    /// What the platform accepts (guardrails); sources in README,
    /// "Platform limits".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// A platform's limits on what it is sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Limits {
    /// Highest video bitrate (kbit/s) it takes or recommends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_video_kbps: Option<u32>,
    /// Largest picture, in the platform's orientation (width × height).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    /// Video codecs accepted (`h264`, `hevc`, `av1`).
    #[serde(default)]
    pub codecs: Vec<String>,
    /// Longest keyframe interval (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_keyframe_s: Option<f64>,
    pub orientation: Orientation,
    /// Where these figures come from (documentation pages, when read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// Which way up the platform wants the picture.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Orientation {
    #[default]
    Any,
    Horizontal,
    Vertical,
}

/// What is known of a stream a destination would get.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamFacts {
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `h264`, `hevc`, `av1` (lower case).
    pub video_codec: Option<String>,
    pub video_kbps: Option<f64>,
    /// Longest gap between keyframes (seconds), once measured.
    pub keyframe_interval_s: Option<f64>,
}

/// One limit a stream breaks, in plain words; `fix` says which kind of
/// rendition repairs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breach {
    pub message: String,
    pub fix: Fix,
}

/// The rendition that repairs a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fix {
    /// A vertical 9:16 rendition.
    Vertical,
    /// A bitrate cap (the platform's maximum).
    BitrateCap,
    /// H.264 at most 1080p.
    H264,
    /// A smaller picture.
    Smaller,
}

impl Limits {
    /// Every limit `s` breaks (nothing when too little is known).
    pub fn breaches(&self, platform: &str, s: &StreamFacts) -> Vec<Breach> {
        let mut out = Vec::new();
        let size = s.width.zip(s.height);
        if let Some((w, h)) = size {
            let wrong = match self.orientation {
                Orientation::Vertical => w > h,
                Orientation::Horizontal => h > w,
                Orientation::Any => false,
            };
            if wrong {
                let (way, fix) = match self.orientation {
                    Orientation::Vertical => ("vertical", Fix::Vertical),
                    _ => ("horizontal", Fix::Smaller),
                };
                out.push(Breach {
                    message: format!("{platform} expects {way} video; your stream is {w}×{h}"),
                    fix,
                });
            } else if let (Some(mw), Some(mh)) = (self.max_width, self.max_height) {
                if w > mw || h > mh {
                    out.push(Breach {
                        message: format!(
                            "{platform} takes at most {mw}×{mh}; your stream is {w}×{h}"
                        ),
                        fix: Fix::Smaller,
                    });
                }
            }
        }
        if let Some(codec) = &s.video_codec {
            let c = codec.to_ascii_lowercase();
            if !self.codecs.is_empty() && !self.codecs.contains(&c) {
                out.push(Breach {
                    message: format!(
                        "{platform} takes {} only; your stream is {c}",
                        self.codecs.join(", ")
                    ),
                    fix: Fix::H264,
                });
            }
        }
        if let (Some(max), Some(kbps)) = (self.max_video_kbps, s.video_kbps) {
            // A margin: an encoder's bitrate wanders around its target.
            if kbps > f64::from(max) * 1.1 {
                out.push(Breach {
                    message: format!(
                        "{platform} takes at most {} Mbit/s; your stream is {:.1} Mbit/s",
                        fmt_mbit(max),
                        kbps / 1000.0
                    ),
                    fix: Fix::BitrateCap,
                });
            }
        }
        if let (Some(max), Some(every)) = (self.max_keyframe_s, s.keyframe_interval_s) {
            // A margin for rounding (60 frames at 29.97 fps are 2.002 s).
            if every > max * 1.05 {
                out.push(Breach {
                    message: format!(
                        "{platform} wants a keyframe at least every {} s; your stream has one every {} s",
                        fmt_secs(max),
                        fmt_secs(every)
                    ),
                    fix: self.fix_for_keyframes(),
                });
            }
        }
        out
    }

    /// Every rendition puts a keyframe every 2 s (the longest any platform
    /// here takes): the one that repairs a long keyframe interval is the
    /// one the platform would want anyway.
    fn fix_for_keyframes(&self) -> Fix {
        match (self.orientation, self.max_video_kbps) {
            (Orientation::Vertical, _) => Fix::Vertical,
            (_, Some(_)) => Fix::BitrateCap,
            _ => Fix::H264,
        }
    }
}

fn fmt_secs(s: f64) -> String {
    if (s - s.round()).abs() < 0.05 {
        format!("{:.0}", s.round())
    } else {
        format!("{s:.1}")
    }
}

fn fmt_mbit(kbps: u32) -> String {
    let m = f64::from(kbps) / 1000.0;
    if m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

/// All presets, in display order.
#[derive(Debug, Clone)]
pub struct Presets {
    list: Vec<Preset>,
}

impl Presets {
    /// The embedded presets. The file is checked by a unit test, so this
    /// only fails on a build that skipped the tests.
    pub fn embedded() -> anyhow::Result<Presets> {
        let list: Vec<Preset> = serde_json::from_str(PRESETS_JSON)
            .map_err(|e| anyhow::anyhow!("assets/presets.json is invalid: {e}"))?;
        Ok(Presets { list })
    }

    pub fn all(&self) -> &[Preset] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<&Preset> {
        self.list.iter().find(|p| p.id == id)
    }

    /// The preset whose server the URL points at, else `custom`.
    pub fn guess(&self, url: &str) -> &str {
        let host = |u: &str| {
            u.split_once("://")
                .map(|(_, r)| r)
                .unwrap_or(u)
                .split(['/', ':', '?'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let h = host(url);
        self.list
            .iter()
            .find(|p| !p.url.is_empty() && !h.is_empty() && host(&p.url) == h)
            .map(|p| p.id.as_str())
            .unwrap_or("custom")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_horizontal_stream_breaks_tiktok_and_a_fast_one_facebook() {
        let presets = Presets::embedded().expect("presets");
        let facts = StreamFacts {
            width: Some(1920),
            height: Some(1080),
            video_codec: Some("h264".into()),
            video_kbps: Some(8000.0),
            keyframe_interval_s: Some(2.0),
        };
        let tiktok = presets.get("tiktok").and_then(|p| p.limits.clone());
        let b = tiktok.expect("limits").breaches("TikTok", &facts);
        assert_eq!(
            b,
            vec![Breach {
                message: "TikTok expects vertical video; your stream is 1920×1080".into(),
                fix: Fix::Vertical,
            }]
        );
        let fb = presets.get("facebook").and_then(|p| p.limits.clone());
        let b = fb.expect("limits").breaches("Facebook", &facts);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].fix, Fix::BitrateCap);
        assert!(b[0].message.contains("at most 6 Mbit/s"), "{b:?}");
        let kick = presets.get("kick").and_then(|p| p.limits.clone());
        let hevc = StreamFacts {
            video_codec: Some("hevc".into()),
            ..facts.clone()
        };
        let b = kick.expect("limits").breaches("Kick", &hevc);
        assert_eq!(b[0].fix, Fix::H264, "{b:?}");
        let yt = presets.get("youtube").and_then(|p| p.limits.clone());
        assert!(yt.expect("limits").breaches("YouTube", &facts).is_empty());
    }

    #[test]
    fn a_keyframe_every_5_s_breaks_facebook_and_asks_for_its_rendition() {
        let presets = Presets::embedded().expect("presets");
        let limits = |id: &str| {
            presets
                .get(id)
                .and_then(|p| p.limits.clone())
                .expect("limits")
        };
        let slow = StreamFacts {
            width: Some(1280),
            height: Some(720),
            video_codec: Some("h264".into()),
            video_kbps: Some(3000.0),
            keyframe_interval_s: Some(5.0),
        };
        assert_eq!(
            limits("facebook").breaches("Facebook", &slow),
            vec![Breach {
                message:
                    "Facebook wants a keyframe at least every 4 s; your stream has one every 5 s"
                        .into(),
                fix: Fix::BitrateCap,
            }]
        );
        let b = limits("kick").breaches("Kick", &slow);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].fix, Fix::H264);
        assert!(b[0].message.contains("every 2 s"), "{b:?}");
        // Within the limit, or a rounding above it: nothing.
        for every in [4.0, 4.1] {
            let ok = StreamFacts {
                keyframe_interval_s: Some(every),
                ..slow.clone()
            };
            assert!(limits("facebook").breaches("Facebook", &ok).is_empty());
        }
        // Not measured yet: nothing.
        let unknown = StreamFacts {
            keyframe_interval_s: None,
            ..slow
        };
        assert!(limits("youtube").breaches("YouTube", &unknown).is_empty());
    }

    #[test]
    fn the_presets_file_is_valid_and_complete() {
        let presets = Presets::embedded().expect("presets.json parses");
        for id in [
            "youtube",
            "twitch",
            "facebook",
            "instagram",
            "tiktok",
            "kick",
            "x",
            "linkedin",
            "onestream",
            "restream",
            "custom",
        ] {
            let p = presets
                .get(id)
                .unwrap_or_else(|| panic!("preset {id} missing"));
            assert!(
                p.key_help.contains_key("en") && p.key_help.contains_key("fr"),
                "{id}: help in both languages"
            );
            if !p.url.is_empty() {
                crate::output::url::parse(&p.url, "key").unwrap_or_else(|e| panic!("{id}: {e}"));
            } else {
                assert!(
                    p.url_per_session || id == "custom",
                    "{id}: no URL but not per session"
                );
            }
        }
        assert_eq!(
            presets
                .get("facebook")
                .map(|p| p.url.starts_with("rtmps://")),
            Some(true)
        );
        assert_eq!(presets.guess("rtmp://a.rtmp.youtube.com/live2"), "youtube");
        let fresh: Vec<&str> = presets
            .all()
            .iter()
            .filter(|p| p.new_key_each_live)
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(fresh, ["facebook", "instagram", "tiktok"]);
        assert_eq!(presets.guess("rtmp://127.0.0.1/live"), "custom");
        for p in presets.all() {
            if let Some(l) = &p.limits {
                assert!(!l.sources.is_empty(), "{}: the limits' sources", p.id);
                assert!(l.max_keyframe_s.is_some(), "{}: a keyframe limit", p.id);
            }
        }
    }
}
