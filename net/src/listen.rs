//! Taking connections from a listener.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// How long to wait after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The next connection, with Nagle's algorithm off (SIP and CSTA messages are small and each is
/// waited for). A failed accept is logged with `what` (the listener's name), and retried after a
/// short pause rather than ending the listener.
pub async fn accept(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nodelay_set() -> std::io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let client = tokio::spawn(TcpStream::connect(addr));
        let (stream, peer) = accept(&listener, "test").await;
        let client = client.await.map_err(std::io::Error::other)??;
        assert_eq!(peer, client.local_addr()?);
        assert!(stream.nodelay()?);
        Ok(())
    }
}
