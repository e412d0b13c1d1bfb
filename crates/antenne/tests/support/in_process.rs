//! An ingest built in the test process from the library: a tokio runtime,
//! one hub for `key`, and antenne's RTMP listener on a free port. For tests
//! that look inside a hub (renditions, multitrack tracks), where a whole
//! antenne process would hide it. The listener stops when this drops.

use std::sync::Arc;

use ::antenne::history::History;
use ::antenne::hub::{Hub, Hubs, QueueLimits};
use ::antenne::secret::StreamKey;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

pub struct InProcessIngest {
    pub rt: Runtime,
    pub hub: Arc<Hub>,
    pub port: u16,
    key: String,
    cancel: CancellationToken,
}

impl InProcessIngest {
    pub fn start(key: &str) -> InProcessIngest {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let hub = Hub::new(StreamKey::new(key), QueueLimits::default());
        let hubs = Hubs::new(vec![hub.clone()]);
        let cancel = CancellationToken::new();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a port for the ingest");
        let port = listener.local_addr().expect("bound").port();
        rt.spawn(::antenne::ingest::serve(
            listener,
            hubs,
            History::disabled(),
            cancel.clone(),
        ));
        InProcessIngest {
            rt,
            hub,
            port,
            key: key.to_owned(),
            cancel,
        }
    }

    /// Where a publisher sends this ingest's stream.
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/{}", self.port, self.key)
    }
}

impl Drop for InProcessIngest {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
