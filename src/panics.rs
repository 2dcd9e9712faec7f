//! Panics: caught where flowmpi runs code it did not write (a node's statistics, a parallel
//! map's item), and the process-wide hook that only a program may choose to install.
//!
//! A library caller (a simulation, a Python interpreter) gets an [`crate::Error`] on every rank
//! when a node or an item panics: the panic is caught on its rank, becomes that rank's error, and
//! the phase's agreement gives every rank the lowest failing rank's message. No process-wide hook
//! is installed by the library; the process lives on.
//!
//! What this cannot cover: a rank that panics *outside* such code, or in a node's join before a
//! collective the other ranks are already in, leaves them waiting in that collective. A program
//! that owns its process (the `flowmpi` CLI) installs [`install_hook`] with an action that ends
//! the whole MPI job (`MPI_Abort`), so that no peer waits for a batch system's time limit.

use std::cell::Cell;

thread_local! {
    /// Set while caught code runs on this thread: the hook leaves such a panic to the catcher.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread runs code whose panics are caught (the hook lets them unwind).
pub fn catching() -> bool {
    CATCHING.with(|c| c.get())
}

/// Run `f`, turning a panic into `Err(its message)`.
pub fn catch<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let was = CATCHING.with(|c| c.replace(true));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    out.map_err(|p| message(p.as_ref()))
}

/// The text of a panic's payload (`panic!("...")` gives a `&str` or a `String`).
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Install a process-wide panic hook (a program's choice, never the library's): a panic that
/// is not caught prints as usual, then `last` runs (remove unfinished output, end the MPI job).
pub fn install_hook(last: Box<dyn Fn() + Send + Sync>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if catching() {
            return;
        }
        previous(info);
        last();
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_the_flag_is_restored() {
        assert!(!catching());
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(catch(|| -> i32 { panic!("bad {}", 3) }), Err("bad 3".to_string()));
        assert_eq!(catch(|| -> i32 { std::panic::panic_any(5u8) }), Err("a panic without a message".to_string()));
        // Nested: the inner catch leaves the outer one's flag set.
        let outer = catch(|| {
            let _ = catch(|| 1);
            catching()
        });
        assert_eq!(outer, Ok(true));
        assert!(!catching());
    }
}
