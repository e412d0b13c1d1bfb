//! antenne: OBS publishes once, antenne relays to every platform.
//!
//! The data path: [`ingest`] (RTMP server) → [`hub`] (one per ingest key:
//! cache and fan-out) → [`output`] (one supervised task per destination).
//! [`encoders`] put a supervised ffmpeg between two hubs (renditions).
//! The control plane beside it: [`destinations`] (reconciles changes),
//! [`api`] (REST), [`config`] (flags). The RTMP protocol itself lives in the
//! `antenne-rtmp` crate and knows nothing of sockets or HTTP.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod app;
pub mod auth;
pub mod backoff;
pub mod config;
pub mod destinations;
pub mod encoders;
pub mod history;
pub mod http;
pub mod hub;
pub mod import;
pub mod ingest;
pub mod ingest_keys;
pub mod metrics;
pub mod obs;
pub mod obs_direct;
pub mod output;
pub mod presets;
pub mod preview;
pub mod published;
pub mod rate;
pub mod recording;
pub mod secret;
pub mod standby;
pub mod store;
