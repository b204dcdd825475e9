//! Mutual TLS for QUIC: every node presents a certificate signed by the cluster CA and accepts
//! only peers that do; anything else is refused during the handshake, before any data moves.

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use std::sync::Arc;
use std::time::Duration;

/// ALPN protocol id of Meridian's replication.
const ALPN: &[u8] = b"meridian-geo/1";

/// The name every node certificate carries and every dialler asks for (TLS server name).
/// Peers are dialled by whatever address the operator wrote; what authenticates them is the
/// cluster CA's signature, so the name checked is one the CA puts in every node certificate.
pub const PEER_NAME: &str = "meridian-peer";

/// Why the TLS setup failed (a startup error).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the material.
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("TLS setup: {0}")]
    Verifier(String),
}

/// The node name a certificate was issued to: its DNS name other than [`PEER_NAME`]
/// (`meridian certs` gives each node certificate exactly one). A node's identity is this name,
/// proven by the handshake, never the name it claims in its hello.
pub fn certified_name(cert: &CertificateDer<'_>) -> Option<String> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    let mut names = cert.valid_dns_names().filter(|name| *name != PEER_NAME);
    let name = names.next()?;
    names.next().is_none().then(|| name.to_string())
}

/// The name the certificate in the PEM file `path` was issued to, if it holds one.
pub fn certified_name_in(path: &str) -> Option<String> {
    let first = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    certified_name(&first)
}

/// The name the peer on `conn` proved with its certificate.
pub fn peer_name(conn: &quinn::Connection) -> Option<String> {
    let chain = conn.peer_identity()?.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certified_name(chain.first()?)
}

fn file_error(path: &str, reason: impl ToString) -> TlsError {
    TlsError::File { path: path.to_string(), reason: reason.to_string() }
}

/// QUIC server and client configurations from PEM files.
pub fn configs(cert: &str, key: &str, ca: &str) -> Result<(quinn::ServerConfig, quinn::ClientConfig), TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert).map_err(|e| file_error(cert, e))?.collect::<Result<_, _>>().map_err(|e| file_error(cert, e))?;
    if certs.is_empty() {
        return Err(file_error(cert, "no certificate in file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    let mut roots = RootCertStore::empty();
    for ca_cert in CertificateDer::pem_file_iter(ca).map_err(|e| file_error(ca, e))? {
        roots.add(ca_cert.map_err(|e| file_error(ca, e))?).map_err(|e| file_error(ca, e))?;
    }
    if roots.is_empty() {
        return Err(file_error(ca, "no CA certificate in file"));
    }
    let roots = Arc::new(roots);
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build().map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs.clone(), key_der.clone_key())?;
    server.alpn_protocols = vec![ALPN.to_vec()];

    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key_der)?;
    client.alpn_protocols = vec![ALPN.to_vec()];

    let transport = Arc::new(transport());
    let quic_server = QuicServerConfig::try_from(server).map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(quic_server));
    server_config.transport_config(transport.clone());
    // Connection attempts queued before the accept loop looks at them, and the bytes of
    // their early data, are bounded too (quinn's defaults: 65,536 and 100 MB).
    server_config.max_incoming(4 * MAX_HANDSHAKES);
    server_config.incoming_buffer_size_total(4 << 20);
    let quic_client = QuicClientConfig::try_from(client).map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(quic_client));
    client_config.transport_config(transport);
    Ok((server_config, client_config))
}

/// Most QUIC handshakes a node carries at once (from addresses that answered a Retry); more
/// are refused. A handshake holds about 16 KB until it completes or times out, so this bounds
/// what unauthenticated senders can make a node hold.
pub const MAX_HANDSHAKES: usize = 64;

/// Bandwidth-delay product the windows are sized for: 1 Gbit/s x 150 ms, about 20 MiB.
const BDP: u32 = 20 * 1024 * 1024;

/// Most bytes QUIC holds on one connection, written but not yet acknowledged by the peer:
/// the bound on a session's send buffer.
pub const SEND_WINDOW: u64 = 2 * BDP as u64;

/// Transport settings for WAN links: windows sized for 1 Gbit/s x 150 ms (quinn's defaults
/// suit 100 Mbit/s x 100 ms), keep-alives so an idle link stays open, and an idle timeout
/// that notices a dead peer in seconds.
fn transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.stream_receive_window(BDP.into());
    t.receive_window(quinn::VarInt::from_u32(BDP * 2));
    t.send_window(SEND_WINDOW);
    t.keep_alive_interval(Some(Duration::from_secs(1)));
    t.max_idle_timeout(Some(Duration::from_secs(5).try_into().expect("5 s is a valid idle timeout")));
    t
}
