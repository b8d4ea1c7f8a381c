//! Hostile node answers: a loopback server that misbehaves on purpose (huge, endless,
//! slow, silent, malformed answers) against the real client, then through
//! `probe::observe` and the live checks. Every case must end in a named [`ProbeError`]
//! within the client timeout, with bounded memory, and surface as a clear finding.
//!
//! The servers bind 127.0.0.1 only, accept a bounded number of connections, and every
//! loop ends by itself (byte budget, tick budget, or the peer hanging up).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use wkctl::checks;
use wkctl::manifest;
use wkctl::probe::{self, Client, ProbeError};

const TEST_DEADLINE: Duration = Duration::from_secs(30);
const CLIENT_TIMEOUT: Duration = Duration::from_millis(800);
/// Scheduling slack on a busy 2-core CI machine.
const SLACK: Duration = Duration::from_millis(750);
const HUNDRED_MB: u64 = 100 * 1024 * 1024;
/// Connections one server accepts before it stops listening.
const MAX_CONNECTIONS: usize = 16;

/// How a server misbehaves on every request.
#[derive(Clone, Copy)]
enum Hostile {
    /// `200` with a chunked body of 100 MB of JSON-ish bytes, streamed.
    Endless,
    /// `200` announcing 100 MB in `content-length`.
    HugeLength,
    /// `200` with bytes that are not UTF-8.
    NotUtf8,
    /// `200` with 100 000 `[`.
    DeepArrays,
    /// `200` with 100 000 `{"a":`.
    DeepObjects,
    /// Headers, then one body byte every 200 ms, "forever" (bounded by the tick budget).
    SlowLoris,
    /// Accepts, reads the request, never answers (until the peer leaves or 20 s pass).
    Silent,
    /// Something that is not HTTP at all.
    NotHttp,
}

/// Starts a server; returns its base URL and the count of body bytes it wrote.
async fn serve(how: Hostile) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&written);
    tokio::spawn(async move {
        for _ in 0..MAX_CONNECTIONS {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(answer(sock, how, Arc::clone(&counter)));
        }
    });
    (format!("http://{addr}"), written)
}

async fn answer(mut sock: TcpStream, how: Hostile, written: Arc<AtomicU64>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let fixed = |body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    match how {
        Hostile::Endless => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'1'; 64 * 1024];
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(&chunk);
            frame.extend_from_slice(b"\r\n");
            let mut sent = 0;
            while sent < HUNDRED_MB {
                if sock.write_all(&frame).await.is_err() {
                    return;
                }
                sent += chunk.len() as u64;
                written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            let _ = sock.write_all(b"0\r\n\r\n").await;
        }
        Hostile::HugeLength => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {HUNDRED_MB}\r\n\r\n");
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(&[b' '; 4096]).await;
        }
        Hostile::NotUtf8 => {
            let _ = sock.write_all(&fixed(b"{\"status\":\"ok\xff\xfe\"}")).await;
        }
        Hostile::DeepArrays => {
            let _ = sock.write_all(&fixed(&b"[".repeat(100_000))).await;
        }
        Hostile::DeepObjects => {
            let _ = sock.write_all(&fixed(&b"{\"a\":".repeat(100_000))).await;
        }
        Hostile::SlowLoris => {
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n";
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for _ in 0..150 {
                if sock.write_all(b" ").await.is_err() {
                    return;
                }
                written.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Hostile::Silent => {
            // Hold the connection until the client gives up (read returns 0) or 20 s pass.
            let _ = tokio::time::timeout(Duration::from_secs(20), sock.read(&mut buf)).await;
        }
        Hostile::NotHttp => {
            let _ = sock.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
        }
    }
}

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_DEADLINE, f)
        .await
        .expect("the test ran past its deadline")
}

fn client() -> Client {
    Client::new(CLIENT_TIMEOUT, None).unwrap()
}

/// `VmRSS` or `VmHWM` of this process in KiB.
fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn assert_bad_body(r: Result<impl std::fmt::Debug, ProbeError>, says: &str) {
    match r {
        Err(ProbeError::BadBody(why)) => assert!(why.contains(says), "{why:?} lacks {says:?}"),
        other => panic!("expected BadBody({says}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_stream_is_cut_at_the_cap_with_bounded_memory() {
    within(async {
        let (base, written) = serve(Hostile::Endless).await;
        let (rss0, hwm0) = (proc_status_kib("VmRSS"), proc_status_kib("VmHWM"));
        // Sample RSS while the body streams: the peak must stay far below 100 MB.
        let sampling = Arc::new(AtomicU64::new(rss0));
        let peak = Arc::clone(&sampling);
        let sampler = tokio::spawn(async move {
            for _ in 0..2_000 {
                peak.fetch_max(proc_status_kib("VmRSS"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let started = Instant::now();
        let r = client().get_raw(&base, "/varz").await;
        let took = started.elapsed();
        sampler.abort();
        assert!(
            matches!(&r, Err(ProbeError::BadBody(why)) if why.contains("larger than 4 MiB")),
            "{r:?}"
        );
        assert!(took < CLIENT_TIMEOUT + SLACK, "took {took:?}");
        let rss_growth = sampling.load(Ordering::Relaxed).saturating_sub(rss0);
        let hwm_growth = proc_status_kib("VmHWM").saturating_sub(hwm0);
        assert!(rss_growth < 24 * 1024, "RSS grew by {rss_growth} KiB");
        assert!(hwm_growth < 24 * 1024, "peak RSS grew by {hwm_growth} KiB");
        // The client hung up: the server could not push the 100 MB (socket buffers aside).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = written.load(Ordering::Relaxed);
        assert!(sent < 32 * 1024 * 1024, "the server wrote {sent} bytes");
    })
    .await;
}

#[tokio::test]
async fn an_announced_100_mb_body_is_refused_before_reading() {
    within(async {
        let (base, _) = serve(Hostile::HugeLength).await;
        assert_bad_body(client().varz(&base).await, "larger than 4 MiB");
    })
    .await;
}

#[tokio::test]
async fn invalid_utf8_and_deep_nesting_are_bad_bodies() {
    within(async {
        let (base, _) = serve(Hostile::NotUtf8).await;
        assert_bad_body(client().health(&base).await, "not valid UTF-8");
        assert_bad_body(client().cluster_info(&base).await, "not valid UTF-8");
        for how in [Hostile::DeepArrays, Hostile::DeepObjects] {
            let (base, _) = serve(how).await;
            let c = client();
            // serde_json's depth limit (128) stops a typed descent; skipped unknown keys
            // are walked without recursion. Either way: no stack overflow.
            let says = match how {
                Hostile::DeepArrays => "recursion limit",
                _ => "EOF while parsing",
            };
            assert_bad_body(c.varz(&base).await, says);
            // Other models may stop earlier, at the first wrong type; either way a BadBody.
            let json = "not the expected JSON";
            assert_bad_body(c.cluster_info(&base).await, json);
            assert_bad_body(c.simple_nodes(&base).await, json);
            assert_bad_body(c.node(&base).await, json);
            assert_bad_body(c.cluster_logs(&base, 1001).await, json);
            assert_bad_body(c.health(&base).await, json);
        }
    })
    .await;
}

#[tokio::test]
async fn slow_loris_and_silent_servers_time_out_on_time() {
    within(async {
        for how in [Hostile::SlowLoris, Hostile::Silent] {
            let (base, _) = serve(how).await;
            let started = Instant::now();
            let r = client().varz(&base).await;
            let took = started.elapsed();
            assert_eq!(r, Err(ProbeError::Timeout));
            assert!(took >= CLIENT_TIMEOUT, "gave up early: {took:?}");
            assert!(took < CLIENT_TIMEOUT + SLACK, "took {took:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_server_that_is_not_http_is_a_network_error() {
    within(async {
        let (base, _) = serve(Hostile::NotHttp).await;
        let r = client().varz(&base).await;
        assert!(matches!(r, Err(ProbeError::Network(_))), "{r:?}");
    })
    .await;
}

/// A one-node manifest pointing at `base`, with the test's client timeout.
fn manifest_for(base: &str) -> manifest::Manifest {
    let text = format!(
        "name: hostile\napi:\n  timeout: {}ms\nnodes:\n  - id: 1001\n    host: 127.0.0.1\n    api: {base}\n",
        CLIENT_TIMEOUT.as_millis()
    );
    manifest::parse(&text, Path::new("hostile.yaml")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_turns_every_hostile_node_into_a_clear_finding() {
    within(async {
        let cases = [
            (
                Hostile::Endless,
                "cluster.health_failing",
                "larger than 4 MiB",
            ),
            (
                Hostile::HugeLength,
                "cluster.health_failing",
                "larger than 4 MiB",
            ),
            (
                Hostile::NotUtf8,
                "cluster.health_failing",
                "not valid UTF-8",
            ),
            (
                Hostile::DeepArrays,
                "cluster.health_failing",
                "recursion limit",
            ),
            (
                Hostile::SlowLoris,
                "node.unreachable",
                "no answer within the timeout",
            ),
            (
                Hostile::Silent,
                "node.unreachable",
                "no answer within the timeout",
            ),
            (Hostile::NotHttp, "node.unreachable", "network error"),
        ];
        for (how, id, says) in cases {
            let (base, _) = serve(how).await;
            let m = manifest_for(&base);
            let c = Client::from_manifest(&m).unwrap();
            let started = Instant::now();
            let view = probe::observe(&c, &m).await;
            let took = started.elapsed();
            assert!(
                took < CLIENT_TIMEOUT + SLACK,
                "{id}/{says}: observe took {took:?}"
            );
            let node = view.node(1001).unwrap();
            assert!(node.error.is_some(), "{says}: no error in {node:?}");
            assert_eq!(view.controller, None);
            let findings = checks::live_findings(&m, &view);
            let f = findings
                .iter()
                .find(|f| f.id.as_str() == id && f.node == Some(1001))
                .unwrap_or_else(|| panic!("no `{id}` finding for {says}: {findings:#?}"));
            assert!(f.message.contains(says), "{}", f.message);
            if id == "node.unreachable" {
                assert!(f.message.contains(&base), "{}", f.message);
            }
            assert!(!f.hint.is_empty());
        }
    })
    .await;
}
