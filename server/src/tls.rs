//! HTTPS and wss: rustls (ring provider) on the relay's one port.
//!
//! The certificate is either given (PEM chain and key) or self-signed with rcgen. The
//! self-signed one is made on first start and kept in the data directory, so its
//! fingerprint (SHA-256 of the leaf certificate's DER, lowercase hex), which phones pin,
//! survives restarts; its key is private to the relay's user (`0600`, see [`data_dir`]).
//! [`TlsListener`] lets `axum::serve` accept TLS connections: handshakes
//! run in their own tasks so a slow client cannot hold up others, and a client that speaks
//! plain HTTP to this port gets a one-line `400` saying it speaks HTTPS (not TLS alert bytes).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsMode;
use crate::data_dir;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors while setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {0}: {1}")]
    Pem(String, rustls_pki_types::pem::Error),
    #[error("no certificate in {0}")]
    NoCert(String),
    #[error("generating the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("writing the self-signed certificate: {0}")]
    Io(#[from] std::io::Error),
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A ready TLS setup.
#[derive(Clone)]
pub struct LoadedTls {
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the leaf certificate's DER, lowercase hex.
    pub fingerprint: String,
}

impl std::fmt::Debug for LoadedTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedTls")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// SHA-256 of a DER certificate, lowercase hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

/// Loads (or, for self-signed, makes once) the certificate and key for `mode`.
pub fn load(mode: &TlsMode, data: &Path) -> Result<LoadedTls, TlsError> {
    let (cert_path, key_path) = match mode {
        TlsMode::Off => unreachable!("load is only called with TLS on"),
        TlsMode::Files { cert, key } => (cert.clone(), key.clone()),
        TlsMode::SelfSigned { names } => {
            let cert = data.join("tls-cert.pem");
            let key = data.join("tls-key.pem");
            if !cert.exists() || !key.exists() {
                data_dir::prepare(data)?;
                let made = rcgen::generate_simple_self_signed(names.clone())?;
                data_dir::write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
                std::fs::write(&cert, made.cert.pem())?;
            } else {
                // Made by an older relay, perhaps readable by everyone.
                data_dir::narrow(&key)?;
            }
            (cert, key)
        }
    };
    let shown = |p: &Path| p.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| TlsError::Pem(shown(&cert_path), e))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem(shown(&cert_path), e))?;
    let leaf = certs
        .first()
        .ok_or_else(|| TlsError::NoCert(shown(&cert_path)))?;
    let fingerprint = fingerprint(leaf);
    let key =
        PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Pem(shown(&key_path), e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(LoadedTls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
    })
}

/// An `axum::serve` listener that yields TLS streams.
#[derive(Debug)]
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`; handshakes run in their own tasks.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> Self {
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = tcp.accept() => a,
                    _ = tx.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept(&acceptor, stream)).await {
                        Ok(Ok(Some(tls))) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Ok(None)) => tracing::debug!("plain HTTP on the TLS port: hint sent"),
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        });
        Self { rx, local }
    }
}

/// The answer to a plain-HTTP request on the TLS port.
pub const PLAIN_HTTP_HINT: &str = "this port speaks HTTPS: use https:// (phones: wss://)\n";

/// Most bytes of a plain-HTTP request read before its hint is sent.
const PLAIN_HEAD_MAX: usize = 16 * 1024;

/// The TLS handshake on `stream`, or `None` once a client that spoke plain HTTP (its first
/// byte an upper-case letter, as in `GET`; a TLS handshake starts with 0x16) got the hint.
async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> std::io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    // Peeking leaves the byte for the handshake.
    if stream.peek(&mut first).await? == 1 && first[0].is_ascii_uppercase() {
        plain_http_hint(stream).await?;
        return Ok(None);
    }
    acceptor.accept(stream).await.map(Some)
}

/// Answers a plain-HTTP request `400` with [`PLAIN_HTTP_HINT`] and closes. The request head
/// is read first and what follows is drained briefly, so that closing with unread bytes does
/// not reset the connection before the client has read the answer.
async fn plain_http_hint(mut stream: TcpStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < PLAIN_HEAD_MAX {
        match stream.read(&mut buf).await? {
            0 => break,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_HTTP_HINT}",
        PLAIN_HTTP_HINT.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await?;
    let drain = async { while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Ok(())
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The acceptor task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
