//! The rules a destination obeys, in one place: the API (create, update),
//! `antenne import` and the start-up load all check with these functions,
//! so a state the API would refuse cannot come in through a backup or a
//! database edited by hand.
//!
//! - a name of 1 to 100 characters;
//! - a URL (with the key) that [`url::parse`] accepts;
//! - a platform that is a preset;
//! - `via_obs`, when set, of 1 to 100 characters;
//! - at most one enabled destination streamed by OBS's main output;
//! - a track source is not track 0 (that is the main picture), and a
//!   rendition source takes the rendition's audio (audio track 0).

use super::{DestinationError, OBS_MAIN};
use crate::output::url::{self, Target};
use crate::presets::Presets;
use crate::store::{StoredDestination, StoredTracks, StoredVideo};

/// The longest name and `via_obs` value, in characters.
const MAX_LEN: usize = 100;

pub fn name(name: &str) -> Result<(), DestinationError> {
    let n = name.trim().chars().count();
    if n == 0 || n > MAX_LEN {
        return Err(DestinationError::BadName);
    }
    Ok(())
}

pub fn platform(presets: &Presets, platform: &str) -> Result<(), DestinationError> {
    if presets.get(platform).is_none() {
        return Err(DestinationError::UnknownPlatform(platform.to_owned()));
    }
    Ok(())
}

pub fn via_obs(via: Option<&str>) -> Result<(), DestinationError> {
    if let Some(via) = via {
        let n = via.trim().chars().count();
        if n == 0 || n > MAX_LEN {
            return Err(DestinationError::BadViaObs);
        }
    }
    Ok(())
}

/// The ingest tracks a destination takes, beside its rendition (if any).
pub fn tracks(
    rendition: Option<&str>,
    tracks: Option<&StoredTracks>,
) -> Result<(), DestinationError> {
    let Some(t) = tracks else {
        return Ok(());
    };
    if t.video == StoredVideo::Track(0) {
        return Err(DestinationError::BadTrack);
    }
    if rendition.is_some() && t.audio != 0 {
        return Err(DestinationError::AudioTrackWithRendition);
    }
    Ok(())
}

/// A URL sent back as the API showed it (keys masked with `…`) would
/// replace the real one: refused.
pub fn not_masked(url: &str) -> Result<(), DestinationError> {
    if url.contains('…') {
        return Err(DestinationError::MaskedUrl);
    }
    Ok(())
}

/// Every rule about one destination on its own; the resolved target when
/// it obeys them all, else every problem found.
pub fn destination(
    d: &StoredDestination,
    presets: &Presets,
) -> Result<Target, Vec<DestinationError>> {
    let mut problems = Vec::new();
    if let Err(e) = name(&d.name) {
        problems.push(e);
    }
    if let Err(e) = platform(presets, &d.platform) {
        problems.push(e);
    }
    if let Err(e) = via_obs(d.via_obs.as_deref()) {
        problems.push(e);
    }
    if let Err(e) = tracks(d.source.as_deref(), d.tracks.as_ref()) {
        problems.push(e);
    }
    match url::parse(&d.url, &d.key) {
        Ok(t) if problems.is_empty() => Ok(t),
        Ok(_) => Err(problems),
        Err(e) => {
            problems.insert(0, e.into());
            Err(problems)
        }
    }
}

/// One destination among others (what the API checks before a create or
/// an update, under the writers' lock): OBS has a single stream output.
/// `others` are `(id, name, enabled, via_obs)` of the destinations there.
pub fn obs_main_free<'a>(
    id: &str,
    via: Option<&str>,
    enabled: bool,
    others: impl IntoIterator<Item = (&'a str, &'a str, bool, Option<&'a str>)>,
) -> Result<(), DestinationError> {
    if via != Some(OBS_MAIN) || !enabled {
        return Ok(());
    }
    match others
        .into_iter()
        .find(|(other, _, on, v)| *other != id && *on && *v == Some(OBS_MAIN))
    {
        Some((_, name, _, _)) => Err(DestinationError::ObsMainBusy(name.to_owned())),
        None => Ok(()),
    }
}

/// A whole set (a backup, or what the store holds at start-up): every
/// destination's own rules plus the rules between them. Returns, per
/// destination in order, its problems (empty when it is fine). Of two
/// enabled destinations on OBS's main output the later one is at fault.
pub fn all(set: &[StoredDestination], presets: &Presets) -> Vec<Vec<DestinationError>> {
    let mut out = Vec::with_capacity(set.len());
    for (i, d) in set.iter().enumerate() {
        let mut problems = destination(d, presets).err().unwrap_or_default();
        let before = set[..i].iter().map(|o| {
            (
                o.id.as_str(),
                o.name.as_str(),
                o.enabled,
                o.via_obs.as_deref(),
            )
        });
        if let Err(e) = obs_main_free(&d.id, d.via_obs.as_deref(), d.enabled, before) {
            problems.push(e);
        }
        out.push(problems);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(id: &str, via: Option<&str>, enabled: bool) -> StoredDestination {
        StoredDestination {
            id: id.into(),
            name: format!("Dest {id}"),
            platform: "custom".into(),
            url: "rtmp://127.0.0.1/live".into(),
            key: "k".into(),
            enabled,
            ingest: "i".into(),
            via_obs: via.map(str::to_owned),
            source: None,
            tracks: None,
        }
    }

    #[test]
    fn a_second_enabled_obs_main_is_refused_and_names_the_first() {
        let presets = Presets::embedded().expect("presets");
        let set = [
            dest("a", Some(OBS_MAIN), true),
            dest("b", Some(OBS_MAIN), false),
            dest("c", Some(OBS_MAIN), true),
            dest("d", None, true),
        ];
        let problems = all(&set, &presets);
        assert!(problems[0].is_empty() && problems[1].is_empty() && problems[3].is_empty());
        assert_eq!(problems[2].len(), 1);
        assert!(
            problems[2][0].to_string().contains("Dest a"),
            "{:?}",
            problems[2]
        );
    }

    #[test]
    fn reports_every_problem_of_a_destination() {
        let presets = Presets::embedded().expect("presets");
        let mut d = dest("a", Some(""), true);
        d.name = String::new();
        d.platform = "nope".into();
        d.url = "http://x".into();
        let problems = destination(&d, &presets).expect_err("refused");
        let text: Vec<String> = problems.iter().map(|e| e.to_string()).collect();
        assert_eq!(problems.len(), 4, "{text:?}");
        assert!(text[0].contains("invalid url"), "{text:?}");
    }

    #[test]
    fn refuses_track_zero_as_a_track_source_and_an_audio_track_with_a_rendition() {
        let presets = Presets::embedded().expect("presets");
        let mut d = dest("a", None, true);
        let t = |video, audio| Some(StoredTracks { video, audio });
        d.tracks = t(StoredVideo::Track(0), 0);
        let e = destination(&d, &presets).expect_err("track 0 refused");
        assert!(e[0].to_string().contains("main picture"), "{e:?}");
        d.source = Some("r1".into());
        d.tracks = t(StoredVideo::Main, 2);
        assert!(
            destination(&d, &presets).is_err(),
            "a rendition takes its own audio"
        );
        d.source = None;
        for (video, audio) in [(StoredVideo::Vertical, 2), (StoredVideo::Track(1), 0)] {
            d.tracks = t(video, audio);
            assert!(
                destination(&d, &presets).is_ok(),
                "{video:?} with audio {audio}"
            );
        }
    }
}
