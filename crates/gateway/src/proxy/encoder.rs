//! A streaming encoder for one response body: chunks in, compressed chunks out, the stream
//! properly finished at the end (brotli's last meta-block, gzip's trailer, zstd's epilogue)
//! so every decoder accepts it.

use std::io::{self, Write};

use bytes::Bytes;
use cors_edge_core::compression::Coding;

/// brotli's window: 2^19 bytes (as Pingora's compressor): an encoder's memory grows with its
/// window and one exists per compressing miss in flight, while API answers rarely repeat text
/// more than 512 KiB apart.
const BROTLI_LG_WINDOW: u32 = 19;
const BROTLI_BUFFER: usize = 4096;

enum Inner {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

/// Behind a mutex because zstd's context is `Send` but not `Sync`, and Pingora's per-request
/// context must be both; it is only ever locked by the request's own task.
pub struct Encoder(std::sync::Mutex<Option<Inner>>);

impl Encoder {
    /// An encoder for `coding` at `level` (1-9); `None` for identity.
    pub fn new(coding: Coding, level: u32) -> io::Result<Option<Self>> {
        let inner = match coding {
            Coding::Identity => return Ok(None),
            Coding::Gzip => Inner::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level),
            )),
            Coding::Brotli => Inner::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                level,
                BROTLI_LG_WINDOW,
            ))),
            Coding::Zstd => {
                Inner::Zstd(zstd::stream::write::Encoder::new(Vec::new(), level as i32)?)
            }
        };
        Ok(Some(Encoder(std::sync::Mutex::new(Some(inner)))))
    }

    /// Compresses `input`; with `end`, finishes the stream. Returns what the encoder has ready
    /// (possibly nothing: encoders buffer until they have a block).
    pub fn encode(&self, input: &[u8], end: bool) -> io::Result<Bytes> {
        let mut guard = self
            .0
            .lock()
            .map_err(|_| io::Error::other("encoder poisoned"))?;
        let Some(inner) = guard.as_mut() else {
            return Err(io::Error::other("encoder already finished"));
        };
        let ready = match inner {
            Inner::Gzip(w) => {
                w.write_all(input)?;
                if end {
                    w.try_finish()?;
                }
                std::mem::take(w.get_mut())
            }
            Inner::Brotli(w) => {
                w.write_all(input)?;
                if !end {
                    std::mem::take(w.get_mut())
                } else {
                    // Only `into_inner` writes brotli's final meta-block.
                    let Some(Inner::Brotli(w)) = guard.take() else {
                        return Err(io::Error::other("encoder state"));
                    };
                    w.into_inner()
                }
            }
            Inner::Zstd(w) => {
                w.write_all(input)?;
                if end {
                    w.do_finish()?;
                }
                std::mem::take(w.get_mut())
            }
        };
        if end {
            *guard = None;
        }
        Ok(Bytes::from(ready))
    }
}
