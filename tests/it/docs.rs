//! Documentation that must stay in sync with the code: the configuration reference is
//! generated from the schema. Run with `AQUAMVS_BLESS=1` to rewrite the generated part after a
//! schema change, then review the diff.

use std::path::Path;

use aquamvs::config::Config;

const BEGIN: &str = "<!-- fields:begin (generated from the schema; see tests/it/docs.rs) -->";
const END: &str = "<!-- fields:end -->";

fn generated_reference() -> String {
    let mut out = String::new();
    let mut section = None;
    for field in Config::field_infos_all() {
        let (sec, key) = match field.path.split_once('.') {
            Some((s, k)) => (s.to_owned(), k.to_owned()),
            None => ("top level".to_owned(), field.path.clone()),
        };
        if section.as_deref() != Some(sec.as_str()) {
            let title = if sec == "top level" { sec.clone() } else { format!("`{sec}`") };
            out.push_str(&format!(
                "\n### {title}\n\n| key | default | accepted | meaning |\n|---|---|---|---|\n"
            ));
            section = Some(sec);
        }
        let cell = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!(
            "| `{key}` | `{}` | {} | {} |\n",
            cell(&field.default),
            cell(&field.expected),
            cell(&field.doc)
        ));
    }
    out
}

#[test]
fn configuration_reference_matches_the_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let text = std::fs::read_to_string(&path).expect("docs/configuration.md exists");
    let (Some(start), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        panic!("docs/configuration.md lacks the generated-section markers");
    };
    let current = &text[start + BEGIN.len()..end];
    let wanted = format!("\n{}\n", generated_reference().trim());
    if current != wanted {
        if std::env::var_os("AQUAMVS_BLESS").is_some() {
            let new = format!("{}{BEGIN}{wanted}{}", &text[..start], &text[end..]);
            std::fs::write(&path, new).unwrap();
        } else {
            panic!(
                "docs/configuration.md is out of date with the config schema; \
                 rerun the tests with AQUAMVS_BLESS=1 and review the diff"
            );
        }
    }
}
