//! Client tests against a tiny HTTP server on loopback: every outcome maps to its variant.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const TOKEN: &str = "s3cret-token-value";
const TEST_DEADLINE: Duration = Duration::from_secs(20);

/// Serves canned answers by path; requests without the right `token` header get 401.
async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(handle(sock));
        }
    });
    format!("http://{addr}")
}

async fn handle(mut sock: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let authed = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("token:") && l[6..].trim() == TOKEN);
    let reply = |status: &str, body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    let out = if !authed && path != "/open" {
        reply("401 Unauthorized", b"")
    } else {
        match path.as_str() {
            "/health" | "/open" => reply("200 OK", br#"{"status":"ok"}"#),
            "/health-failing/health" => reply(
                "500 Internal Server Error",
                br#"{"status":"error","message":"slot not ready"}"#,
            ),
            "/panic/health" | "/500" => reply("500 Internal Server Error", b""),
            "/400" => reply(
                "400 Bad Request",
                br#"{"msg":"leader not found","status":400}"#,
            ),
            "/403" => reply(
                "400 Bad Request",
                "{\"msg\":\"没有权限\",\"status\":403}".as_bytes(),
            ),
            "/utf8" => reply("200 OK", b"{\"server_id\":\"\xff\xfe\"}"),
            "/garbage" => reply("200 OK", b"<html>not json</html>"),
            "/varz" => reply(
                "200 OK",
                br#"{"server_id":"1001","version":"v2.1.2-20250120","uptime":"1m"}"#,
            ),
            "/big" => {
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                            5 * 1024 * 1024
                        )
                        .as_bytes(),
                    )
                    .await;
                stream_big(&mut sock).await;
                return;
            }
            "/big-unsized" => {
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                    .await;
                stream_big(&mut sock).await;
                return;
            }
            "/hang" => {
                tokio::time::sleep(Duration::from_mins(1)).await;
                return;
            }
            _ => reply("404 Not Found", b"404 page not found"),
        }
    };
    let _ = sock.write_all(&out).await;
    let _ = sock.shutdown().await;
}

async fn stream_big(sock: &mut TcpStream) {
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..80 {
        if sock.write_all(&chunk).await.is_err() {
            return;
        }
    }
}

fn client(timeout_ms: u64) -> Client {
    Client::new(Duration::from_millis(timeout_ms), Some(TOKEN.to_string())).unwrap()
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_DEADLINE, f)
        .await
        .expect("test deadline")
}

#[tokio::test]
async fn each_answer_maps_to_its_variant() {
    within(async {
        let base = server().await;
        let c = client(3000);
        assert_eq!(c.health(&base).await, Ok(Health { ok: true, message: None }));
        let v = c.varz(&base).await.unwrap();
        assert_eq!((v.server_id.as_str(), v.version.as_str()), ("1001", "v2.1.2-20250120"));

        let no_token = Client::new(Duration::from_secs(3), None).unwrap();
        assert_eq!(no_token.health(&base).await, Err(ProbeError::Unauthorized), "the token is needed on /health too");
        let wrong = Client::new(Duration::from_secs(3), Some("nope".into())).unwrap();
        assert_eq!(wrong.varz(&base).await, Err(ProbeError::Unauthorized));

        let lnf = c.get_json::<Varz>(&base, "/400").await.unwrap_err();
        assert_eq!(lnf, ProbeError::ApiError { status: 400, msg: "leader not found".into() });
        assert!(lnf.is_leader_not_found());
        assert_eq!(c.get_json::<Varz>(&base, "/403").await, Err(ProbeError::ApiError { status: 403, msg: "没有权限".into() }));
        assert_eq!(c.get_json::<Varz>(&base, "/500").await, Err(ProbeError::ServerError(500)));
        assert_eq!(c.get_json::<Varz>(&base, "/nothing").await, Err(ProbeError::NotFound));
        assert!(matches!(c.get_json::<Varz>(&base, "/utf8").await, Err(ProbeError::BadBody(m)) if m.contains("UTF-8")));
        assert!(matches!(c.get_json::<Varz>(&base, "/garbage").await, Err(ProbeError::BadBody(m)) if m.contains("JSON")));
        for big in ["/big", "/big-unsized"] {
            assert!(matches!(c.get_json::<Varz>(&base, big).await, Err(ProbeError::BadBody(m)) if m.contains("4 MiB")), "{big}");
        }
    })
    .await;
}

#[tokio::test]
async fn health_500_with_json_is_an_answer_and_without_body_an_error() {
    within(async {
        let base = server().await;
        let c = client(3000);
        let failing = c.health(&format!("{base}/health-failing")).await;
        assert_eq!(
            failing,
            Ok(Health {
                ok: false,
                message: Some("slot not ready".into())
            })
        );
        assert_eq!(
            c.health(&format!("{base}/panic")).await,
            Err(ProbeError::ServerError(500))
        );
    })
    .await;
}

#[tokio::test]
async fn silent_socket_times_out_and_closed_port_is_refused() {
    within(async {
        let base = server().await;
        let c = client(300);
        let started = std::time::Instant::now();
        assert_eq!(
            c.get_json::<Varz>(&base, "/hang").await,
            Err(ProbeError::Timeout)
        );
        assert!(started.elapsed() < Duration::from_secs(5));

        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        assert_eq!(
            c.health(&format!("http://{addr}")).await,
            Err(ProbeError::Refused)
        );
    })
    .await;
}

#[test]
fn the_token_never_shows() {
    let c = client(1000);
    assert!(!format!("{c:?}").contains(TOKEN));
    assert!(format!("{c:?}").contains("redacted"));
    let errs = [
        ProbeError::Unauthorized,
        ProbeError::ApiError {
            status: 400,
            msg: "x".into(),
        },
        ProbeError::ServerError(502),
        ProbeError::Refused,
        ProbeError::Timeout,
        ProbeError::BadBody("b".into()),
        ProbeError::Network("n".into()),
        ProbeError::NotFound,
    ];
    for e in errs {
        let shown = format!("{e} {e:?} {}", serde_json::to_string(&e).unwrap());
        assert!(!shown.contains(TOKEN));
        assert!(!e.to_string().is_empty());
    }
    assert!(
        Client::new(Duration::from_secs(1), Some("bad\ntoken".into()))
            .unwrap_err()
            .contains("not a valid")
    );
}
