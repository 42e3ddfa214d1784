//! A read-only memory map of a pack, so that reassembly hashes chunks where
//! the page cache holds them and copies each byte once (into the file it
//! writes) instead of twice (read into a buffer, then write): under perf,
//! the kernel's copy into the read buffer was the largest cost of a
//! reassembly after BLAKE3 itself (docs/incremental.md).
//!
//! Sound because packs are immutable: written under a temp name, renamed
//! into `packs/` whole, and then only ever unlinked (which leaves a mapping
//! valid). ckpt must never truncate or rewrite a published pack; a process
//! that did so behind ckpt's back would make reads of the cut-off part
//! raise SIGBUS, which kills the command rather than restoring wrong bytes.
use super::{io_err, ChunkError};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// A whole file mapped read-only.
#[derive(Debug)]
pub(crate) struct Map {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only (PROT_READ) for its whole life, so
// sharing `&[u8]` views of it between threads is like sharing any
// immutable slice.
unsafe impl Send for Map {}
// SAFETY: as for Send: nothing writes through the mapping.
unsafe impl Sync for Map {}

impl Map {
    /// Maps `len` bytes of `file` (its size, checked by the caller; > 0).
    pub(crate) fn new(file: &File, len: u64, path: &Path) -> Result<Map, ChunkError> {
        let len = usize::try_from(len).map_err(|_| ChunkError::BadPack {
            path: path.to_path_buf(),
            reason: "too large to map".into(),
        })?;
        // SAFETY: a fresh private address range (addr NULL) of `len` > 0
        // bytes, read-only, backed by an open fd; the kernel checks the rest
        // and reports failure as MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io_err("map", path)(std::io::Error::last_os_error()));
        }
        // SAFETY: `ptr` is the mapping just made, `len` bytes long. Advice
        // only: its failure changes nothing.
        unsafe { libc::madvise(ptr, len, libc::MADV_SEQUENTIAL) };
        Ok(Map {
            ptr: ptr as *const u8,
            len,
        })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until `drop`, and nothing
        // writes them (module docs: published packs are immutable).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range `new` mapped, once; no slice
        // from `bytes` outlives `self` (they borrow it).
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}
