#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    visync::cli::main()
}
