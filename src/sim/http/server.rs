//! The HTTP side of one simulated node: a real listener per node for the API port (facts §1,
//! port 5001) and one for the cluster port (11110). Listeners exist only while the model says
//! the process is up; connections of a dead incarnation are reset, so a stopped node refuses
//! and drops connections like a killed process.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::views::{self, Reply};
use crate::sim::shared::Shared;

/// One bound listener and the kill switch of the connections it accepted.
pub struct Incarnation {
    kill: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Incarnation {
    pub fn close(self) {
        let _ = self.kill.send(true);
        self.task.abort();
    }
}

/// Binds with `SO_REUSEADDR` so a restarted node gets the same port back despite TIME_WAIT.
/// `SO_REUSEPORT` lets it share the port with the node's placeholder (see `reserve`).
pub fn bind(port: u16) -> io::Result<TcpListener> {
    reusable(port)?.listen(1024)
}

fn reusable(port: u16) -> io::Result<TcpSocket> {
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.set_reuseport(true)?;
    sock.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    Ok(sock)
}

/// Reserves a port for the whole run with a bound, never-listening socket: connections to it
/// are refused while the node is down, but no other process can take the port meanwhile.
/// Port 0 picks a free one.
pub fn reserve(port: u16) -> io::Result<(u16, TcpSocket)> {
    let sock = reusable(port)?;
    Ok((sock.local_addr()?.port(), sock))
}

/// A TCP stream that fails with "connection reset" once its process incarnation is gone.
struct Killable {
    inner: TcpStream,
    kill: Pin<Box<dyn Future<Output = ()> + Send>>,
    dead: bool,
}

impl Killable {
    fn dead(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.dead && self.kill.as_mut().poll(cx).is_ready() {
            self.dead = true;
        }
        self.dead
    }
}

fn reset<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
}

impl AsyncRead for Killable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.dead(cx) {
            return reset();
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Killable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.dead(cx) {
            return reset();
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

struct KillListener {
    inner: TcpListener,
    kill: watch::Receiver<bool>,
}

impl axum::serve::Listener for KillListener {
    type Io = Killable;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Killable, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((s, addr)) => {
                    let _ = s.set_nodelay(true);
                    let mut rx = self.kill.clone();
                    let kill = Box::pin(async move {
                        let _ = rx.wait_for(|k| *k).await;
                    });
                    return (
                        Killable {
                            inner: s,
                            kill,
                            dead: false,
                        },
                        addr,
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Opens the API listener of node `id`.
pub fn open_api(shared: &Arc<Shared>, id: u64, listener: TcpListener) -> Incarnation {
    let (kill, rx) = watch::channel(false);
    let app = Router::new()
        .fallback(handle)
        .with_state((Arc::clone(shared), id));
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            KillListener {
                inner: listener,
                kill: rx,
            },
            app,
        )
        .await;
    });
    Incarnation { kill, task }
}

/// Opens the cluster-port stand-in: accepts and closes connections.
pub fn open_cluster(listener: TcpListener) -> Incarnation {
    let (kill, _rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            if let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        }
    });
    Incarnation { kill, task }
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.replace("%2C", ",").replace("%2c", ","))
        })
        .collect()
}

fn respond(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ctype = if r.json {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    if r.body.is_empty() && !r.json {
        return status.into_response();
    }
    (status, [(header::CONTENT_TYPE, ctype)], r.body).into_response()
}

async fn handle(
    State((shared, id)): State<(Arc<Shared>, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().to_string();
    shared.count(id, &path);
    let token = headers
        .get("token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let q = query(&uri);
    if method == Method::POST {
        // Through `apply`: a send's `message_sent` event reaches events.jsonl at once.
        let r = shared.apply(|c, now| {
            super::views::service::post(c, id, &path, &body, token.as_deref(), now)
        });
        return finish(&shared, r).await;
    }
    answer(&shared, id, &method, &path, &q, token.as_deref()).await
}

/// Node `id`'s answer to a read of its API (`views::answer` on the model), sent through
/// [`finish`]; 404 for a node the model does not have. Shared by the in-process listeners
/// and `wksim node`'s forwarded requests.
pub(crate) async fn answer(
    shared: &Shared,
    id: u64,
    method: &Method,
    path: &str,
    q: &BTreeMap<String, String>,
    token: Option<&str>,
) -> Response {
    let now = shared.clock.now();
    let r = {
        let mut c = shared.model();
        if c.node(id).is_none() {
            return StatusCode::NOT_FOUND.into_response();
        }
        views::answer(&mut c, id, method == Method::GET, path, q, token, now)
    };
    finish(shared, r).await
}

/// Waits out a black hole or a delay, then sends the answer.
pub async fn finish(shared: &Shared, r: Reply) -> Response {
    if let Some((node, generation)) = r.hang {
        // Accepts TCP, never answers; ends only when that process incarnation dies or the
        // black hole is lifted.
        shared
            .wait_until(|c| {
                c.node(node)
                    .is_none_or(|n| n.generation != generation || !n.faults.blackhole)
            })
            .await;
    }
    if r.delay > 0 {
        tokio::time::sleep(shared.clock.real(r.delay)).await;
    }
    respond(r)
}
