//! Requests to OBS through obws: each with a time limit, OBS's refusals as
//! [`ObsError::Refused`] with OBS's own words, transport failures told
//! apart from refusals.

use serde_json::Value;

use super::model::{mark_controllable, ObsOutput, StreamService};
use super::{ObsError, REQUEST_TIMEOUT};

/// An obws error in words: what OBS answered (comment and status code) or
/// the chain of causes.
pub(super) fn describe(e: &obws::error::Error) -> String {
    match e {
        obws::error::Error::Api { code, message } => {
            let code = format!("status {} {code:?}", u16::from(*code));
            match message.as_deref().filter(|m| !m.is_empty()) {
                Some(m) => format!("{m} ({code})"),
                None => code,
            }
        }
        _ => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                let more = cause.to_string();
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                source = cause.source();
            }
            text
        }
    }
}

/// Whether the connection itself failed (rather than OBS refusing).
pub(super) fn is_transport(e: &obws::error::Error) -> bool {
    matches!(
        e,
        obws::error::Error::Send(_)
            | obws::error::Error::ReceiveMessage(_)
            | obws::error::Error::Disconnected
            | obws::error::Error::Timeout
            | obws::error::Error::Connect(_)
    )
}

/// One request with a time limit; OBS's refusals become
/// [`ObsError::Refused`].
pub(super) async fn request<T>(
    fut: impl std::future::Future<Output = obws::error::Result<T>>,
) -> Result<T, ObsError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Err(_) => Err(ObsError::Timeout),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ObsError::Refused(describe(&e))),
    }
}

pub(super) async fn stream_active(client: &obws::Client) -> Result<bool, ObsError> {
    Ok(request(client.streaming().status()).await?.active)
}

pub(super) async fn service_settings(client: &obws::Client) -> Result<StreamService, ObsError> {
    let s = request(client.config().stream_service_settings::<Value>()).await?;
    Ok(StreamService {
        kind: s.r#type,
        settings: s.settings,
    })
}

pub(super) async fn output_list(client: &obws::Client) -> Result<Vec<ObsOutput>, ObsError> {
    let list = request(client.outputs().list()).await?;
    Ok(mark_controllable(
        list.into_iter()
            .map(|o| ObsOutput {
                name: o.name,
                kind: o.kind,
                active: o.active,
                controllable: true,
            })
            .collect(),
    ))
}

/// `HH:MM:SS.mmm`.
pub(super) fn timecode(ms: i128) -> String {
    let ms = ms.max(0);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}
