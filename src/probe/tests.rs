//! `observe` end to end against fake nodes on loopback (one answering, one down), and
//! the address helpers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::fixtures::manifest;
use super::*;
use crate::finding::FindingId;

/// Serves `routes` (path → status line, body) and counts requests per path.
async fn fake_node(
    routes: HashMap<&'static str, (&'static str, String)>,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (routes, log) = (Arc::new(routes), Arc::clone(&seen));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (routes, log) = (Arc::clone(&routes), Arc::clone(&log));
            tokio::spawn(async move {
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
                log.lock().unwrap().push(path.clone());
                let (status, body) = routes
                    .get(path.as_str())
                    .cloned()
                    .unwrap_or(("404 Not Found", String::new()));
                let out = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(out.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn observe_builds_the_view_from_real_answers() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let cluster_port = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let (open, down) = (cluster_port.local_addr().unwrap(), closed);
        let info = format!(
            r#"{{"version":415,"slotCount":2,"slotReplicaCount":3,"nodes":[{{"id":1001,"clusterAddr":"tcp://{open}","online":true,"status":3}},{{"id":1002,"clusterAddr":"{down}","status":3}}],"slots":[{{"leader":1001}},{{"id":1,"status":1}}]}}"#
        );
        let ok = "200 OK";
        let routes = HashMap::from([
            ("/health", ("500 Internal Server Error", r#"{"status":"error","message":"slot not ready"}"#.to_string())),
            ("/varz", (ok, r#"{"server_id":"1001","version":"v2.2.5-20260422","uptime":"1m5s"}"#.to_string())),
            ("/cluster/node", (ok, r#"{"id":1001,"is_leader":1,"online":1,"config_version":415,"status":3}"#.to_string())),
            ("/cluster/info", (ok, info)),
            ("/cluster/simpleNodes", (ok, r#"{"total":2,"data":[{"id":1001,"is_leader":1,"online":1,"status":3},{"id":1002,"status":3}]}"#.to_string())),
        ]);
        let (api, seen) = fake_node(routes).await;
        let mut m = manifest(&[1001, 1002]);
        m.nodes[0].api = api;
        m.nodes[1].api = format!("http://{down}");
        let client = Client::new(Duration::from_secs(3), None).unwrap();

        let view = observe(&client, &m).await;
        let (n1, n2) = (view.node(1001).unwrap(), view.node(1002).unwrap());
        assert!(n1.reachable && !n2.reachable);
        assert_eq!(n2.error, Some(ProbeError::Refused));
        assert_eq!(n1.health, HealthState::Failing("slot not ready".into()));
        assert_eq!(n1.uptime, Some(Duration::from_secs(65)));
        assert_eq!(n1.version_source, VersionSource::Varz);
        assert_eq!((view.controller, view.info_from, view.simple_nodes_from), (Some(1001), Some(1001), None));
        assert_eq!(view.config_version, Some(415));
        assert_eq!(view.slots.as_ref().unwrap().candidate, vec![1]);
        assert_eq!((n1.cluster_port_reachable, n2.cluster_port_reachable), (Some(true), Some(false)));
        assert_eq!(n2.info_online, Some(false));
        // simpleNodes is asked only of a healthy node: none here. Never /cluster/nodes.
        let paths = seen.lock().unwrap().clone();
        assert_eq!(paths.len(), 4, "{paths:?}");
        assert!(!paths.iter().any(|p| p == "/cluster/nodes" || p == "/cluster/simpleNodes"));
        let ids: Vec<FindingId> = crate::checks::live_findings(&m, &view).iter().map(|f| f.id).collect();
        for want in [
        FindingId::NodeUnreachable, FindingId::ClusterHealthFailing, FindingId::ClusterSlotsNotReady, FindingId::ClusterNotZeroDowntime] {
            assert!(ids.contains(&want), "{want} in {ids:?}");
        }
        drop(cluster_port);
    })
    .await
    .expect("test deadline");
}

#[test]
fn cluster_host_port_drops_the_scheme() {
    assert_eq!(
        cluster_host_port("tcp://node1.wk.local:11110"),
        "node1.wk.local:11110"
    );
}
