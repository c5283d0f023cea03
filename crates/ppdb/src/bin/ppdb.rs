//! The `ppdb` executable; see `ppdb --help`.

/// mimalloc instead of the system allocator: the server allocates per request from many
/// threads, where glibc's malloc was a measurable share of CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ppdb::cli::main()
}
