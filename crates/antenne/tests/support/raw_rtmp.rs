//! [`RawRtmp`]: a raw-socket RTMP client for attacking the ingest, as a
//! hostile client would: any loopback source address (`127.0.0.N`, so that
//! per-address limits can be tested beside a legitimate publisher on
//! 127.0.0.1), an optional small receive buffer (a client that stops
//! reading fills it fast), hand-made chunks and commands, and a check that
//! antenne closed the connection.
//!
//! Every socket operation has a timeout: a helper never blocks a test.

use antenne_rtmp::amf0::Amf0Value;
use antenne_rtmp::chunk::ChunkEncoder;
use antenne_rtmp::message::{type_id, Command};
use bytes::BytesMut;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `127.0.0.n`: a loopback source address (Linux routes all of 127/8 to lo).
pub fn loopback(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for raw sockets")
    })
}

/// One raw connection to the ingest port.
pub struct RawRtmp {
    pub stream: TcpStream,
    enc: ChunkEncoder,
}

impl RawRtmp {
    /// Connects from `from` to 127.0.0.1:`port`, with a receive buffer of
    /// `recv_buffer` bytes if given (set before connecting so the window
    /// stays small). Writes time out after 2 s, reads after 5 s.
    pub fn open(from: Ipv4Addr, port: u16, recv_buffer: Option<u32>) -> io::Result<RawRtmp> {
        let stream = runtime().block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            if let Some(size) = recv_buffer {
                socket.set_recv_buffer_size(size)?;
            }
            socket.bind(SocketAddr::from((from, 0)))?;
            let s = tokio::time::timeout(
                Duration::from_secs(5),
                socket.connect(SocketAddr::from(([127, 0, 0, 1], port))),
            )
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            s.into_std()
        })?;
        stream.set_nonblocking(false)?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let _ = stream.set_nodelay(true);
        Ok(RawRtmp {
            stream,
            enc: ChunkEncoder::new(),
        })
    }

    /// The local address (to find antenne's log lines about it).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// C0, C1 and C2 (simple handshake, zeros) at once, without reading.
    pub fn handshake(&mut self) -> io::Result<()> {
        let mut v = vec![3u8];
        v.extend_from_slice(&[0u8; 2 * 1536]);
        self.stream.write_all(&v)
    }

    /// Sends a Set Chunk Size and uses it for what follows.
    pub fn set_chunk_size(&mut self, size: u32) -> io::Result<()> {
        let mut out = BytesMut::new();
        self.enc.encode_into(
            2,
            0,
            type_id::SET_CHUNK_SIZE,
            0,
            &size.to_be_bytes(),
            &mut out,
        );
        self.enc.set_chunk_size(size);
        self.stream.write_all(&out)
    }

    /// The chunks of one message, as bytes (to send in pieces).
    pub fn chunks(&mut self, csid: u32, type_id: u8, stream_id: u32, body: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.enc
            .encode_into(csid, 0, type_id, stream_id, body, &mut out);
        out.to_vec()
    }

    /// The chunks of an AMF0 command on chunk stream 3.
    pub fn command_bytes(&mut self, name: &str, txn: f64, args: Vec<Amf0Value>) -> Vec<u8> {
        let object = if name == "connect" {
            Amf0Value::object([
                ("app", Amf0Value::string("live")),
                ("tcUrl", Amf0Value::string("rtmp://127.0.0.1/live")),
            ])
        } else {
            Amf0Value::Null
        };
        let body = Command::new(name, txn, object, args).encode();
        self.chunks(3, type_id::COMMAND_AMF0, 0, &body)
    }

    /// `connect` to app `live`, without reading the answer.
    pub fn connect_live(&mut self) -> io::Result<()> {
        let b = self.command_bytes("connect", 1.0, vec![]);
        self.stream.write_all(&b)
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// True if antenne closed the connection within `within`: reads (and
    /// discards what antenne had sent) until end of stream or a reset.
    pub fn closed_by_peer(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = self
                .stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }

    /// Without blocking: true if antenne has closed the connection (end of
    /// stream or reset seen), false while it is open (data waiting counts
    /// as open; it is left unread).
    pub fn is_closed_now(&self) -> bool {
        let _ = self.stream.set_nonblocking(true);
        let mut b = [0u8; 1];
        let closed = match self.stream.peek(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        let _ = self.stream.set_nonblocking(false);
        closed
    }
}
