//! Media containers for antenne, sans-IO: no tokio, no sockets, no files,
//! no clocks. Callers feed bytes in and take bytes or tags out; where the
//! bytes come from (a pipe to ffmpeg, a socket, a file) is theirs.
//!
//! Today: [`flv`], the FLV stream writer and a bounded incremental reader,
//! used to pipe a hub's stream into an ffmpeg child (`-f flv -i pipe:0`)
//! and to read its output back (`-f flv pipe:1`); [`fmp4`], the fragmented
//! MP4 muxer; [`ts`], the MPEG-TS demuxer (SRT ingest, [`ts::to_flv`]) and
//! muxer (SRT destinations, [`ts::mux`]).
//!
//! Why a crate of its own rather than `antenne-rtmp`: FLV files and pipes
//! are containers, not the RTMP protocol (RTMP carries FLV tag *bodies*,
//! which `antenne_rtmp::flv` inspects); and decoders of untrusted bytes
//! live in small crates that are fuzzed and property-tested on their own.
#![forbid(unsafe_code)]

pub mod flv;
pub mod fmp4;
pub mod hevc;
pub mod ts;
