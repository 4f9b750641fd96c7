//! The layers of src/ run one way (CONTRIBUTING.md, "The layers"): no module imports one that imports
//! it back, however long the way round, and the runner knows strategies and stores only
//! through their traits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every .rs file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("reading src/") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// A file's code without its unit tests, which may reach anywhere.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("reading a source file");
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The top-level modules that `code` names through `crate::`, alone or in a `crate::{…}`
/// group.
fn named(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let heads: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group[..group.find('}').unwrap_or(0)]
                .split(',')
                .map(|item| item.trim().split("::").next().unwrap_or("").trim())
                .collect(),
            None => vec![
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or(""),
            ],
        };
        found.extend(heads.into_iter().filter(|h| !h.is_empty()).map(String::from));
    }
    found
}

/// Each top-level module of src/ (a file or a folder) and the modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(&src) {
        let rel = file.strip_prefix(&src).expect("under src/");
        let first = rel.components().next().expect("a path").as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        graph.entry(module.clone()).or_default().extend(named(&code(&file)));
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (module, deps) in graph.iter_mut() {
        deps.retain(|d| d != module && modules.contains(d));
    }
    graph
}

/// A way round from a module back to itself, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut way = path[at..].to_vec();
            way.push(module.to_string());
            return Some(way);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for dep in &graph[module] {
            if let Some(way) = visit(dep, graph, path, done) {
                return Some(way);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_its_way_back_to_itself() {
    let graph = graph();
    assert!(graph.len() > 10, "found only {:?}", graph.keys());
    if let Some(way) = cycle(&graph) {
        panic!(
            "the modules import each other round a cycle: {}; move the shared type down to its owner",
            way.join(" → ")
        );
    }
}

/// The layers of src/, lowest first: each may use those before it, never one after it.
const LAYERS: [&str; 12] = [
    "sys", "scenario", "history", "checker", "plan", "store", "strategy", "worker", "runner", "results", "report",
    "compare",
];

#[test]
fn every_folder_of_src_is_a_layer_in_order() {
    let graph = graph();
    let found: BTreeSet<&str> = graph.keys().map(String::as_str).collect();
    assert_eq!(
        found,
        LAYERS.into_iter().collect(),
        "src/'s folders and LAYERS differ: add the new folder to LAYERS, in its place"
    );
    for (i, module) in LAYERS.iter().enumerate() {
        for later in &LAYERS[i + 1..] {
            assert!(
                !graph[*module].contains(*later),
                "{module} imports {later}, which comes after it in {LAYERS:?}"
            );
        }
    }
}

#[test]
fn src_holds_main_lib_and_folders_alone() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).expect("reading src/") {
        let path = entry.expect("a folder entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            path.is_dir() || name == "main.rs" || name == "lib.rs",
            "src/{name} is a loose file: put it in the folder of its layer"
        );
    }
}

#[test]
fn the_runner_names_no_strategy_and_no_store() {
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/runner");
    for file in sources(&runner) {
        let code = code(&file);
        for needle in [
            "StrategyName::",
            "StoreKind::",
            "strategy::queue",
            "strategy::semaphore",
            "store::manager",
            "store::file",
        ] {
            assert!(
                !code.contains(needle),
                "{} names `{needle}`: the runner knows strategies and stores through their traits alone",
                file.display()
            );
        }
    }
}

/// Where `text` has an `unsafe` block, fn or impl: what the regex
/// `\bunsafe\s*(\{|fn\b|impl\b)` finds, by hand, as the crate has no regex.
fn unsafe_code_at(text: &str) -> Option<usize> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices("unsafe").map(|(at, _)| at).find(|&at| {
        if text[..at].chars().next_back().is_some_and(word) {
            return false;
        }
        let rest = text[at + "unsafe".len()..].trim_start();
        rest.starts_with('{')
            || ["fn", "impl"]
                .iter()
                .any(|kw| rest.strip_prefix(kw).is_some_and(|after| !after.starts_with(word)))
    })
}

#[test]
fn no_unsafe_outside_sys() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sys = src.join("sys");
    let files: Vec<PathBuf> = sources(&src).into_iter().filter(|f| !f.starts_with(&sys)).collect();
    assert!(files.len() > 20, "found only {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("reading a source file");
        if let Some(at) = unsafe_code_at(&text) {
            let line = text[..at].lines().count().max(1);
            panic!(
                "{}:{line} has `unsafe` code: put the call behind a safe wrapper in src/sys/",
                file.display()
            );
        }
    }
}

#[test]
fn the_unsafe_check_sees_blocks_fns_and_impls_alone() {
    for code in [
        "unsafe { f() }",
        "unsafe{",
        "pub unsafe fn f()",
        "unsafe impl Send for X {}",
        "x = unsafe\n  {",
    ] {
        assert!(unsafe_code_at(code).is_some(), "{code}");
    }
    for code in [
        "// the only `unsafe` of the crate",
        "#![deny(unsafe_code)]",
        "unsafe_fn {",
        "not_unsafe { }",
        "unsafe fnord",
    ] {
        assert_eq!(unsafe_code_at(code), None, "{code}");
    }
}

#[test]
fn the_check_sees_a_cycle_and_grouped_imports() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, d) in [("a", "b"), ("b", "c"), ("c", "a")] {
        graph.entry(m.into()).or_default().insert(d.into());
    }
    assert_eq!(cycle(&graph).expect("a cycle").len(), 4);
    graph.get_mut("c").unwrap().clear();
    assert_eq!(cycle(&graph), None);
    let found = named("use crate::{store, strategy::Purchase};\nuse crate::plan::TrialPlan;");
    assert_eq!(found, ["plan", "store", "strategy"].map(String::from).into());
}
