//! Compiles proto/ with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/vigo/v1/agent.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Attribute blobs decode as slices of the server's cached bundle bytes (no copy).
        .bytes(".vigo.v1.Resource.attributes_json")
        .compile_fds(descriptors)?;
    Ok(())
}
