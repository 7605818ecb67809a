//! The Socket Mode side of the sim: a tokio-tungstenite WebSocket server that sends
//! `hello`, delivers envelopes round-robin over the open sockets, records acks, redelivers
//! un-acked `events_api` envelopes and can disconnect or drop sockets.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_util::sync::CancellationToken;

use super::payloads::{self, uuid_like};
use super::{Ack, EnvelopeKind, PendingEvent, SimSlack};

/// What a connection task is asked to write.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A JSON text frame.
    Text(String),
    /// A `disconnect` frame, after which the socket is closed when the client closes it
    /// (or after 1 s).
    Disconnect(String),
}

/// The sim's handle on one open socket.
#[derive(Debug)]
pub(crate) struct SocketHandle {
    pub tx: mpsc::UnboundedSender<Outgoing>,
    pub kill: CancellationToken,
    /// A `disconnect` was sent: no more envelopes go to this socket.
    pub draining: bool,
}

/// How long a socket that got a `disconnect` frame waits for the client to close it.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);

/// Accept loop of the WebSocket listener.
pub(crate) async fn serve(sim: SimSlack, listener: TcpListener) {
    let shutdown = sim.inner.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(handle_connection(sim.clone(), stream));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// Checks the `ticket` query parameter against the tickets `apps.connections.open` issued
/// (each is single-use).
fn take_ticket(sim: &SimSlack, req: &Request) -> bool {
    let Some(query) = req.uri().query() else {
        return false;
    };
    let Some(ticket) =
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "ticket").map(|(_, v)| v.into_owned())
    else {
        return false;
    };
    let mut st = sim.state();
    match st.tickets.iter().position(|t| *t == ticket) {
        Some(i) => {
            st.tickets.remove(i);
            true
        }
        None => false,
    }
}

// The handshake callback's error type is dictated by tungstenite.
#[allow(clippy::result_large_err)]
async fn handle_connection(sim: SimSlack, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let checker = sim.clone();
    let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path().starts_with("/link") && take_ticket(&checker, req) {
            Ok(resp)
        } else {
            let mut err = ErrorResponse::new(Some("invalid or used ticket".into()));
            *err.status_mut() = StatusCode::UNAUTHORIZED;
            Err(err)
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let kill = CancellationToken::new();
    let (id, hello) = {
        let mut st = sim.state();
        let id = st.next_socket;
        st.next_socket += 1;
        st.connections_opened += 1;
        st.sockets.insert(id, SocketHandle { tx: tx.clone(), kill: kill.clone(), draining: false });
        let hello = payloads::hello_frame(st.sockets.len(), &sim.inner.config.app_id);
        (id, hello)
    };
    if sink.send(Message::Text(hello.to_string().into())).await.is_err() {
        sim.unregister_socket(id);
        return;
    }
    // Envelopes raised while no socket was open go out on the first socket after hello.
    sim.flush_outbox(&tx);
    sim.notify_changed();

    let shutdown = sim.inner.shutdown.clone();
    let mut close_deadline: Option<tokio::time::Instant> = None;
    loop {
        let deadline = close_deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            // Abrupt close: drop the TCP stream without a close frame.
            _ = kill.cancelled() => break,
            _ = shutdown.cancelled() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            out = rx.recv() => match out {
                Some(Outgoing::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Disconnect(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                    close_deadline = Some(tokio::time::Instant::now() + DISCONNECT_GRACE);
                }
                None => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => sim.record_ack(text.as_str()),
                // tungstenite queues the pong (or the close reply); flush it out.
                Some(Ok(Message::Ping(_))) => {
                    let _ = sink.flush().await;
                }
                Some(Ok(Message::Close(_))) => {
                    let _ = sink.flush().await;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            _ = tokio::time::sleep_until(deadline), if close_deadline.is_some() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
        }
    }
    sim.unregister_socket(id);
}

impl SimSlack {
    fn unregister_socket(&self, id: u64) {
        self.state().sockets.remove(&id);
        self.notify_changed();
    }

    /// Sends queued envelopes on a freshly opened socket.
    fn flush_outbox(&self, tx: &mpsc::UnboundedSender<Outgoing>) {
        let mut st = self.state();
        let now = Instant::now();
        while let Some((envelope_id, frame)) = st.outbox.pop_front() {
            if tx.send(Outgoing::Text(frame)).is_err() {
                break;
            }
            st.envelopes_sent.insert(envelope_id.clone(), now);
            for p in st.pending.iter_mut() {
                if p.envelope_ids.contains(&envelope_id) {
                    p.last_sent = Some(now);
                }
            }
        }
    }

    /// Records an ack frame (`{"envelope_id": …, "payload"?: …}`); other frames are ignored.
    fn record_ack(&self, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let Some(envelope_id) = v.get("envelope_id").and_then(Value::as_str) else {
            return;
        };
        {
            let mut st = self.state();
            let after = st.envelopes_sent.get(envelope_id).map(|t| t.elapsed()).unwrap_or_default();
            st.acks.push(Ack { envelope_id: envelope_id.to_string(), payload: v.get("payload").cloned(), after });
            st.pending.retain(|p| !p.envelope_ids.iter().any(|e| e == envelope_id));
        }
        self.notify_changed();
    }

    /// Sends a frame to the next non-draining socket (round robin). Returns false when no
    /// socket took it.
    fn send_frame_round_robin(st: &mut super::State, frame: &str) -> bool {
        let ids: Vec<u64> = st.sockets.iter().filter(|(_, s)| !s.draining).map(|(id, _)| *id).collect();
        for _ in 0..ids.len() {
            let id = ids[st.round_robin % ids.len()];
            st.round_robin = st.round_robin.wrapping_add(1);
            if let Some(s) = st.sockets.get(&id)
                && s.tx.send(Outgoing::Text(frame.to_string())).is_ok()
            {
                return true;
            }
        }
        false
    }

    /// Delivers an envelope (queued if no socket is open) and returns its envelope id.
    pub(crate) fn deliver(&self, kind: EnvelopeKind, payload: Value) -> String {
        let envelope_id = uuid_like();
        let retry = (kind == EnvelopeKind::EventsApi).then_some((0, ""));
        let frame = payloads::envelope_frame(&envelope_id, kind, &payload, retry).to_string();
        let mut st = self.state();
        let sent = Self::send_frame_round_robin(&mut st, &frame);
        let now = Instant::now();
        if sent {
            st.envelopes_sent.insert(envelope_id.clone(), now);
        } else {
            st.outbox.push_back((envelope_id.clone(), frame));
        }
        if kind == EnvelopeKind::EventsApi {
            st.pending.push(PendingEvent {
                envelope_ids: vec![envelope_id.clone()],
                payload,
                attempt: 0,
                last_sent: sent.then_some(now),
            });
        }
        envelope_id
    }

    /// One pass of redelivery: resend every `events_api` envelope whose last delivery is
    /// older than `redelivery_after`, or give up after `max_redeliveries`.
    fn redeliver_due(&self) {
        let cfg = &self.inner.config;
        let mut st = self.state();
        let now = Instant::now();
        let mut i = 0;
        while i < st.pending.len() {
            let due = st.pending[i].last_sent.is_some_and(|t| now.duration_since(t) >= cfg.redelivery_after);
            if !due {
                i += 1;
                continue;
            }
            if st.pending[i].attempt >= cfg.max_redeliveries {
                st.pending.remove(i);
                continue;
            }
            let envelope_id = uuid_like();
            let attempt = st.pending[i].attempt + 1;
            let frame = payloads::envelope_frame(
                &envelope_id,
                EnvelopeKind::EventsApi,
                &st.pending[i].payload,
                Some((attempt, "timeout")),
            )
            .to_string();
            if Self::send_frame_round_robin(&mut st, &frame) {
                st.envelopes_sent.insert(envelope_id.clone(), now);
                let p = &mut st.pending[i];
                p.attempt = attempt;
                p.last_sent = Some(now);
                p.envelope_ids.push(envelope_id);
            }
            i += 1;
        }
    }

    /// Number of open sockets.
    pub fn connection_count(&self) -> usize {
        self.state().sockets.len()
    }

    /// Number of sockets opened since start (reconnects included).
    pub fn connections_opened(&self) -> usize {
        self.state().connections_opened
    }

    /// Waits until at least `n` sockets are open; false on timeout.
    pub async fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.sockets.len() >= n).await
    }

    /// Waits until at least `n` sockets have been opened since start; false on timeout.
    pub async fn wait_for_connections_opened(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.connections_opened >= n).await
    }

    /// Sends an envelope with `payload` on the next open socket (queued until one connects)
    /// and returns its envelope id. `accepts_response_payload` is true for slash commands and
    /// for `view_submission`/`block_suggestion` interactions. `events_api` envelopes are
    /// redelivered until acked (see [`super::SimConfig::redelivery_after`]).
    pub async fn send_envelope(&self, kind: EnvelopeKind, payload: Value) -> String {
        self.deliver(kind, payload)
    }

    /// Waits for the ack of `envelope_id`.
    pub async fn wait_for_ack(&self, envelope_id: &str, timeout: Duration) -> Option<Ack> {
        let mut found = None;
        self.wait_until(timeout, |st| {
            found = st.acks.iter().find(|a| a.envelope_id == envelope_id).cloned();
            found.is_some()
        })
        .await;
        found
    }

    /// Every ack received, in order.
    pub fn acks(&self) -> Vec<Ack> {
        self.state().acks.clone()
    }

    /// Sends `{"type":"disconnect","reason":reason,…}` on every open socket; each is closed
    /// once the client closes it, or after 1 s. No envelope goes to them afterwards.
    pub async fn send_disconnect(&self, reason: &str) {
        let frame = payloads::disconnect_frame(reason).to_string();
        let mut st = self.state();
        for s in st.sockets.values_mut() {
            s.draining = true;
            let _ = s.tx.send(Outgoing::Disconnect(frame.clone()));
        }
    }

    /// Closes every socket abruptly (TCP close without a WebSocket close frame).
    pub fn drop_sockets(&self) {
        let st = self.state();
        for s in st.sockets.values() {
            s.kill.cancel();
        }
    }

    /// Registers a ticket for `apps.connections.open` and returns the socket URL.
    pub(crate) fn new_socket_url(&self) -> String {
        let mut st = self.state();
        let n = st.next_n();
        let ticket = format!("sim-{n}-{:08x}", rand::random::<u32>());
        st.tickets.push(ticket.clone());
        format!("ws://{}/link/?ticket={ticket}&app_id={}", self.inner.ws_addr, self.inner.config.app_id)
    }
}

/// Background task resending un-acked `events_api` envelopes.
pub(crate) async fn redelivery_loop(sim: SimSlack) {
    let tick = (sim.inner.config.redelivery_after / 5).clamp(Duration::from_millis(5), Duration::from_millis(100));
    let shutdown = sim.inner.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(tick) => sim.redeliver_due(),
        }
    }
}
