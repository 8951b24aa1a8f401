//! Each edit on text, and the convergence rule: applied to its own output, nothing changes.

use std::collections::BTreeMap;

use super::*;

fn edit(rtype: &str, attrs: &[(&str, &str)]) -> Result<Edit, String> {
    let map: BTreeMap<String, String> = attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Edit::parse(rtype, "res", &|k| map.get(k).cloned()).map(|e| e.expect("an edit type"))
}

/// Applies `e` to `text`, checks a second application changes nothing, returns the result.
fn run(e: &Edit, text: &str) -> String {
    let once = e.apply(text).unwrap();
    assert_eq!(e.apply(&once).unwrap(), once, "not converged after one application of {text:?}");
    once
}

#[test]
fn file_line_adds_replaces_and_removes() {
    let add = edit("file_line", &[("line", "PermitRootLogin no")]).unwrap();
    assert_eq!(run(&add, "Port 22\n"), "Port 22\nPermitRootLogin no\n");
    assert_eq!(run(&add, "Port 22"), "Port 22\nPermitRootLogin no\n");
    assert_eq!(run(&add, ""), "PermitRootLogin no\n");
    assert_eq!(run(&add, "PermitRootLogin no\nPort 22\n"), "PermitRootLogin no\nPort 22\n");

    let swap = edit("file_line", &[("line", "PermitRootLogin no"), ("match", "^#?PermitRootLogin")]).unwrap();
    assert_eq!(
        run(&swap, "#PermitRootLogin yes\nPort 22\nPermitRootLogin yes\n"),
        "PermitRootLogin no\nPort 22\nPermitRootLogin yes\n"
    );
    assert_eq!(run(&swap, "Port 22\n"), "Port 22\nPermitRootLogin no\n");

    let gone = edit("file_line", &[("ensure", "absent"), ("match", "^Permit")]).unwrap();
    assert_eq!(run(&gone, "PermitA\nPort 22\nPermitB\n"), "Port 22\n");
    let gone = edit("file_line", &[("ensure", "absent"), ("line", "x")]).unwrap();
    assert_eq!(run(&gone, "x\ny\nx"), "y");
    assert!(gone.only_removes() && !add.only_removes());
}

#[test]
fn file_line_refusals() {
    assert!(edit("file_line", &[]).unwrap_err().contains("needs `line`"));
    assert!(edit("file_line", &[("ensure", "absent")]).unwrap_err().contains("`line` or `match`"));
    assert!(edit("file_line", &[("line", "a\nb")]).unwrap_err().contains("single line"));
    let e = edit("file_line", &[("line", "a"), ("match", "(unclosed")]).unwrap_err();
    assert!(e.contains("not a valid regular expression"), "{e}");
    assert!(edit("file_line", &[("line", "a"), ("ensure", "maybe")])
        .unwrap_err()
        .contains("present or absent"));
}

#[test]
fn blockinfile_adds_replaces_in_place_and_removes() {
    let b = edit("blockinfile", &[("block", "a\nb\n")]).unwrap();
    let added = run(&b, "top\n");
    assert_eq!(added, "top\n# BEGIN VIGO MANAGED BLOCK res\na\nb\n# END VIGO MANAGED BLOCK res\n");
    let changed = edit("blockinfile", &[("block", "c")]).unwrap();
    let with_tail = format!("{added}tail\n");
    assert_eq!(
        run(&changed, &with_tail),
        "top\n# BEGIN VIGO MANAGED BLOCK res\nc\n# END VIGO MANAGED BLOCK res\ntail\n"
    );
    let gone = edit("blockinfile", &[("ensure", "absent")]).unwrap();
    assert_eq!(run(&gone, &with_tail), "top\ntail\n");
    assert_eq!(run(&gone, "top\n"), "top\n");

    let custom = edit("blockinfile", &[("block", "x"), ("marker", "// {mark} app")]).unwrap();
    assert_eq!(run(&custom, ""), "// BEGIN app\nx\n// END app\n");
    let broken = custom.apply("// END app\nx\n// BEGIN app\n").unwrap_err();
    assert!(broken.contains("out of order"), "{broken}");
    assert!(custom.apply("// BEGIN app\nx\n").is_err());
}

#[test]
fn blockinfile_refusals() {
    assert!(edit("blockinfile", &[("marker", "# managed")]).unwrap_err().contains("{mark}"));
    let e = edit("blockinfile", &[("block", "x\n# END VIGO MANAGED BLOCK res")]).unwrap_err();
    assert!(e.contains("marker line"), "{e}");
}

#[test]
fn ini_sets_keys_in_sections() {
    let set = edit("ini", &[("section", "server"), ("key", "port"), ("value", "8080")]).unwrap();
    let text = "; top\nname = x\n\n[server]\nhost = a\nport=80\n\n[client]\nport = 1\n";
    assert_eq!(run(&set, text), "; top\nname = x\n\n[server]\nhost = a\nport = 8080\n\n[client]\nport = 1\n");
    // The value already there, written another way: left as it is.
    assert_eq!(run(&set, "[server]\nport=8080\n"), "[server]\nport=8080\n");
    assert_eq!(run(&set, "[server]\nhost = a\n\n[b]\n"), "[server]\nhost = a\nport = 8080\n\n[b]\n");
    assert_eq!(run(&set, "[server]\n"), "[server]\nport = 8080\n");
    assert_eq!(run(&set, "[other]\nx = 1\n"), "[other]\nx = 1\n\n[server]\nport = 8080\n");
    assert_eq!(run(&set, ""), "[server]\nport = 8080\n");
    // A commented-out key is not the key.
    assert_eq!(run(&set, "[server]\n;port = 1\n"), "[server]\n;port = 1\nport = 8080\n");

    let global = edit("ini", &[("key", "debug"), ("value", "true")]).unwrap();
    assert_eq!(run(&global, "a = 1\n[s]\nx = 2\n"), "a = 1\ndebug = true\n[s]\nx = 2\n");
    assert_eq!(run(&global, "[s]\nx = 2\n"), "debug = true\n[s]\nx = 2\n");

    let gone = edit("ini", &[("section", "client"), ("key", "port"), ("ensure", "absent")]).unwrap();
    assert_eq!(run(&gone, text), "; top\nname = x\n\n[server]\nhost = a\nport=80\n\n[client]\n");
}

#[test]
fn ini_refusals() {
    assert!(edit("ini", &[("key", "a")]).unwrap_err().contains("needs `value`"));
    assert!(edit("ini", &[("key", "a=b"), ("value", "1")]).unwrap_err().contains("not an ini key"));
    assert!(edit("ini", &[("key", ""), ("value", "1")]).is_err());
    assert!(edit("ini", &[("section", "[s]"), ("key", "a"), ("value", "1")])
        .unwrap_err()
        .contains("brackets"));
    assert!(edit("ini", &[("key", "a"), ("value", "1\n[evil]")]).unwrap_err().contains("single line"));
}

#[test]
fn json_file_sets_and_removes_values_at_a_path() {
    let set = edit("json_file", &[("path", "server.tls.port"), ("value", "8443")]).unwrap();
    let out = run(&set, "{\"server\": {\"name\": \"a\"}}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, serde_json::json!({"server": {"name": "a", "tls": {"port": 8443}}}));
    assert!(out.ends_with("}\n"));
    // Already so, however it is spelled: the text is kept byte for byte.
    let compact = "{\"server\":{\"tls\":{\"port\":8443}}}";
    assert_eq!(run(&set, compact), compact);
    assert_eq!(run(&set, ""), "{\n  \"server\": {\n    \"tls\": {\n      \"port\": 8443\n    }\n  }\n}\n");

    let text = edit("json_file", &[("path", "/a~1b/c"), ("value", "hello")]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&run(&text, "{}")).unwrap();
    assert_eq!(v, serde_json::json!({"a/b": {"c": "hello"}}));
    let list = edit("json_file", &[("path", "x"), ("value", "[1, \"two\"]")]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&run(&list, "{}")).unwrap();
    assert_eq!(v, serde_json::json!({"x": [1, "two"]}));

    let gone = edit("json_file", &[("path", "server.name"), ("ensure", "absent")]).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&run(&gone, "{\"server\": {\"name\": \"a\", \"b\": 1}}")).unwrap();
    assert_eq!(v, serde_json::json!({"server": {"b": 1}}));
    assert_eq!(run(&gone, "{\"other\": 1}"), "{\"other\": 1}");
}

#[test]
fn json_file_refusals() {
    let set = edit("json_file", &[("path", "a.b"), ("value", "1")]).unwrap();
    let e = set.apply("{\"a\": 5}").unwrap_err();
    assert!(e.contains("a is a number, not an object"), "{e}");
    assert!(set.apply("[1]").unwrap_err().contains("top of the file is an array"));
    assert!(set.apply("{not json").unwrap_err().contains("not valid JSON"));
    assert!(edit("json_file", &[("path", "a..b"), ("value", "1")]).unwrap_err().contains("not a path"));
    assert!(edit("json_file", &[("path", ""), ("value", "1")]).is_err());
    assert!(edit("json_file", &[("path", "a")]).unwrap_err().contains("needs `value`"));
}

#[test]
fn replace_substitutes_with_groups_and_refuses_what_never_converges() {
    let r = edit("replace", &[("regexp", "^Port \\d+$"), ("replace", "Port 2222")]).unwrap();
    assert_eq!(run(&r, "Port 22\nListen 1\n"), "Port 2222\nListen 1\n");
    let g = edit("replace", &[("regexp", "^(\\w+)=old$"), ("replace", "${1}=new")]).unwrap();
    assert_eq!(run(&g, "a=old\nb=old\nc=keep\n"), "a=new\nb=new\nc=keep\n");
    let cut = edit("replace", &[("regexp", "[ \\t]+$")]).unwrap();
    assert_eq!(run(&cut, "a  \nb\t\n"), "a\nb\n");

    let e = edit("replace", &[("regexp", "foo"), ("replace", "foobar")]).unwrap_err();
    assert!(e.contains("never converges"), "{e}");
    assert!(edit("replace", &[("regexp", "x*"), ("replace", "y")]).unwrap_err().contains("never converges"));
    // With a group the check waits for the file's text.
    let grows = edit("replace", &[("regexp", "(a)"), ("replace", "${1}a")]).unwrap();
    assert!(grows.apply("a").unwrap_err().contains("never converges"));
    assert!(edit("replace", &[("regexp", "[")]).unwrap_err().contains("not a valid regular expression"));
}

#[test]
fn cron_schedules_are_read_as_vixie_cron_reads_them() {
    for good in [
        "* * * * *",
        "*/5 * * * *",
        "0 3 * * 1-5",
        "15,45 8-18/2 1 jan-mar sun",
        "0 0 1 12 7",
        "@daily",
        "@reboot",
    ] {
        assert!(cron::check_schedule(good).is_ok(), "{good}: {:?}", cron::check_schedule(good));
    }
    for (bad, why) in [
        ("* * * *", "has 4 fields"),
        ("60 * * * *", "minute \"60\" holds 60, outside 0-59"),
        ("* 24 * * *", "outside 0-23"),
        ("* * 0 * *", "outside 1-31"),
        ("* * * 13 *", "outside 1-12"),
        ("* * * * 8", "outside 0-7"),
        ("* * * * fun", "neither a number nor one of sun"),
        ("*/0 * * * *", "step"),
        ("5/10 * * * *", "step after a single value"),
        ("5-1 * * * *", "runs backwards"),
        ("@sometimes", "is not one of @reboot"),
        ("a * * * *", "not a number"),
    ] {
        let e = cron::check_schedule(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
    assert!(cron::check_job_name("backup-db_1").is_ok());
    for bad in ["", "backup.sh", "../x", "a b"] {
        assert!(cron::check_job_name(bad).is_err(), "{bad}");
    }
    assert!(cron::check_command("date +\\%s").is_ok());
    assert!(cron::check_command("date +%s").unwrap_err().contains("bare %"));
    assert!(cron::check_command("a\nb").is_err());
}

#[test]
fn host_entries_take_the_name_out_of_other_lines() {
    let set = edit("host", &[("hostname", "db.internal"), ("ip", "10.0.0.5"), ("aliases", "db")]).unwrap();
    let text = "127.0.0.1\tlocalhost\n10.0.0.9 db.internal other # moved\n::1 localhost\n";
    assert_eq!(
        run(&set, text),
        "127.0.0.1\tlocalhost\n10.0.0.9\tother # moved\n::1 localhost\n10.0.0.5\tdb.internal db\n"
    );
    assert_eq!(run(&set, "10.0.0.5  db.internal db\n"), "10.0.0.5  db.internal db\n");
    assert_eq!(run(&set, "10.0.0.1 db.internal\n"), "10.0.0.5\tdb.internal db\n");
    let gone = edit("host", &[("hostname", "db.internal"), ("ensure", "absent")]).unwrap();
    assert_eq!(
        run(&gone, "10.0.0.5 db.internal db\n127.0.0.1 localhost\n"),
        "10.0.0.5\tdb\n127.0.0.1 localhost\n"
    );
    assert!(edit("host", &[("hostname", "db"), ("ip", "10.0.0.300")])
        .unwrap_err()
        .contains("not an IPv4 or IPv6"));
    assert!(edit("host", &[("hostname", "bad name"), ("ip", "::1")])
        .unwrap_err()
        .contains("not a host name"));
    assert!(edit("host", &[("hostname", "ok"), ("ip", "::1"), ("aliases", "-x")]).is_err());
}

#[test]
fn sysctl_keys_and_files() {
    assert!(sysctl::check_key("net.ipv4.ip_forward").is_ok());
    assert!(sysctl::check_key("net/ipv4/conf/eth0.100/forwarding").is_ok());
    for bad in ["", "net..x", "net/../../etc", "net.ipv4.ip forward", "/net/x"] {
        assert!(sysctl::check_key(bad).is_err(), "{bad}");
    }
    assert_eq!(sysctl::proc_path("net.ipv4.ip_forward"), "net/ipv4/ip_forward");
    assert_eq!(sysctl::proc_path("net/ipv4/conf/eth0.100/forwarding"), "net/ipv4/conf/eth0.100/forwarding");
    assert_eq!(sysctl::conf_path("net.ipv4.ip_forward"), "/etc/sysctl.d/60-vigo-net.ipv4.ip_forward.conf");
    assert!(sysctl::same_value("32768\t60999\n", "32768 60999"));
    assert!(sysctl::check_value("1\n2").is_err() && sysctl::check_value(" ").is_err());
}
