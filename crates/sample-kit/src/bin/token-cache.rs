//! Lists or clears the samples' token cache: `cargo run -p sample-kit --bin token-cache -- list|clear`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    sample_kit::main(async {
        let args: sample_kit::cache_tool::CacheToolArgs = sample_kit::parse()?;
        sample_kit::cache_tool::run(args).await
    })
    .await
}
