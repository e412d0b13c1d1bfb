//! A minimal obs-websocket v5 client for the one answer `obws` cannot read
//! from OBS older than 30.1 (obs-websocket < 5.4): the scene list, whose
//! entries have no `sceneUuid` there. Opened only when `obws` failed to read
//! that answer; it sends plain requests and reads the JSON as it comes.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_websockets::{MaybeTlsStream, Message, WebSocketStream};

/// How long one handshake step or one request may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// obs-websocket's close code for a refused password.
pub(super) const AUTHENTICATION_FAILED: u16 = 4009;

/// A connection speaking raw obs-websocket v5 (JSON, no events).
pub(super) struct LegacyClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

/// The scene list as OBS shows it, top to bottom, and the program scene.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct SceneList {
    pub current: Option<String>,
    pub scenes: Vec<String>,
}

impl LegacyClient {
    /// Connects and identifies (with the password when OBS asks for one).
    pub async fn connect(host: &str, port: u16, password: Option<&str>) -> Result<Self, String> {
        let host = if host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let builder = tokio_websockets::ClientBuilder::new()
            .uri(&format!("ws://{host}:{port}"))
            .map_err(|e| format!("invalid address: {e}"))?;
        let (ws, _) = tokio::time::timeout(STEP_TIMEOUT, builder.connect())
            .await
            .map_err(|_| "connection timed out".to_owned())?
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut client = LegacyClient { ws, next_id: 1 };
        let hello = client.read_op(0).await?;
        let mut identify = json!({ "rpcVersion": 1, "eventSubscriptions": 0 });
        if let Some(auth) = hello.get("authentication") {
            let challenge = auth["challenge"].as_str().unwrap_or_default();
            let salt = auth["salt"].as_str().unwrap_or_default();
            let password = password.ok_or("OBS asks for a password and none is set")?;
            identify["authentication"] = json!(auth_response(password, salt, challenge));
        }
        client.send(json!({ "op": 1, "d": identify })).await?;
        client.read_op(2).await?;
        Ok(client)
    }

    /// Sends a request without data and returns its `responseData`.
    pub async fn request(&mut self, request_type: &str) -> Result<Value, String> {
        let id = self.next_id.to_string();
        self.next_id += 1;
        self.send(json!({ "op": 6, "d": { "requestType": request_type, "requestId": id } }))
            .await?;
        loop {
            let d = self.read_op(7).await?;
            if d["requestId"].as_str() != Some(id.as_str()) {
                continue;
            }
            let status = &d["requestStatus"];
            if status["result"].as_bool() != Some(true) {
                return Err(format!(
                    "{} (status {})",
                    status["comment"].as_str().unwrap_or("request failed"),
                    status["code"]
                ));
            }
            return Ok(d.get("responseData").cloned().unwrap_or(Value::Null));
        }
    }

    /// `GetSceneList`.
    pub async fn scene_list(&mut self) -> Result<SceneList, String> {
        Ok(parse_scene_list(&self.request("GetSceneList").await?))
    }

    async fn send(&mut self, message: Value) -> Result<(), String> {
        tokio::time::timeout(
            STEP_TIMEOUT,
            self.ws.send(Message::text(message.to_string())),
        )
        .await
        .map_err(|_| "OBS did not take the message in time".to_owned())?
        .map_err(|e| format!("cannot send to OBS: {e}"))
    }

    /// Reads messages until one with opcode `op`; returns its `d`.
    async fn read_op(&mut self, op: u64) -> Result<Value, String> {
        loop {
            let next = tokio::time::timeout(STEP_TIMEOUT, self.ws.next())
                .await
                .map_err(|_| "OBS did not answer in time".to_owned())?;
            let message = match next {
                None => return Err("OBS closed the connection".into()),
                Some(Err(e)) => return Err(format!("connection to OBS failed: {e}")),
                Some(Ok(m)) => m,
            };
            if let Some((code, reason)) = message.as_close() {
                let code = u16::from(code);
                return Err(if code == AUTHENTICATION_FAILED {
                    format!("OBS refused the password ({reason})")
                } else {
                    format!("OBS closed the connection (code {code}: {reason})")
                });
            }
            let Some(text) = message.as_text() else {
                continue;
            };
            let value: Value = serde_json::from_str(text)
                .map_err(|e| format!("OBS sent a message that is not JSON: {e}"))?;
            if value["op"].as_u64() == Some(op) {
                return Ok(value.get("d").cloned().unwrap_or(Value::Null));
            }
        }
    }
}

/// obs-websocket v5 authentication:
/// `base64(sha256(base64(sha256(password + salt)) + challenge))`.
fn auth_response(password: &str, salt: &str, challenge: &str) -> String {
    let secret = STANDARD.encode(Sha256::digest(format!("{password}{salt}").as_bytes()));
    STANDARD.encode(Sha256::digest(format!("{secret}{challenge}").as_bytes()))
}

/// The `GetSceneList` answer, in the order OBS shows the scenes: the list
/// comes bottom first, and `sceneIndex` counts from the bottom.
pub(super) fn parse_scene_list(data: &Value) -> SceneList {
    let mut scenes: Vec<(i64, String)> = data["scenes"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|s| {
                    Some((
                        s["sceneIndex"].as_i64().unwrap_or(0),
                        s["sceneName"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    scenes.sort_by_key(|s| std::cmp::Reverse(s.0));
    SceneList {
        current: data["currentProgramSceneName"]
            .as_str()
            .map(str::to_owned)
            .filter(|s| !s.is_empty()),
        scenes: scenes.into_iter().map(|(_, name)| name).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_matches_the_protocol_example() {
        // From the obs-websocket v5 protocol documentation.
        assert_eq!(
            auth_response(
                "supersecretpassword",
                "lM1GncleQOaCu9lT1yeUZhFYnqhsLLP1G5lAGo3ixaI=",
                "+IxH4CnCiqpX1rM9scsNynZzbOe4KhDeYcTNS3PDaeY="
            ),
            "1Ct943GAT+6YQUUX47Ia/ncufilbe6+oD6lY+5kaCu4="
        );
    }

    #[test]
    fn scene_list_comes_in_the_order_obs_shows() {
        let data = json!({
            "currentProgramSceneName": "Two",
            "currentPreviewSceneName": null,
            "scenes": [
                {"sceneIndex": 0, "sceneName": "Three"},
                {"sceneIndex": 1, "sceneName": "Two"},
                {"sceneIndex": 2, "sceneName": "One"}
            ]
        });
        let list = parse_scene_list(&data);
        assert_eq!(list.scenes, ["One", "Two", "Three"]);
        assert_eq!(list.current.as_deref(), Some("Two"));
    }
}
