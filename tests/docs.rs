//! The docs that are contracts cannot drift from the code: the exit-code table, the
//! variables in docs/configuration.md, and the library example in
//! docs/runtime-resolution.md (which is examples/resolve_runtime.rs, run here).

use std::path::{Path, PathBuf};

use moonauth::exit::Exit;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The rows of the table in docs/exit-codes.md: (code, name, meaning).
fn documented_exit_codes() -> Vec<(u8, String, String)> {
    read("docs/exit-codes.md")
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .strip_prefix('|')?
                .strip_suffix('|')?
                .split('|')
                .map(str::trim)
                .collect();
            let code = cells.first()?.parse::<u8>().ok()?;
            assert_eq!(cells.len(), 3, "row {line:?} must have code, name, meaning");
            Some((code, cells[1].trim_matches('`').to_string(), cells[2].to_string()))
        })
        .collect()
}

#[test]
fn docs_exit_codes_table_matches_exit_all() {
    let documented = documented_exit_codes();
    let actual: Vec<(u8, String, String)> = Exit::ALL
        .iter()
        .map(|e| {
            let name = serde_json::to_value(e).unwrap().as_str().unwrap().to_string();
            (e.code(), name, e.meaning().to_string())
        })
        .collect();
    assert_eq!(documented, actual, "docs/exit-codes.md and Exit::ALL differ");
}

#[test]
fn exit_all_lists_every_code_once() {
    let mut codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
    codes.dedup();
    assert_eq!(codes.len(), Exit::ALL.len());
    assert!(codes.windows(2).all(|w| w[0] < w[1]), "table order is code order");
}

/// Every `"ALL_CAPS_NAME"` string literal in src/ (the variables moonauth reads or sets).
fn variables_in_source() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("src"), &mut files);
    let mut vars = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, piece) in text.split('"').enumerate() {
            let is_var = i % 2 == 1
                && piece.len() > 3
                && piece.contains('_')
                && piece.starts_with(|c: char| c.is_ascii_uppercase())
                && piece
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            // CARGO_* are read at compile time (env!), not settings.
            if is_var && !piece.starts_with("CARGO_") {
                vars.push(piece.to_string());
            }
        }
    }
    vars.sort();
    vars.dedup();
    vars
}

#[test]
fn docs_configuration_names_every_variable_in_the_source() {
    let vars = variables_in_source();
    assert!(vars.len() >= 20, "the scan found too few variables: {vars:?}");
    let doc = read("docs/configuration.md");
    let missing: Vec<&String> = vars.iter().filter(|v| !doc.contains(&format!("`{v}"))).collect();
    assert!(missing.is_empty(), "docs/configuration.md does not mention {missing:?}");
    assert!(doc.contains("`PATH`"));
}

mod example {
    include!("../examples/resolve_runtime.rs");

    pub fn run() {
        main().expect("the example runs");
    }
}

#[test]
fn docs_runtime_resolution_example_is_the_compiled_example_and_runs() {
    let doc = read("docs/runtime-resolution.md");
    let start = doc.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let len = doc[start..].find("```").expect("the block ends");
    assert_eq!(
        &doc[start..start + len],
        read("examples/resolve_runtime.rs"),
        "the example in docs/runtime-resolution.md differs from examples/resolve_runtime.rs"
    );
    example::run();
}
