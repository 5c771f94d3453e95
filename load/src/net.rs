//! Connecting: URL resolution, source-address binding, and the
//! [`WebSocketConfig`] of connections handed to tungstenite (the publisher's).

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, anyhow, bail};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// Where to connect: the URL for the upgrade request and the resolved address.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub addr: SocketAddr,
}

impl Endpoint {
    /// Parses a `ws://host[:port]/path` URL and resolves its host.
    pub async fn resolve(url: &str) -> Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        match uri.scheme_str() {
            Some("ws") => {}
            Some(other) => bail!("unsupported scheme {other:?} (only ws:// is supported)"),
            None => bail!("URL {url:?} has no scheme"),
        }
        let host = uri
            .host()
            .ok_or_else(|| anyhow!("URL {url:?} has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .next()
            .ok_or_else(|| anyhow!("{host} resolved to nothing"))?;
        Ok(Self {
            url: url.to_owned(),
            addr,
        })
    }
}

/// Buffer sizes for a connection handed to tungstenite.
pub fn ws_config(read_buffer: usize, write_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(write_buffer)
        .max_write_buffer_size(64 << 20)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// Opens TCP (bound to `source` when given), with `TCP_NODELAY`.
pub async fn tcp_connect(ep: &Endpoint, source: Option<IpAddr>) -> Result<TcpStream> {
    let sock = if ep.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .context("socket")?;
    sock.set_reuseaddr(true).context("SO_REUSEADDR")?;
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind {ip}"))?;
    }
    let stream = sock
        .connect(ep.addr)
        .await
        .with_context(|| format!("connect {}", ep.addr))?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    Ok(stream)
}

/// Parses a list of source addresses: `a,b,c`, ranges `127.0.0.1-127.0.0.8`
/// or `127.0.0.1-8` (last octet), mixed freely.
pub fn parse_sources(spec: &str) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((a, b)) = part.split_once('-') else {
            out.push(
                part.parse()
                    .with_context(|| format!("bad address {part:?}"))?,
            );
            continue;
        };
        let start: std::net::Ipv4Addr = a.parse().with_context(|| format!("bad address {a:?}"))?;
        let end: std::net::Ipv4Addr = if b.contains('.') {
            b.parse().with_context(|| format!("bad address {b:?}"))?
        } else {
            let last: u8 = b.parse().with_context(|| format!("bad octet {b:?}"))?;
            let o = start.octets();
            [o[0], o[1], o[2], last].into()
        };
        let (s, e) = (u32::from(start), u32::from(end));
        if e < s || e - s >= 65_536 {
            bail!("bad range {part:?}");
        }
        out.extend((s..=e).map(|v| IpAddr::V4(v.into())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        let v = parse_sources("127.0.0.1,127.0.0.3-127.0.0.4, 127.0.1.9-10").expect("ok");
        let s: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            [
                "127.0.0.1",
                "127.0.0.3",
                "127.0.0.4",
                "127.0.1.9",
                "127.0.1.10"
            ]
        );
        assert!(parse_sources("127.0.0.5-127.0.0.1").is_err());
        assert!(parse_sources("nope").is_err());
        assert!(parse_sources("").expect("ok").is_empty());
    }
}
