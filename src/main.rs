//! The `ingot` binary. Everything lives in `ingot-app`; this only hands over.

fn main() -> std::process::ExitCode {
    ingot_app::main()
}
