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
    }
}
