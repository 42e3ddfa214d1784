//! The compression around an archive's tar stream: zstd (the default, as
//! Podman's), gzip, or none. On read the kind is taken from the stream's
//! first bytes, never from a file name or a flag, as Podman's import and
//! checkpointctl do.

use super::{refused_archive, ArchiveError, Refusal};
use std::io::{self, Read, Write};

/// How the tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Zstd,
    Gzip,
    None,
}

/// zstd's frame magic, little-endian 0xFD2FB528.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// gzip's member magic.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Where a POSIX or GNU tar header has `ustar`.
const USTAR_AT: usize = 257;

/// How many leading bytes [`Compression::detect`] needs to decide.
pub const DETECT_LEN: usize = 512;

/// zstd level 3 (zstd's default): ~5 MiB of encoder state, several
/// hundred MB/s on one core.
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// The name users type (`--compress zstd|gzip|none`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }

    /// Parses [`Compression::name`].
    pub fn from_name(name: &str) -> Option<Compression> {
        [Compression::Zstd, Compression::Gzip, Compression::None]
            .into_iter()
            .find(|c| c.name() == name)
    }

    /// The kind of a stream from its first bytes (up to [`DETECT_LEN`];
    /// fewer only when the stream is that short). A plain tar is known by
    /// `ustar` at offset 257. Other formats are refused by name.
    pub fn detect(head: &[u8]) -> Result<Compression, Refusal> {
        if head.starts_with(&ZSTD_MAGIC) {
            return Ok(Compression::Zstd);
        }
        if head.starts_with(&GZIP_MAGIC) {
            return Ok(Compression::Gzip);
        }
        if head.get(USTAR_AT..USTAR_AT + 5) == Some(b"ustar") {
            return Ok(Compression::None);
        }
        let what = if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            " (it is xz)"
        } else if head.starts_with(b"BZh") {
            " (it is bzip2)"
        } else if head.is_empty() {
            " (it is empty)"
        } else if head.len() < DETECT_LEN {
            " (it is shorter than one tar header)"
        } else {
            ""
        };
        Err(Refusal::UnknownFormat(what.to_string()))
    }

    /// The media type suffix of an OCI layer in this compression.
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// A writer that compresses into `W`; [`Encoder::finish`] must be called
/// to end the stream and get `W` back.
pub enum Encoder<W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(flate2::write::GzEncoder<W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    /// Starts a stream of `kind` into `out`. zstd frames carry their
    /// content checksum, so corruption is caught by the decoder too.
    pub fn new(out: W, kind: Compression) -> io::Result<Encoder<W>> {
        Ok(match kind {
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(out, flate2::Compression::default())),
            Compression::None => Encoder::None(out),
        })
    }

    /// Ends the compressed stream and returns the inner writer, flushed.
    pub fn finish(self) -> io::Result<W> {
        let mut w = match self {
            Encoder::Zstd(e) => e.finish()?,
            Encoder::Gzip(e) => e.finish()?,
            Encoder::None(w) => w,
        };
        w.flush()?;
        Ok(w)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

/// Reads the first bytes of `input`, detects its compression and returns
/// a reader of the decompressed stream (the peeked bytes included).
pub fn decoder<'a, R: Read + 'a>(mut input: R) -> Result<(Compression, Box<dyn Read + 'a>), ArchiveError> {
    let mut head = Vec::with_capacity(DETECT_LEN);
    (&mut input)
        .take(DETECT_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| ArchiveError::Io {
            op: "read",
            path: "the archive".into(),
            source: e,
        })?;
    let kind = Compression::detect(&head).map_err(refused_archive)?;
    let whole = io::Cursor::new(head).chain(input);
    let reader: Box<dyn Read + 'a> = match kind {
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole).map_err(|e| ArchiveError::Io {
            op: "start decompressing",
            path: "the archive".into(),
            source: e,
        })?),
        // Multi-member, as `gzip -c a b` and pigz write.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::None => Box::new(whole),
    };
    Ok((kind, reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_head() -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[USTAR_AT..USTAR_AT + 6].copy_from_slice(b"ustar\0");
        h
    }

    #[test]
    fn detects_each_kind_by_magic() {
        assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Ok(Compression::Zstd));
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Ok(Compression::Gzip));
        assert_eq!(Compression::detect(&tar_head()), Ok(Compression::None));
    }

    #[test]
    fn refuses_other_formats_naming_them() {
        let xz = [0xfd, b'7', b'z', b'X', b'Z', 0, 0];
        let cases: &[(&[u8], &str)] = &[
            (&xz, "xz"),
            (b"BZh91AY", "bzip2"),
            (b"", "empty"),
            (b"hello", "shorter"),
            (&[b'x'; 600], "not a tar, gzip or zstd stream"),
        ];
        for (head, word) in cases {
            let e = Compression::detect(head).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(word), "{msg}");
        }
    }

    #[test]
    fn each_encoder_round_trips_through_the_detecting_decoder() {
        let mut data = tar_head();
        data.extend((0..100_000u32).map(|i| (i % 251) as u8));
        for kind in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let mut e = Encoder::new(Vec::new(), kind).unwrap();
            e.write_all(&data).unwrap();
            let packed = e.finish().unwrap();
            let (found, mut r) = decoder(&packed[..]).unwrap();
            assert_eq!(found, kind);
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "{kind:?}");
        }
        assert_eq!(Compression::from_name("gzip"), Some(Compression::Gzip));
        assert_eq!(Compression::from_name("xz"), None);
    }
}
