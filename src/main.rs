//! The `mosaic` binary: all of it lives in `mosaic-cli`.

fn main() -> std::process::ExitCode {
    mosaic_cli::main()
}
