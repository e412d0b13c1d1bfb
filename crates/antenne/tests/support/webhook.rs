//! A webhook receiver: a small HTTP/1.1 server (std `TcpListener` on
//! 127.0.0.1, one thread) that records every request (method, path,
//! headers, body) and answers with the statuses queued by the test (200
//! once the queue is empty). One request per connection (`Connection:
//! close`). Stops when dropped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered.
    pub answered: u16,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<ReceivedRequest>>,
    answers: Mutex<VecDeque<u16>>,
    stop: AtomicBool,
}

/// The receiver; see the module doc.
pub struct WebhookReceiver {
    port: u16,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebhookReceiver {
    pub fn start() -> Result<WebhookReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").context("webhook receiver: bind")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    let _ = serve(conn, &s);
                }
            }
        });
        Ok(WebhookReceiver {
            port,
            shared,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next requests are answered with these statuses, in order.
    pub fn answer_next(&self, statuses: &[u16]) {
        if let Ok(mut a) = self.shared.answers.lock() {
            a.extend(statuses);
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, s: &Shared) -> Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let answered = s
        .answers
        .lock()
        .ok()
        .and_then(|mut a| a.pop_front())
        .unwrap_or(200);
    if let Ok(mut r) = s.requests.lock() {
        r.push(ReceivedRequest {
            method,
            path,
            headers,
            body,
            answered,
        });
    }
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {answered} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    )?;
    conn.flush()?;
    Ok(())
}
