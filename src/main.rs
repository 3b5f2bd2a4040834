//! The `ferry` binary: see `ferry --help`.

#[tokio::main]
async fn main() {
    std::process::exit(ferry::cli::main().await);
}
