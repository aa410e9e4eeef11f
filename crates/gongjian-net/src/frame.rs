//! Frames on a sync stream: a 4-byte big-endian length, then the bytes.
//! The length is checked against the cap before anything is read, and the
//! buffer grows only as bytes actually arrive.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame announces {len} bytes, over the {max}-byte cap")]
    TooLarge { len: u64, max: usize },
    #[error("empty frame")]
    Empty,
    #[error("stream ended inside a frame ({got} of {len} bytes)")]
    Truncated { got: usize, len: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the peer broke the framing (as opposed to the link failing).
    /// A stream that ends inside a frame is not counted: a node stopping
    /// or a link dropping mid-frame looks just the same.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, FrameError::Io(_) | FrameError::Truncated { .. })
    }
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    (&mut *r).take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(FrameError::Truncated {
            got: buf.len(),
            len,
        });
    }
    Ok(Some(buf))
}

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(bytes).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_caps_hold() {
        futures::executor::block_on(async {
            let mut buf = Vec::new();
            write_frame(&mut buf, "颐和路社区".as_bytes())
                .await
                .unwrap();
            write_frame(&mut buf, &[7; 100]).await.unwrap();
            let mut r = &buf[..];
            assert_eq!(
                read_frame(&mut r, 1000).await.unwrap().unwrap(),
                "颐和路社区".as_bytes()
            );
            assert_eq!(
                read_frame(&mut r, 1000).await.unwrap().unwrap(),
                vec![7; 100]
            );
            assert!(read_frame(&mut r, 1000).await.unwrap().is_none());
            // A huge announced length is refused before reading on.
            let huge = [0xff, 0xff, 0xff, 0xf0, 1, 2, 3];
            let e = read_frame(&mut &huge[..], 1000).await.unwrap_err();
            assert!(matches!(e, FrameError::TooLarge { .. }) && e.is_peer_fault());
            let cut = [0, 0, 0, 9, 1, 2];
            assert!(matches!(
                read_frame(&mut &cut[..], 1000).await,
                Err(FrameError::Truncated { got: 2, len: 9 })
            ));
            assert!(matches!(
                read_frame(&mut &[0u8, 0, 0, 0][..], 1000).await,
                Err(FrameError::Empty)
            ));
        });
    }
}
