//! Tests of the binding: stream ids, addresses, and libsrt itself
//! (listen, refuse, accept, send, receive on 127.0.0.1).

use std::sync::Arc;

use super::*;

#[test]
fn reads_the_key_from_plain_and_access_control_stream_ids() {
    assert_eq!(key_from_stream_id("abc"), Some("abc"));
    assert_eq!(key_from_stream_id("#!::r=live/abc,m=publish"), Some("abc"));
    assert_eq!(key_from_stream_id("#!::m=publish,r=abc"), Some("abc"));
    assert_eq!(key_from_stream_id("#!::r=abc"), Some("abc"));
    assert_eq!(key_from_stream_id("#!::r=live/abc,m=request"), None);
    assert_eq!(key_from_stream_id("#!::u=me"), None);
    assert_eq!(key_from_stream_id("#!::garbage"), None);
}

#[test]
fn socket_addresses_survive_the_round_trip_through_sockaddr() {
    for a in ["127.0.0.1:9000", "[::1]:1234"] {
        let addr: SocketAddr = a.parse().unwrap();
        let (storage, _) = to_sockaddr(addr);
        // SAFETY: to_sockaddr wrote a sockaddr of the address's family.
        let back = unsafe {
            from_sockaddr(&storage as *const libc::sockaddr_storage as *const libc::sockaddr)
        };
        assert_eq!(back, Some(addr));
    }
}

#[test]
fn connects_and_carries_messages_through_libsrt() {
    let srt = Srt::get().expect("libsrt (libsrt1.5-openssl) is installed for the tests");
    let listener = srt
        .listen(
            "127.0.0.1:0".parse().unwrap(),
            4,
            &ListenerOptions {
                latency: None,
                peer_idle_timeout: Duration::from_secs(5),
            },
            Arc::new(|h: &Handshake| {
                if h.stream_id == "good" {
                    Verdict::Accept {
                        passphrase: Some("0123456789secret".into()),
                    }
                } else {
                    Verdict::Reject(1401)
                }
            }),
        )
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..100 {
            if let Some((socket, _)) = listener.accept(Duration::from_millis(100)).unwrap() {
                socket.set_recv_timeout(Duration::from_secs(5)).unwrap();
                let mut buf = [0u8; 1500];
                let Received::Data(n) = socket.recv(&mut buf).unwrap() else {
                    panic!("nothing received");
                };
                return (socket.stream_id(), buf[..n].to_vec());
            }
        }
        panic!("no connection accepted");
    });
    let options = |id: &str, pass: &str| CallerOptions {
        stream_id: Some(id.into()),
        passphrase: Some(pass.into()),
        ..CallerOptions::default()
    };
    let wrong_key = srt.connect(addr, &options("bad", "0123456789secret"));
    let e = wrong_key.err().expect("a wrong stream id is refused");
    assert!(e.message.contains("unauthorized"), "{e}");
    let wrong_pass = srt.connect(addr, &options("good", "0123456789wrong!"));
    assert!(wrong_pass.is_err(), "a wrong passphrase is refused");
    let caller = srt
        .connect(addr, &options("good", "0123456789secret"))
        .unwrap();
    caller.send(b"hello").unwrap();
    let (id, data) = server.join().unwrap();
    assert_eq!(id, "good");
    assert_eq!(data, b"hello");
}
