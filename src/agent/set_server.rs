//! `vigo-agent set-server HOST:PORT`: moves an enrolled agent to another address of its
//! server. The new address must answer a signed check-in as this envoy's server (same CA,
//! knows this identity) before it replaces the recorded one, so a typo cannot strand the agent.

use super::client::SignedClient;
use super::state::AgentState;
use crate::exit::{CmdResult, Failure};
use crate::paths::AgentPaths;

pub async fn set_server(paths: &AgentPaths, server: &str) -> CmdResult {
    crate::util::hosts::resolve(server).map_err(Failure::usage)?;
    let state = AgentState::load(paths)?;
    let before = state.server.clone();
    let mut client = SignedClient::open_at(paths, state, server.to_string()).await?;
    client.check_in(false).await.map_err(|f| Failure {
        code: f.code,
        message: format!("{}; the recorded address stays {before}", f.message),
    })?;
    client.state.server = server.to_string();
    client.state.save(paths)?;
    println!("This agent now checks in with {server} (was {before}).");
    if paths.server_override.is_some() {
        println!("Note: the config file's agent.server still takes precedence; change it there too.");
    }
    Ok(())
}
