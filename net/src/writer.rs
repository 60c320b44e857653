//! The writer half of a connection: what the driver queues, written by a task of its own.

use rcc_protocol::batch::coalesce;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::AbortOnDrop;

/// Writes what is queued for a connection, several messages per write, until the queue closes
/// (then shuts the write side) or a write fails. `each` sees every message on its own (for
/// traces). Run it as a task of its own ([`spawn_writer`]): a peer that reads only once its own
/// writes get through must never find us stuck in a write and no longer reading, or both would
/// wait for each other for ever.
pub async fn write_queue<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut queue: mpsc::Receiver<Vec<u8>>,
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    while let Some(first) = queue.recv().await {
        let batch = coalesce(first, || queue.try_recv().ok(), &mut each);
        wr.write_all(&batch).await?;
    }
    wr.shutdown().await
}

/// Spawns [`write_queue`]; the task is aborted when the returned handle is dropped, even while
/// a write waits for a peer that no longer reads.
pub fn spawn_writer<W>(
    wr: W,
    queue: mpsc::Receiver<Vec<u8>>,
    each: impl FnMut(&[u8]) + Send + 'static,
) -> AbortOnDrop<std::io::Result<()>>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    AbortOnDrop::new(tokio::spawn(write_queue(wr, queue, each)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn writes_in_order_then_shuts_down_when_the_queue_closes() -> std::io::Result<()> {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let (tx, rx) = mpsc::channel(8);
        for m in [&b"one "[..], b"two ", b"three"] {
            tx.try_send(m.to_vec()).map_err(std::io::Error::other)?;
        }
        drop(tx);
        let mut seen = Vec::new();
        let mut writer = spawn_writer(ours, rx, move |m| seen.push(m.len()));
        let mut got = String::new();
        // End of stream only comes with the shutdown.
        let read = theirs.read_to_string(&mut got);
        tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .map_err(std::io::Error::other)??;
        assert_eq!(got, "one two three");
        writer.handle().await.map_err(std::io::Error::other)?
    }
}
