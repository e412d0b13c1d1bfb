//! An encoder's state ([`EncoderState`]) and how it is read from ffmpeg's
//! stderr ([`StderrParser`]): `-progress pipe:2` blocks (`frame=`, `fps=`,
//! `bitrate=`, `drop_frames=`, `dup_frames=`, `speed=`, then `progress=`)
//! and, between them, error lines.
//!
//! Invariants: error lines are sanitised before they are kept (URLs lose
//! everything after their host, `key=`/`token=` values are masked, lines
//! are cut at [`MAX_LINE`] characters) and only the last [`KEPT_LINES`]
//! are kept, so ffmpeg's stderr cannot grow memory nor leak a secret into
//! the state, the API or the logs.

use std::collections::VecDeque;

use serde::Serialize;

/// What an encoder is doing, for the API, the UI and metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EncoderState {
    /// Not needed: its ingest is offline or nobody uses it.
    Stopped,
    /// ffmpeg started, no progress report yet.
    Starting,
    Running(Progress),
    /// ffmpeg exited or stalled; it starts again after a backoff.
    Restarting {
        attempt: u32,
        error: String,
    },
    /// ffmpeg cannot run here (not installed, not executable).
    Unavailable {
        reason: String,
    },
}

/// ffmpeg's own figures, from its last progress report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    pub fps: f64,
    /// Encoding speed relative to real time (1.0 keeps up).
    pub speed: f64,
    pub bitrate_kbps: f64,
    /// Frames ffmpeg dropped (to cap the frame rate, or late).
    pub dropped: u64,
    /// Frames ffmpeg duplicated (gaps in the input).
    pub duplicated: u64,
    pub frames: u64,
}

/// Longest stderr line kept (characters).
pub const MAX_LINE: usize = 300;
/// Error lines kept for the state's error text.
pub const KEPT_LINES: usize = 4;

/// Reads ffmpeg's stderr line by line.
#[derive(Debug, Default)]
pub struct StderrParser {
    current: Progress,
    errors: VecDeque<String>,
}

impl StderrParser {
    /// Takes one line; returns the progress when a report is complete.
    pub fn line(&mut self, line: &str) -> Option<Progress> {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        let Some((key, value)) = line.split_once('=') else {
            self.keep_error(line);
            return None;
        };
        let num = || {
            value
                .trim()
                .trim_end_matches("kbits/s")
                .trim_end_matches('x')
                .trim()
        };
        let c = &mut self.current;
        match key {
            "frame" => c.frames = num().parse().unwrap_or(c.frames),
            "fps" => c.fps = num().parse().unwrap_or(0.0),
            "bitrate" => c.bitrate_kbps = num().parse().unwrap_or(0.0),
            "drop_frames" => c.dropped = num().parse().unwrap_or(c.dropped),
            "dup_frames" => c.duplicated = num().parse().unwrap_or(c.duplicated),
            "speed" => c.speed = num().parse().unwrap_or(0.0),
            "progress" => return Some(self.current.clone()),
            k if is_progress_key(k) => {}
            _ => self.keep_error(line),
        }
        None
    }

    fn keep_error(&mut self, line: &str) {
        if self.errors.len() == KEPT_LINES {
            self.errors.pop_front();
        }
        self.errors.push_back(sanitize(line));
    }

    /// The last error lines, joined, for a `Restarting` state.
    pub fn last_errors(&self) -> Option<String> {
        (!self.errors.is_empty())
            .then(|| self.errors.iter().cloned().collect::<Vec<_>>().join(" | "))
    }
}

/// Other keys of a `-progress` report.
fn is_progress_key(k: &str) -> bool {
    k.starts_with("stream_")
        || matches!(k, "total_size" | "out_time_us" | "out_time_ms" | "out_time")
}

/// Removes what could be a secret from a line: anything after a URL's
/// host, the value of `key=`, `token=`, `password=`; and cuts it short.
pub fn sanitize(line: &str) -> String {
    let mut out = Vec::new();
    for word in line.split(' ') {
        let lower = word.to_ascii_lowercase();
        if let Some(i) = word.find("://") {
            let rest = &word[i + 3..];
            let host = rest.split('/').next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            out.push(format!("{}://{}/…", &word[..i], host));
        } else if ["key=", "token=", "password=", "secret="]
            .iter()
            .any(|p| lower.contains(p))
        {
            let cut = word.find('=').map(|i| &word[..=i]).unwrap_or("");
            out.push(format!("{cut}…"));
        } else {
            out.push(word.to_string());
        }
    }
    let s = out.join(" ");
    if s.chars().count() > MAX_LINE {
        let mut cut: String = s.chars().take(MAX_LINE).collect();
        cut.push('…');
        cut
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_progress_report() {
        let mut p = StderrParser::default();
        let report = "frame=120\nfps=29.97\nstream_0_0_q=23.0\nbitrate=1012.3kbits/s\n\
                      total_size=123456\nout_time_us=4000000\ndup_frames=2\ndrop_frames=5\n\
                      speed=1.01x\nprogress=continue";
        let mut got = None;
        for l in report.lines() {
            got = got.or(p.line(l));
        }
        let got = got.expect("a report");
        assert_eq!(got.frames, 120);
        assert_eq!(got.fps, 29.97);
        assert_eq!(got.bitrate_kbps, 1012.3);
        assert_eq!((got.dropped, got.duplicated), (5, 2));
        assert_eq!(got.speed, 1.01);
        assert_eq!(p.last_errors(), None);
    }

    #[test]
    fn tolerates_missing_figures_at_start() {
        let mut p = StderrParser::default();
        p.line("bitrate=N/A");
        p.line("speed=N/A");
        let got = p.line("progress=continue").expect("a report");
        assert_eq!((got.bitrate_kbps, got.speed), (0.0, 0.0));
    }

    #[test]
    fn keeps_the_last_error_lines_without_secrets() {
        let mut p = StderrParser::default();
        for i in 0..10 {
            p.line(&format!("error {i}"));
        }
        p.line("rtmp://user:pw@live.example.com/app/SECRETKEY: I/O error");
        p.line("Invalid option key=SECRETKEY");
        let errors = p.last_errors().expect("errors kept");
        assert!(!errors.contains("SECRETKEY"), "{errors}");
        assert!(!errors.contains("pw"), "{errors}");
        assert!(errors.contains("rtmp://live.example.com/…"), "{errors}");
        assert!(errors.starts_with("error 8 | error 9"), "{errors}");
    }

    #[test]
    fn cuts_long_lines() {
        let line = "x".repeat(5000);
        assert_eq!(sanitize(&line).chars().count(), MAX_LINE + 1);
    }

    #[test]
    fn state_serialises_with_its_name() {
        let s = EncoderState::Restarting {
            attempt: 2,
            error: "ffmpeg exited".into(),
        };
        let json = serde_json::to_string(&s).expect("serialises");
        assert_eq!(
            json,
            r#"{"state":"restarting","attempt":2,"error":"ffmpeg exited"}"#
        );
    }
}
