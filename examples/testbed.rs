//! The test bed's command line: `dev` (the playground; `dev --demo` plays the example) and
//! `emulator`. See `crates/testbed`.

fn main() -> std::process::ExitCode {
    secure_api_testbed::cli::main()
}
