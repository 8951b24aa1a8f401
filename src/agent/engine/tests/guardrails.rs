//! The agent's own state is protected by what it is, not by how a bundle spells its path:
//! a guardrails.yaml rewritten through an alias would switch every rule off for the next run.

use std::fs;

use serde_json::json;

use super::*;

const LOOSEN: &str = "allow_rules: [dangerous-command, protected-path]\n";

#[test]
fn no_alias_of_the_agent_state_can_be_written_by_a_bundle() {
    let host = TempRoot::new("guard-ident");
    let base = host.join("var/lib/vigo");
    fs::create_dir_all(&base).unwrap();
    let rails = base.join("guardrails.yaml");
    fs::write(&rails, "protected_services: [postgresql]\n").unwrap();
    fs::write(base.join("identity.key"), "key").unwrap();
    fs::create_dir_all(host.join("other")).unwrap();
    std::os::unix::fs::symlink(&base, host.join("alias")).unwrap();
    fs::hard_link(base.join("identity.key"), host.join("other/key-link")).unwrap();
    let mut o = opts(Path::new("/"));
    o.guardrails = Guardrails::load(&rails, &base).unwrap();
    let at = |rel: &str| format!("{}/{rel}", host.path().display());
    let spelled_twice = format!("/{}//guardrails.yaml", base.display());
    let dotdot = format!("{}/../vigo/guardrails.yaml", base.display());
    let b = bundle(vec![
        res("alias", "file", json!({"target_path": at("alias/guardrails.yaml"), "content": LOOSEN})),
        res("slashes", "file", json!({"target_path": spelled_twice, "content": LOOSEN})),
        res("dotdot", "file", json!({"target_path": dotdot, "content": LOOSEN})),
        res("hardlink", "file", json!({"target_path": at("other/key-link"), "mode": "0644"})),
        res("dir", "directory", json!({"target_path": at("alias/new-dir")})),
        res("link", "symlink", json!({"target_path": at("alias/agent.db"), "points_to": "/dev/null"})),
        res("exec", "exec", json!({"command": format!("sh -c 'echo x > {}'", at("alias/guardrails.yaml"))})),
        res("fine", "file", json!({"target_path": at("other/fine"), "content": "x"})),
    ]);
    let r = run(&b, &secrets(&[]), &o);
    for name in ["alias", "slashes", "dotdot", "hardlink", "dir", "link", "exec"] {
        let x = r.result(name).unwrap();
        assert_eq!(x.status, ResourceStatus::Failed, "{name}: {x:?}");
        let rule = x.guardrail.as_deref().unwrap_or_default();
        assert!(rule.starts_with("protected-path:"), "{name}: {x:?}");
    }
    assert_eq!(r.result("fine").unwrap().status, ResourceStatus::Changed);
    assert_eq!(fs::read_to_string(&rails).unwrap(), "protected_services: [postgresql]\n");
    assert!(!base.join("new-dir").exists() && !base.join("agent.db").exists());
    // So the next run still refuses what the loosened file would have allowed.
    let next = Guardrails::load(&rails, &base).unwrap();
    assert_eq!(next.check_command("rm -rf /", None).unwrap_err().rule, "dangerous-command:rm-rf-root");
}

/// The guardrails remember how directories resolved while a run finds nothing to change (a
/// noop over a thousand paths would otherwise walk the same ancestors a thousand times). A
/// command — here one that only ran as an `unless` guard, so its resource changed nothing —
/// can swap a checked directory for a symlink to the agent's state: a new file planted there
/// must be checked afresh, not by the remembered answer.
#[test]
fn a_directory_swapped_by_a_command_mid_run_is_resolved_again() {
    let host = TempRoot::new("guard-swap");
    let base = host.join("var/lib/vigo");
    fs::create_dir_all(&base).unwrap();
    let rails = base.join("guardrails.yaml");
    fs::write(&rails, "protected_services: [postgresql]\n").unwrap();
    fs::create_dir_all(host.join("work")).unwrap();
    fs::write(host.join("work/a"), "kept\n").unwrap();
    fs::create_dir_all(host.join("stage")).unwrap();
    std::os::unix::fs::symlink(&base, host.join("stage/work")).unwrap();
    let mut o = opts(Path::new("/"));
    o.guardrails = Guardrails::load(&rails, &base).unwrap();
    let at = |rel: &str| format!("{}/{rel}", host.path().display());
    let swap = format!("mv {0}/work {0}/work.old && cp -a {0}/stage/. {0}/", host.path().display());
    let mut b = bundle(vec![
        res("first", "file", json!({"target_path": at("work/a"), "content": "kept\n"})),
        res("swap", "exec", json!({"command": "true", "unless": swap})),
        res("then", "file", json!({"target_path": at("work/planted"), "content": LOOSEN})),
    ]);
    b.resources[2].depends_on = vec!["swap".into()];
    b.resources[1].depends_on = vec!["first".into()];
    let r = run(&b, &secrets(&[]), &o);
    assert_eq!(r.result("first").unwrap().status, ResourceStatus::Unchanged);
    assert_eq!(r.result("swap").unwrap().status, ResourceStatus::Unchanged, "{:?}", r.result("swap"));
    assert!(fs::symlink_metadata(host.join("work")).unwrap().file_type().is_symlink(), "the swap ran");
    let then = r.result("then").unwrap();
    assert_eq!(then.status, ResourceStatus::Failed, "{then:?}");
    assert!(then.guardrail.as_deref().unwrap_or_default().starts_with("protected-path:"), "{then:?}");
    assert!(!base.join("planted").exists());
}
