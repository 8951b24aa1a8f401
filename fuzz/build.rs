//! Generates the wire messages from ../proto (pure Rust, no protoc), for the envelope target.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto/vigo/v1/agent.proto");
    let fds = protox::compile(["vigo/v1/agent.proto"], ["../proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
