//! Walking the entries of a tar stream with bounded memory.
//!
//! The `tar` crate, left to itself, reads a GNU long name or a PAX
//! extension header into memory whatever its declared size, so a hostile
//! 4 GiB "long name" would be a 4 GiB allocation. Here it runs in raw
//! mode, and the extension entries (`L`, `K`, `x`, `g`) are read by
//! [`walk`] itself, each at most [`MAX_EXTENSION`] bytes, and applied to
//! the entry that follows (PAX `path`, `linkpath`, `uid`, `gid`, `mtime`;
//! a PAX `size` that differs from the header is refused, because raw
//! mode reads the header's). Everything else about the entry is left to
//! the caller.

use super::{refused, refused_archive, ArchiveError, Refusal};
use std::io::{self, Read};

/// The largest GNU long-name or PAX extension entry accepted.
pub const MAX_EXTENSION: u64 = 64 << 10;

/// One entry, its extensions applied.
#[derive(Debug, Clone)]
pub struct Meta {
    pub name: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub kind: tar::EntryType,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Device numbers of a character or block device.
    pub dev: Option<(u32, u32)>,
}

impl Meta {
    /// The name for messages.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// The caller's handler of one real entry.
pub type OnEntry<'f, R> = dyn for<'e> FnMut(Meta, &mut tar::Entry<'e, R>) -> Result<(), ArchiveError> + 'f;

/// PAX records as `(key, value)`.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// What walking found about where the stream ended.
pub struct End {
    /// Entries yielded, extension entries included.
    pub raw_entries: u64,
    /// Where the last entry's data ended (512-aligned), from the stream start.
    pub last_end: u64,
}

/// Calls `f` for each real entry of `archive`, with its metadata and the
/// entry to read its data from. `stream_err` maps an error of the
/// underlying stream. `on_raw` is called for every raw entry (extensions
/// included) so the caller can count them against its limits.
pub fn walk<R: Read>(
    archive: &mut tar::Archive<R>,
    stream_err: &dyn Fn(io::Error) -> ArchiveError,
    on_raw: &mut dyn FnMut() -> Result<(), ArchiveError>,
    f: &mut OnEntry<'_, R>,
) -> Result<End, ArchiveError> {
    let mut end = End {
        raw_entries: 0,
        last_end: 0,
    };
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax: Records = Vec::new();
    let entries = archive.entries().map_err(stream_err)?.raw(true);
    for e in entries {
        let mut e = e.map_err(stream_err)?;
        end.raw_entries += 1;
        on_raw()?;
        let size = e.size();
        end.last_end = e.raw_file_position() + size.div_ceil(512) * 512;
        let h = e.header().clone();
        let kind = h.entry_type();
        let shown = String::from_utf8_lossy(&h.path_bytes()).into_owned();
        if kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions()
        {
            if size > MAX_EXTENSION {
                return Err(refused(
                    shown,
                    Refusal::Invalid(format!("an extension header of {size} bytes (at most {MAX_EXTENSION})")),
                ));
            }
            let mut data = Vec::with_capacity(size as usize);
            (&mut e).take(size).read_to_end(&mut data).map_err(stream_err)?;
            if (data.len() as u64) < size {
                return Err(refused_archive(Refusal::Truncated(format!(
                    "inside the extension header {shown}"
                ))));
            }
            if kind.is_gnu_longname() || kind.is_gnu_longlink() {
                while data.last() == Some(&0) {
                    data.pop();
                }
                if kind.is_gnu_longname() {
                    long_name = Some(data);
                } else {
                    long_link = Some(data);
                }
            } else if kind.is_pax_local_extensions() {
                pax = parse_pax(&data).map_err(|r| refused(shown, r))?;
            }
            // A global PAX header only sets defaults nobody needs; it is read and dropped.
            continue;
        }
        let num = |r: io::Result<u64>, what: &str| {
            r.map_err(|_| {
                refused(
                    shown.clone(),
                    Refusal::Invalid(format!("its {what} field is not a number")),
                )
            })
        };
        let mut m = Meta {
            name: long_name.take().unwrap_or_else(|| h.path_bytes().into_owned()),
            link: long_link.take().or_else(|| h.link_name_bytes().map(|l| l.into_owned())),
            kind,
            size,
            mode: num(h.mode().map(u64::from), "mode")? as u32,
            uid: num(h.uid(), "uid")?,
            gid: num(h.gid(), "gid")?,
            mtime: num(h.mtime(), "mtime")?,
            dev: None,
        };
        if kind.is_character_special() || kind.is_block_special() {
            let major = h.device_major().ok().flatten();
            let minor = h.device_minor().ok().flatten();
            match (major, minor) {
                (Some(a), Some(b)) => m.dev = Some((a, b)),
                _ => {
                    return Err(refused(
                        shown,
                        Refusal::Invalid("its device numbers are unreadable".into()),
                    ))
                }
            }
        }
        for (k, v) in pax.drain(..) {
            let text = || String::from_utf8_lossy(&v).into_owned();
            let number = || text().parse::<u64>().ok();
            match k.as_slice() {
                b"path" => m.name = v,
                b"linkpath" => m.link = Some(v),
                b"uid" => m.uid = number().ok_or_else(|| refused(m.shown(), Refusal::Invalid("PAX uid".into())))?,
                b"gid" => m.gid = number().ok_or_else(|| refused(m.shown(), Refusal::Invalid("PAX gid".into())))?,
                // Sub-second times ("1733000000.123") are cut to the second.
                b"mtime" => {
                    let secs = text().split('.').next().and_then(|s| s.parse::<u64>().ok());
                    m.mtime = secs.ok_or_else(|| refused(m.shown(), Refusal::Invalid("PAX mtime".into())))?;
                }
                b"size" if number() != Some(size) => {
                    return Err(refused(
                        m.shown(),
                        Refusal::Invalid(
                            "a PAX size that differs from its header (files over 8 GiB written as PAX)".into(),
                        ),
                    ))
                }
                _ => {}
            }
        }
        f(m, &mut e)?;
    }
    Ok(end)
}

/// Parses PAX records, `<len> <key>=<value>\n`, `len` counting the whole record.
fn parse_pax(mut data: &[u8]) -> Result<Records, Refusal> {
    let bad = || Refusal::Invalid("a malformed PAX extension header".into());
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.iter().all(|b| *b == 0) {
            break;
        }
        let sp = data.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad());
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec.iter().position(|b| *b == b'=').ok_or_else(bad)?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_parse_and_malformed_ones_are_refused() {
        fn rec(k: &str, v: &str) -> String {
            // The length counts itself; 2 digits here.
            let body = format!(" {k}={v}\n");
            format!("{}{body}", body.len() + 2)
        }
        let data = rec("path", "checkpoint/pages-1.img") + &rec("linkpath", "a/b/c/d");
        let got = parse_pax(data.as_bytes()).unwrap();
        assert_eq!(got[0], (b"path".to_vec(), b"checkpoint/pages-1.img".to_vec()));
        assert_eq!(got[1], (b"linkpath".to_vec(), b"a/b/c/d".to_vec()));
        for bad in [&b"99 path=x\n"[..], b"x path=y\n", b"10 pathxyz\n", b"3 p\n"] {
            assert!(parse_pax(bad).is_err(), "{bad:?}");
        }
    }
}
