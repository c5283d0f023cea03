//! The `ppdb` executable; see `ppdb --help`.

fn main() -> std::process::ExitCode {
    ppdb::cli::main()
}
