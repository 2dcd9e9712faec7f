//! The `flowmpi` command; all logic lives in the library (`flowmpi::cli`).
fn main() -> std::process::ExitCode {
    // glibc hands blocks above a moving threshold (128 KiB at first) to mmap, and gives the
    // top of the heap back to the system when more than twice that is free. A reader that
    // holds a decompressed page of every column (1 MiB each) at once then faults in fresh
    // pages for every page it decompresses. Fixed thresholds keep such blocks on the heap,
    // reused. The library leaves this to the program it is part of.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
    flowmpi::cli::main()
}
