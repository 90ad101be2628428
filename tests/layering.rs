//! The layering of `src/` (ARCHITECTURE.md, "Layers"): a module may use only modules of its own
//! or a lower layer. Each top-level module is given a layer below; every `crate::<module>` path
//! in a file's code (comments are skipped) is checked against it. Test-only files may reach
//! upwards where they drive a lower layer with a real upper one; they are listed with a reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Layers, lowest first. A module of layer i may use modules of layers 0..=i.
const LAYERS: &[&[&str]] = &[
    // Pure building blocks with no crate imports outside themselves.
    &["crypto", "clock", "tls", "audit"],
    // The Raft core: no threads, sockets or clocks; entries are opaque bytes to it.
    &["raft"],
    // The pure KMS domain and token checks.
    &["kms", "auth"],
    &["config"],
    // The replicated state machine (a deterministic function of the committed log).
    &["state"],
    // The peer network: wire format, per-peer queues, snapshot chunks.
    &["net"],
    // The KeyStore actor: Raft + state + peer network, its listener.
    &["store"],
    // The KMS services over the key store.
    &["node"],
    // The leader's actors over the services.
    &["actors"],
    // The HTTP edge.
    &["api"],
    // Clients and tools, then the CLI and the binary.
    &["client", "selfcheck"],
    &["dev"],
    &["cli", "loadtool", "chaos"],
    &["main", "lib"],
];

/// Test-only files (declared under `#[cfg(test)]`) allowed to import upwards, with why; a
/// path ending in `/` covers a directory.
const TEST_ONLY_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "src/raft/testnet.rs",
        "the in-memory network's recorder decodes real commands (crate::state) as the key store's applier does",
    ),
    (
        "src/raft/scenarios.rs",
        "the Raft scenarios propose real commands and also run over the real applier (crate::store)",
    ),
    ("src/raft/scenarios/", "the Raft scenarios propose real commands"),
];

fn excepted(rel: &str) -> bool {
    TEST_ONLY_EXCEPTIONS
        .iter()
        .any(|(f, _)| *f == rel || (f.ends_with('/') && rel.starts_with(f)))
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::<name>` paths in the code of `text` (line comments skipped).
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((n + 1, name));
            }
            rest = after;
        }
    }
    found
}

#[test]
fn no_module_imports_a_higher_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 50, "src/ was not found");
    let mut violations = Vec::new();
    let mut unknown = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(root).expect("under root");
        let rel_s = rel.to_string_lossy().replace('\\', "/");
        if excepted(&rel_s) {
            continue;
        }
        let top = rel
            .components()
            .nth(1)
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .expect("top module");
        let Some(own) = layer_of(&top) else {
            unknown.insert(top, rel_s.clone());
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read file");
        for (line, used) in crate_paths(&text) {
            match layer_of(&used) {
                Some(l) if l > own => violations.push(format!("{rel_s}:{line}: {top} uses {used}")),
                Some(_) => {}
                None => {
                    unknown.insert(used, format!("{rel_s}:{line}"));
                }
            }
        }
    }
    assert!(unknown.is_empty(), "modules with no layer: {unknown:?}");
    for (path, _) in TEST_ONLY_EXCEPTIONS {
        assert!(root.join(path).exists(), "exception {path} does not exist");
    }
    assert!(
        violations.is_empty(),
        "imports against the layering:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    let text = "use crate::state::Envelope; // crate::api in a comment\nlet x = crate::node::KmsNode::new();";
    assert_eq!(
        crate_paths(text),
        vec![(1, "state".to_string()), (2, "node".to_string())]
    );
    assert!(layer_of("node") > layer_of("state"));
}
