//! A TCP relay between one gateway and the PBX that a scenario can cut, as a network fault
//! between that gateway and the PBX would: while cut, its connections are closed and new ones
//! are closed as they arrive, so the gateway sees its link drop and its reconnects fail.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// A cuttable TCP relay to one address.
pub struct Cable {
    address: SocketAddr,
    cut: watch::Sender<bool>,
    relay: AbortHandle,
    /// The local addresses of the connections it holds towards the far end: what the far end
    /// (the PBX) sees as their peers.
    far_peers: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Cable {
    /// Listens on a free loopback port and relays each connection to `to`.
    pub async fn lay(to: SocketAddr) -> anyhow::Result<Cable> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (cut, watching) = watch::channel(false);
        let far_peers = Arc::new(Mutex::new(Vec::new()));
        let peers = far_peers.clone();
        let relay = tokio::spawn(async move {
            loop {
                let Ok((near, _)) = listener.accept().await else {
                    // Out of descriptors or similar: try again shortly rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                if *watching.borrow() {
                    continue;
                }
                tokio::spawn(carry(near, to, watching.clone(), peers.clone()));
            }
        })
        .abort_handle();
        Ok(Cable {
            address,
            cut,
            relay,
            far_peers,
        })
    }

    /// Where the gateway connects.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Cuts it: open connections close, new ones are closed on arrival.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Mends it: new connections are relayed again.
    pub fn mend(&self) {
        self.cut.send_replace(false);
    }

    /// Whether the far end sees `peer` as a connection of this cable.
    pub fn carries(&self, peer: &str) -> bool {
        self.far_peers
            .lock()
            .is_ok_and(|p| p.iter().any(|a| a.to_string() == peer))
    }

    /// Whether it is cut.
    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        // Dropping the sender also ends every connection (`wait_for` fails).
        self.relay.abort();
    }
}

/// Relays one connection until either side closes or the cable is cut (or dropped).
async fn carry(
    mut near: TcpStream,
    to: SocketAddr,
    mut cut: watch::Receiver<bool>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
) {
    let Ok(mut far) = TcpStream::connect(to).await else {
        return;
    };
    let local = far.local_addr().ok();
    if let (Some(a), Ok(mut p)) = (local, peers.lock()) {
        p.push(a);
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut near, &mut far) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
    if let (Some(a), Ok(mut p)) = (local, peers.lock()) {
        p.retain(|x| *x != a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn echo_server() -> anyhow::Result<SocketAddr> {
        let l = TcpListener::bind(("127.0.0.1", 0)).await?;
        let a = l.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Ok(a)
    }

    async fn round_trip(s: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
        s.write_all(b"ping").await?;
        let mut b = [0u8; 4];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut b)).await??;
        Ok(b[..n].to_vec())
    }

    #[tokio::test]
    async fn relays_until_cut_and_again_once_mended() -> anyhow::Result<()> {
        let cable = Cable::lay(echo_server().await?).await?;
        let mut s = TcpStream::connect(cable.address()).await?;
        assert_eq!(round_trip(&mut s).await?, b"ping");
        cable.cut();
        assert!(cable.is_cut());
        // The open connection closes (read returns 0 or the write fails).
        assert!(round_trip(&mut s).await.map_or(true, |b| b.is_empty()));
        let mut refused = TcpStream::connect(cable.address()).await?;
        assert!(
            round_trip(&mut refused)
                .await
                .map_or(true, |b| b.is_empty())
        );
        cable.mend();
        let mut again = TcpStream::connect(cable.address()).await?;
        assert_eq!(round_trip(&mut again).await?, b"ping");
        Ok(())
    }
}
