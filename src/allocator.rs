//! The process's memory allocator, and how memory it keeps after frees goes back to the
//! system.
//!
//! jemalloc (feature `jemalloc`, on by default) rather than the system allocator: an idle MQTT
//! connection is a handful of small allocations, two of them 128-byte aligned by tokio (the
//! task cell and the socket's I/O registration), and glibc's malloc serves aligned requests by
//! splitting larger chunks, leaving fragments between connections. 10,000 idle connections
//! cost 2.04-2.08 KiB each of broker RSS with glibc and 1.82 KiB with jemalloc, for about
//! 3 MiB more at start; MQTT QoS 0 / QoS 1 throughput was the same within noise (README,
//! Benchmarks). mimalloc was tried earlier and gained nothing here. Build with
//! `--no-default-features` for the system allocator (heaptrack and valgrind's memcheck see
//! only it).

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Hands free memory the allocator keeps back to the system. Returns whether the allocator
/// has a way to.
pub fn release_free_memory() -> bool {
    #[cfg(feature = "jemalloc")]
    {
        // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty and muzzy pages.
        const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
        // SAFETY: a NUL-terminated control name, and no old or new value, as this
        // write-only, valueless control requires.
        let r = unsafe {
            tikv_jemalloc_sys::mallctl(
                PURGE_ALL.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        r == 0
    }
    #[cfg(all(not(feature = "jemalloc"), target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free pages of the allocator's own heap.
        unsafe { libc::malloc_trim(0) };
        true
    }
    #[cfg(all(
        not(feature = "jemalloc"),
        not(all(target_os = "linux", target_env = "gnu"))
    ))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_memory_goes_back_to_the_system() {
        // Touch and free 64 MiB, then release: the call must succeed where the allocator has
        // a way to (jemalloc always; glibc on Linux).
        let big: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 1 << 20]).collect();
        drop(big);
        if cfg!(any(
            feature = "jemalloc",
            all(target_os = "linux", target_env = "gnu")
        )) {
            assert!(super::release_free_memory());
        }
    }
}
