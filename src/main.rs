//! The `flowmpi` command; all logic lives in the library (`flowmpi::cli`).
fn main() -> std::process::ExitCode {
    flowmpi::cli::main()
}
