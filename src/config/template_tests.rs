use serde_json::json;

use super::*;

fn data(traits: Option<Json>) -> Data {
    let vars: BTreeMap<String, Json> = [
        ("port".to_string(), json!("5432")),
        ("users".to_string(), json!(["ann", "bob"])),
        ("limits".to_string(), json!({"nofile": "4096", "nproc": "512"})),
        ("empty".to_string(), json!("")),
        ("pw".to_string(), json!(placeholder::marker("db/pw").unwrap())),
    ]
    .into();
    Data::new(&vars, "db1", traits.as_ref())
}

fn r(s: &str) -> Result<String, String> {
    render(s, &data(None), false, 100_000).map_err(|e| format!("{e:?}"))
}

#[test]
fn renders_vars_envoy_and_literals() {
    assert_eq!(r("p={{ .Vars.port }} h={{.Envoy.Name}}").unwrap(), "p=5432 h=db1");
    assert_eq!(r("x {{ \"{{\" }} y").unwrap(), "x {{ y");
    assert_eq!(r("no braces } here").unwrap(), "no braces } here");
    let cmd = render("run --key {{ secret_file }}", &data(None), true, 1000).unwrap();
    assert_eq!(cmd, "run --key {{secret_file}}");
}

#[test]
fn control_flow_lists_maps_and_functions() {
    assert_eq!(r("{{ range .Vars.users }}user {{ . }}\n{{ end }}").unwrap(), "user ann\nuser bob\n");
    assert_eq!(
        r("{{ range $k, $v := .Vars.limits }}{{ $k }}={{ $v }};{{ end }}").unwrap(),
        "nofile=4096;nproc=512;"
    );
    assert_eq!(r("{{ if eq .Vars.port \"5432\" }}pg{{ else }}other{{ end }}").unwrap(), "pg");
    assert_eq!(r("{{ with .Vars.limits }}{{ .nofile }}{{ end }}").unwrap(), "4096");
    assert_eq!(r("{{ .Vars.empty | default \"x\" }}|{{ .Vars.port | default \"x\" }}").unwrap(), "x|5432");
    assert_eq!(r("{{ upper \"ab\" }}{{ lower \"CD\" }}{{ trim \"  e \" }}").unwrap(), "ABcde");
    assert_eq!(r("{{ join \",\" .Vars.users }} {{ quote \"a\\\"b\" }}").unwrap(), "ann,bob \"a\\\"b\"");
    assert_eq!(r("{{ \"a\\nb\" | indent 2 }}").unwrap(), "  a\n  b");
    assert_eq!(r("{{ len .Vars.users }} {{ if gt (len .Vars.users) 1 }}many{{ end }}").unwrap(), "2 many");
}

#[test]
fn traits_are_read_when_the_envoy_reported_them() {
    let d = data(Some(json!({"os": {"family": "debian", "version": "12"}})));
    let out =
        render("{{ if eq .Traits.os.family \"debian\" }}apt{{ else }}dnf{{ end }}", &d, false, 100).unwrap();
    assert_eq!(out, "apt");
    let e = render("{{ .Traits.os.codename }}", &d, false, 100).unwrap_err();
    assert!(matches!(&e, RenderError::Invalid(m) if m.contains("no trait `codename`")), "{e:?}");
    let e = render("{{ .Traits.os.family }}", &data(None), false, 100).unwrap_err();
    assert!(matches!(&e, RenderError::Invalid(m) if m.contains("no trait `Traits`")), "{e:?}");
}

#[test]
fn template_errors_say_what_to_write() {
    assert!(r("{{ .Vars.nope }}").unwrap_err().contains("unknown var `nope`"));
    assert!(r("{{ .Vars.port").unwrap_err().contains("template syntax"));
    assert!(r("{{ .Values.x }}").unwrap_err().contains("no `Values`"));
    assert!(r("{{ shout .Vars.port }}").unwrap_err().contains("unknown template function `shout`"));
    assert!(r("run {{ secret_file }}").unwrap_err().contains("only works in an exec `command`"));
    assert!(check("{{ if }}").is_err());
    assert!(check("{{ .Vars.a }} {{ range .Vars.b }}{{ end }}").is_ok());
}

#[test]
fn a_secret_is_written_whole_or_not_at_all() {
    let marker = placeholder::marker("db/pw").unwrap();
    assert_eq!(r("pw={{ .Vars.pw }}").unwrap(), format!("pw={marker}"));
    for taken_apart in [
        "{{ upper .Vars.pw }}",
        "{{ .Vars.pw | default \"x\" }}",
        "{{ quote .Vars.pw }}",
        "{{ if eq .Vars.pw \"x\" }}y{{ end }}",
        "{{ len .Vars.pw }}",
        "{{ slice .Vars.pw 0 5 }}",
        "{{ printf \"%.20s\" .Vars.pw }}",
        "{{ urlquery .Vars.pw }}",
    ] {
        let e = r(taken_apart).unwrap_err();
        assert!(e.contains("secret"), "{taken_apart}: {e}");
    }
    // A marker the vars did not hand out is refused, even written as a literal.
    let forged = placeholder::marker("other/key").unwrap();
    assert!(r(&format!("{{{{ \"{forged}\" }}}}")).unwrap_err().contains("secret"));
}

#[test]
fn rendering_stops_at_the_limit_before_it_allocates_more() {
    let vars: BTreeMap<String, Json> = [("big".to_string(), json!("x".repeat(1 << 20)))].into();
    let d = Data::new(&vars, "h", None);
    let template = "{{ .Vars.big }}".repeat(10_000);
    let start = std::time::Instant::now();
    assert_eq!(render(&template, &d, false, 8 << 20), Err(RenderError::TooLarge));
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(render("ab{{ .Envoy.Name }}", &d, false, 4).unwrap(), "abh");
    assert_eq!(render("ab{{ .Envoy.Name }}", &d, false, 2), Err(RenderError::TooLarge));
}

#[test]
fn a_syntax_error_quotes_the_action_it_is_in() {
    let e = r("line one\n{{ if .Vars.port }}x{{ end }}\nthen {{ .Vars.port | }}").unwrap_err();
    assert!(e.contains("in `{{ .Vars.port | }}`"), "{e}");
}

#[test]
fn nested_loops_are_bounded() {
    let vars: BTreeMap<String, Json> = [("n".to_string(), json!(vec!["x"; 1000]))].into();
    let d = Data::new(&vars, "h", None);
    let e =
        render("{{ range .Vars.n }}{{ range $.Vars.n }}{{ end }}{{ end }}", &d, false, 1 << 20).unwrap_err();
    assert!(matches!(e, RenderError::Invalid(_)), "{e:?}");
    assert!(render("{{ range .Vars.n }}{{ end }}", &d, false, 100).is_ok());
}

#[test]
fn an_optional_trait_is_read_through_index() {
    let d = data(Some(json!({"virtualization": {"kind": "kvm"}})));
    let src = "{{ with index .Traits \"virtualization\" }}{{ .kind }}{{ end }}";
    assert_eq!(render(src, &d, false, 100).unwrap(), "kvm");
    assert_eq!(render(src, &data(Some(json!({}))), false, 100).unwrap(), "");
}

/// Traits come from the agent: one holding a secret marker (a hostname chosen to look like
/// one) cannot smuggle another key's marker into a bundle.
#[test]
fn a_trait_cannot_forge_a_secret_marker() {
    let forged = placeholder::marker("other/key").unwrap();
    let d = data(Some(json!({"hostname": forged})));
    let e = render("{{ .Traits.hostname }}", &d, false, 1000).unwrap_err();
    assert!(matches!(&e, RenderError::Invalid(m) if m.contains("secret")), "{e:?}");
}
