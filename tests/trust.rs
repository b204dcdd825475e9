//! The replication port against a hostile peer, through a real QUIC client with real
//! certificates from `meridian certs`: a node's name is the one its certificate proves, only
//! configured peers are members, crafted frames end a session and nothing else, and
//! handshakes nobody completes cost the node nothing.

use bytes::Bytes;
use meridian_crdt::{NodeId, VersionVector};
use meridian_geo::{decode_frame, encode_frame, Message, OpRun};
use meridian_tests::{free_udp_port, info_field, int, meridian_bin, text, Server, TempDir};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cluster CA with certificates for `a`, `b` and `evil`.
fn certs() -> TempDir {
    let dir = TempDir::new("trust-certs");
    let output = std::process::Command::new(meridian_bin()).args(["certs", dir.path().to_str().unwrap(), "--nodes", "a,b,evil"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    dir
}

/// Node `b` with certificate `cert`, its geo port, and peer `a` at `a_port` (not running).
fn node_b(certs: &Path, cert: &str, geo_port: u16, a_port: u16) -> Server {
    let file = |name: &str| certs.join(name).to_str().unwrap().to_string();
    let (geo, peer) = (geo_port.to_string(), format!("127.0.0.1:{a_port}"));
    let (pem, key, ca) = (file(&format!("{cert}.pem")), file(&format!("{cert}.key")), file("ca.pem"));
    Server::start(&["--node-name", "b", "--geo-port", &geo, "--tls-cert", &pem, "--tls-key", &key, "--tls-ca", &ca, "--peer", &peer])
}

/// The certificate chain and key `meridian certs` wrote for `name`.
fn identity(certs: &Path, name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let chain = CertificateDer::pem_file_iter(certs.join(format!("{name}.pem"))).unwrap().map(Result::unwrap).collect();
    (chain, PrivateKeyDer::from_pem_file(certs.join(format!("{name}.key"))).unwrap())
}

/// A QUIC client speaking with the certificate of `name` (none: no certificate at all).
fn client(certs: &Path, name: Option<&str>) -> quinn::Endpoint {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(certs.join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider).with_protocol_versions(&[&rustls::version::TLS13]).unwrap().with_root_certificates(roots);
    let mut tls = match name {
        Some(name) => {
            let (chain, key) = identity(certs, name);
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"meridian-geo/1".to_vec()];
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap())));
    endpoint
}

/// Opens a session to the node at `port` with `cert`'s certificate, says
/// hello as `claimed`, then sends `then`; returns every message the node sent back until it
/// closed the stream or went quiet.
async fn session(certs: &Path, cert: &str, claimed: &str, port: u16, then: Vec<Message>) -> Vec<Message> {
    let endpoint = client(certs, Some(cert));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let conn = endpoint.connect(addr, "meridian-peer").unwrap().await.expect("handshake with a cluster certificate");
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let hello = Message::Hello { cluster: "meridian".into(), node: NodeId(0xbad), name: claimed.into(), applied: VersionVector::new() };
    let mut frames = Vec::new();
    for message in std::iter::once(hello).chain(then) {
        encode_frame(&message, &mut frames);
    }
    send.write_all(&frames).await.unwrap();
    let mut got = Vec::new();
    let mut buf = Vec::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(3), recv.read_chunk(64 * 1024, true)).await {
        buf.extend_from_slice(&chunk.bytes);
        while let Ok(Some((message, used))) = decode_frame(&buf) {
            got.push(message);
            buf.drain(..used);
        }
    }
    got
}

fn runtime() -> tokio::runtime::Runtime {
    // A worker of its own, so the stand-in peer answers between the test's own calls.
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn refused(messages: &[Message]) -> Option<&str> {
    messages.iter().find_map(|m| match m {
        Message::Refused(reason) => Some(reason.as_str()),
        _ => None,
    })
}

/// A node started under one name with another node's certificate does not start.
#[test]
fn a_node_cannot_start_under_a_name_its_certificate_does_not_prove() {
    let certs = certs();
    let file = |name: &str| certs.path().join(name).to_str().unwrap().to_string();
    let dir = TempDir::new("impostor");
    let geo = free_udp_port().to_string();
    let output = std::process::Command::new(meridian_bin())
        .args(["--port", "0", "--dir", dir.path().to_str().unwrap(), "--node-name", "b", "--geo-port", &geo])
        .args(["--tls-cert", &file("a.pem"), "--tls-key", &file("a.key"), "--tls-ca", &file("ca.pem"), "--peer", "127.0.0.1:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("was issued to \"a\""), "{stderr}");
}

/// A peer claiming a name its certificate was not issued to is refused before anything it
/// sends is applied, and so is a node with a valid cluster certificate that is not among the
/// configured peers. The configured peer, with its own certificate, is let in.
#[test]
fn peers_are_who_their_certificates_say_and_only_configured_ones() {
    let certs = certs();
    let a_port = free_udp_port();
    // The node at a's address, which b learns a's name from: a stand-in holding a's certificate.
    let b_port = free_udp_port();
    let b = node_b(certs.path(), "b", b_port, a_port);
    let rt = runtime();
    let _a = rt.block_on(async { stand_in(certs.path(), "a", a_port) });
    let write = Message::Ops(vec![set_run(1, 1)]);
    let impostor = rt.block_on(session(certs.path(), "evil", "a", b_port, vec![write.clone()]));
    assert!(refused(&impostor).is_some_and(|r| r.contains("issued to")), "{impostor:?}");
    let stranger = rt.block_on(session(certs.path(), "evil", "evil", b_port, vec![write.clone()]));
    assert!(refused(&stranger).is_some_and(|r| r.contains("not a configured peer")), "{stranger:?}");
    let mut con = b.client();
    assert_eq!(int(&mut con, &["DBSIZE"]), 0, "nothing the impostors sent was applied");
    // The configured peer is known once b's handshake with its address showed its name.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let member = rt.block_on(session(certs.path(), "a", "a", b_port, vec![write.clone()]));
        if refused(&member).is_none() {
            assert!(member.iter().any(|m| matches!(m, Message::Ack { .. })), "{member:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the configured peer was refused: {member:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(text(&mut con, &["GET", "k"]).as_deref(), Some("v"), "the member's write was applied");
}

/// One SET of `k` to `v` by origin 0xbad, in a run claiming `count` ops from `first_seq`.
fn set_run(first_seq: u64, count: u64) -> OpRun {
    use meridian_crdt::{push_run_entry, Body, Op, Seen};
    let op = Op {
        origin: NodeId(0xbad),
        seq: first_seq,
        time: 1 << 40,
        key: Bytes::from_static(b"k"),
        body: Body::Set { seen: Seen::default(), value: Bytes::from_static(b"v"), expire_at: None },
    };
    let (mut tail, mut entries) = (Vec::new(), Vec::new());
    op.encode_tail(&mut tail);
    push_run_entry(&mut entries, op.time, op.time, &tail);
    OpRun { origin: op.origin, first_seq, first_time: op.time, count, entries: entries.into() }
}

/// A QUIC server at `port` holding `name`'s certificate: what a configured peer's address
/// answers a handshake with (b reads the name from it).
fn stand_in(certs: &Path, name: &str, port: u16) -> quinn::Endpoint {
    let (chain, key) = identity(certs, name);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    tls.alpn_protocols = vec![b"meridian-geo/1".to_vec()];
    let config = quinn::ServerConfig::with_crypto(Arc::new(quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap()));
    let endpoint = quinn::Endpoint::server(config, SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let _ = incoming.await;
        }
    });
    endpoint
}

/// Numbers a peer sends are untrusted: a run claiming 2^64-1 ops (its end overflows) ends the
/// session with a protocol error; the node goes on serving and takes the next session.
#[test]
fn a_run_whose_numbers_overflow_ends_only_its_session() {
    let certs = certs();
    let (a_port, b_port) = (free_udp_port(), free_udp_port());
    let b = node_b(certs.path(), "b", b_port, a_port);
    let rt = runtime();
    let _a = rt.block_on(async { stand_in(certs.path(), "a", a_port) });
    let deadline = Instant::now() + Duration::from_secs(10);
    while refused(&rt.block_on(session(certs.path(), "a", "a", b_port, vec![]))).is_some() {
        assert!(Instant::now() < deadline, "the configured peer was never let in");
        std::thread::sleep(Duration::from_millis(200));
    }
    for (first_seq, count) in [(1, u64::MAX), (u64::MAX, 1), (0, 1)] {
        rt.block_on(session(certs.path(), "a", "a", b_port, vec![Message::Ops(vec![set_run(first_seq, count)])]));
    }
    let log = b.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("out of range"), "the session ended with a protocol error: {log}");
    let mut con = b.client();
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
    let applied = rt.block_on(session(certs.path(), "a", "a", b_port, vec![Message::Ops(vec![set_run(1, 1)])]));
    assert!(applied.iter().any(|m| matches!(m, Message::Ack { .. })), "{applied:?}");
    assert_eq!(text(&mut con, &["GET", "k"]).as_deref(), Some("v"));
}

/// Unauthenticated handshakes begun and abandoned from thousands of source ports (one QUIC
/// Initial each, from a client without a certificate) leave nothing behind on the node: each
/// gets a stateless Retry, and one that comes back is refused at the TLS handshake.
#[test]
fn abandoned_handshakes_cost_the_node_no_memory() {
    let certs = certs();
    let (a_port, b_port) = (free_udp_port(), free_udp_port());
    let b = node_b(certs.path(), "b", b_port, a_port);
    let mut con = b.client();
    let used = |con: &mut redis::Connection| info_field(con, "memory", "used_memory").unwrap().parse::<i64>().unwrap();
    let before = used(&mut con);
    let rt = runtime();
    rt.block_on(async {
        let addr = SocketAddr::from(([127, 0, 0, 1], b_port));
        for _ in 0..3000 {
            let endpoint = client(certs.path(), None);
            let connecting = endpoint.connect(addr, "meridian-peer").unwrap();
            // Long enough for the Initial to leave, not for the handshake to go on.
            tokio::time::sleep(Duration::from_micros(200)).await;
            drop(connecting);
            drop(endpoint);
        }
    });
    // What any handshake holds goes within QUIC's idle timeout (5 s); nothing may stay.
    std::thread::sleep(Duration::from_secs(6));
    let grown = used(&mut con) - before;
    assert!(grown < 8 << 20, "3,000 abandoned handshakes hold {} MB", grown >> 20);
    assert_eq!(text(&mut con, &["PING"]).as_deref(), Some("PONG"));
}
