//! antenne's RTMP layer, sans-IO: no sockets, no clocks, no async.
//!
//! Bytes go in, events and bytes to send come out. Media bodies stay opaque
//! [`bytes::Bytes`], shared rather than copied, so Enhanced RTMP passes
//! through untouched.
//!
//! - [`handshake`]: C0/C1/C2 and S0/S1/S2, simple and digest.
//! - [`chunk`]: the chunk stream, with limits on what a peer may make us hold.
//! - [`chunked`]: a message split into chunks once, sent on many connections.
//! - [`amf0`]: AMF0 values, with bounded nesting.
//! - [`message`]: control messages, commands, data.
//! - [`flv`]: keyframe / sequence header / codec inspection of media bodies.
//! - [`multitrack`]: Enhanced RTMP multitrack tags: which track, and flattening one track.
//! - [`server`]: the publishing client's peer (ingest).
//! - [`client`]: antenne publishing to a platform.
//! - [`player`]: antenne playing (pulling) a stream from another server.
#![forbid(unsafe_code)]

pub mod amf0;
pub mod chunk;
pub mod chunked;
pub mod client;
pub mod flv;
pub mod handshake;
pub mod message;
pub mod multitrack;
mod outbox;
pub mod player;
pub mod server;

pub use client::{ClientEvent, ClientSession, PublishTarget};
pub use player::{PlayTarget, PlayerEvent, PlayerSession};
pub use server::{ServerConfig, ServerEvent, ServerSession, SessionError};
