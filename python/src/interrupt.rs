//! Ctrl-C during a flowmpi call. Python turns SIGINT into KeyboardInterrupt only when its main
//! thread runs Python code, which it does not while flowmpi computes with the GIL released; so
//! for the length of a call flowmpi catches SIGINT itself and asks the work to end
//! ([`flowmpi::stop::interrupt`]): a training at its next chunk or k-means step, a map before
//! its next item (the items under way finish). Every rank ends the call together (the error
//! is agreed as any other), and Python gets its KeyboardInterrupt.

use pyo3::prelude::*;

extern "C" fn on_sigint(_: libc::c_int) {
    flowmpi::stop::interrupt();
}

/// SIGINT caught by flowmpi while it lives; Python's handler is back when it drops.
pub(crate) struct CtrlC {
    /// Python's handler, when flowmpi replaced it.
    old: Option<libc::sigaction>,
}

impl CtrlC {
    /// Catch SIGINT for the length of a call, when Python would turn it into KeyboardInterrupt
    /// (the main thread, Python's default handler); a program's own handler is left alone.
    pub fn catch(py: Python<'_>) -> Self {
        let python_default = || -> PyResult<bool> {
            let threading = py.import("threading")?;
            let main = threading.call_method0("main_thread")?.is(&threading.call_method0("current_thread")?);
            let signal = py.import("signal")?;
            let handler = signal.call_method1("getsignal", (signal.getattr("SIGINT")?,))?;
            Ok(main && handler.is(&signal.getattr("default_int_handler")?))
        };
        if !python_default().unwrap_or(false) {
            return CtrlC { old: None };
        }
        flowmpi::stop::clear_interrupt();
        // SAFETY: plain sigaction calls with zero-initialised structs; the handler only does an
        // atomic store, which is async-signal-safe.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigint as *const () as libc::sighandler_t;
            new.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGINT, &new, &mut old) != 0 {
                return CtrlC { old: None };
            }
            CtrlC { old: Some(old) }
        }
    }

    /// Give SIGINT back to Python; whether Ctrl-C came meanwhile.
    pub fn release(mut self) -> bool {
        self.restore()
    }

    fn restore(&mut self) -> bool {
        let Some(old) = self.old.take() else { return false };
        // SAFETY: puts back the handler saved by `catch`.
        unsafe { libc::sigaction(libc::SIGINT, &old, std::ptr::null_mut()) };
        let fired = flowmpi::stop::interrupted();
        flowmpi::stop::clear_interrupt();
        fired
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Run `f` with the GIL released and Ctrl-C caught. Ctrl-C that ended the work raises
/// KeyboardInterrupt, on every rank (the other ranks learn of it through the agreed error);
/// one that came after the work finished is handed to Python, which raises it next.
pub(crate) fn detach<T: Send>(py: Python<'_>, f: impl FnOnce() -> flowmpi::Result<T> + Send) -> PyResult<T> {
    let ctrl_c = CtrlC::catch(py);
    let out = py.detach(f);
    let fired = ctrl_c.release();
    match out {
        Ok(v) => {
            if fired {
                // SAFETY: asks Python to run its SIGINT handler at its next check.
                unsafe { pyo3::ffi::PyErr_SetInterrupt() };
            }
            Ok(v)
        }
        Err(e) if fired || is_interrupt(&e) => Err(pyo3::exceptions::PyKeyboardInterrupt::new_err(match e {
            flowmpi::Error::Item { index, rank, .. } => format!("interrupted (Ctrl-C) on rank {rank}, at item {index}"),
            e => e.to_string(),
        })),
        Err(e) => Err(crate::error(e)),
    }
}

/// Whether `e` says Ctrl-C ended the work (here or, for a map's item, on another rank).
fn is_interrupt(e: &flowmpi::Error) -> bool {
    match e {
        flowmpi::Error::Interrupted => true,
        flowmpi::Error::Item { msg, .. } => *msg == flowmpi::Error::Interrupted.to_string(),
        _ => false,
    }
}
