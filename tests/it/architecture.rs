//! The library's import graph: no file and no top-level module imports itself through others.
//!
//! A cycle is where a change to a low building block ripples up and back down: the decision
//! claim declared in the authority stage but written by approvals and the watcher, the HTTP API
//! importing CLI helpers. This test reads the library as the compiler does — from `src/lib.rs`,
//! following each `mod` declaration (test modules left out) — and collects every path a file
//! names under `crate::`, `super::` or `self::` (in `use` items, in code, in macro calls and
//! attributes), resolved to the file that declares it. Then it looks for cycles twice: between
//! files, and between the top-level modules (`bus`, `identity`, `stages`, …).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

/// One module of the library: its path from the crate root and the file that holds it.
struct Module {
    path: Vec<String>,
    file: PathBuf,
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("test")
            || (attr.path().is_ident("cfg")
                && attr
                    .parse_args::<syn::Meta>()
                    .is_ok_and(|meta| meta.path().is_ident("test")))
    })
}

/// The library's modules, found from `src/lib.rs` by their `mod` declarations.
fn modules(src: &Path) -> Vec<Module> {
    let mut found = Vec::new();
    let mut todo = vec![Module {
        path: Vec::new(),
        file: src.join("lib.rs"),
    }];
    while let Some(module) = todo.pop() {
        let text = std::fs::read_to_string(&module.file)
            .unwrap_or_else(|error| panic!("{}: {error}", module.file.display()));
        let file = syn::parse_file(&text)
            .unwrap_or_else(|error| panic!("{}: {error}", module.file.display()));
        // `a.rs` and `a/mod.rs` both keep their children in `a/`; `lib.rs` in `src/`.
        let folder = match module.file.file_name().and_then(|name| name.to_str()) {
            Some("lib.rs" | "mod.rs") => module.file.parent().unwrap().to_path_buf(),
            _ => module.file.with_extension(""),
        };
        for item in &file.items {
            let syn::Item::Mod(declared) = item else {
                continue;
            };
            if declared.content.is_some() || is_test_only(&declared.attrs) {
                continue;
            }
            let name = declared.ident.to_string();
            let flat = folder.join(format!("{name}.rs"));
            let nested = folder.join(&name).join("mod.rs");
            let child = if flat.exists() { flat } else { nested };
            let mut path = module.path.clone();
            path.push(name);
            todo.push(Module { path, file: child });
        }
        found.push(module);
    }
    found
}

/// Every path a file names from the crate root, as segments (`["bus", "step", "Step"]`).
struct Named {
    /// The module the visitor is in (an inline module adds its name).
    here: Vec<String>,
    paths: Vec<Vec<String>>,
}

impl Named {
    /// `segments` as written, made absolute (`crate::`, `super::`, `self::`); others are
    /// external crates or local names and are not ours to follow.
    fn push(&mut self, segments: Vec<String>) {
        let Some(first) = segments.first() else {
            return;
        };
        let absolute = match first.as_str() {
            "crate" => segments[1..].to_vec(),
            "self" => [&self.here[..], &segments[1..]].concat(),
            "super" => {
                let mut base = self.here.to_vec();
                let mut rest = &segments[..];
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                [base, rest.to_vec()].concat()
            }
            _ => return,
        };
        self.paths.push(absolute);
    }

    fn tree(&mut self, prefix: Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                let mut prefix = prefix;
                prefix.push(path.ident.to_string());
                self.tree(prefix, &path.tree);
            }
            syn::UseTree::Name(name) => {
                let mut whole = prefix;
                if name.ident != "self" {
                    whole.push(name.ident.to_string());
                }
                self.push(whole);
            }
            syn::UseTree::Rename(rename) => {
                let mut whole = prefix;
                whole.push(rename.ident.to_string());
                self.push(whole);
            }
            syn::UseTree::Glob(_) => self.push(prefix),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.tree(prefix.clone(), tree);
                }
            }
        }
    }

    /// Paths inside macro calls and attributes are tokens to syn: read them as text.
    fn tokens(&mut self, text: &str) {
        let pattern =
            regex::Regex::new(r"\b(crate|super|self)((?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)")
                .unwrap();
        for found in pattern.captures_iter(text) {
            let mut segments = vec![found[1].to_string()];
            segments.extend(
                found[2]
                    .split("::")
                    .map(str::trim)
                    .filter(|segment| !segment.is_empty())
                    .map(str::to_string),
            );
            self.push(segments);
        }
    }
}

impl<'ast> Visit<'ast> for Named {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Fn(item) => &item.attrs,
            syn::Item::Mod(item) => &item.attrs,
            syn::Item::Impl(item) => &item.attrs,
            syn::Item::Use(item) => &item.attrs,
            syn::Item::Const(item) => &item.attrs,
            syn::Item::Static(item) => &item.attrs,
            syn::Item::Struct(item) => &item.attrs,
            syn::Item::Enum(item) => &item.attrs,
            syn::Item::Trait(item) => &item.attrs,
            _ => return visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        // Inside an inline module, `self` and `super` are relative to it.
        self.here.push(item.ident.to_string());
        visit::visit_item_mod(self, item);
        self.here.pop();
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.tree(Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.push(
            path.segments
                .iter()
                .map(|segment| segment.ident.to_string())
                .collect(),
        );
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(&mac.tokens.to_string());
        visit::visit_macro(self, mac);
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        if let syn::Meta::List(list) = &attr.meta {
            self.tokens(&list.tokens.to_string());
        }
    }
}

/// file → the files it imports from (itself left out), keyed by path from `src/`.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let by_path: BTreeMap<&[String], &Module> = modules
        .iter()
        .map(|module| (module.path.as_slice(), module))
        .collect();
    let name = |module: &Module| {
        module
            .file
            .strip_prefix(&src)
            .unwrap()
            .display()
            .to_string()
    };
    let mut graph = BTreeMap::new();
    for module in &modules {
        let text = std::fs::read_to_string(&module.file).unwrap();
        let file = syn::parse_file(&text).unwrap();
        let mut named = Named {
            here: module.path.clone(),
            paths: Vec::new(),
        };
        named.visit_file(&file);
        let mut imports = BTreeSet::new();
        for path in named.paths {
            // The longest prefix that is a module is the file the name comes from.
            let target = (0..=path.len())
                .rev()
                .find_map(|length| by_path.get(&path[..length]))
                .filter(|target| !target.path.is_empty());
            if let Some(target) = target.filter(|target| target.file != module.file) {
                imports.insert(name(target));
            }
        }
        graph.insert(name(module), imports);
    }
    graph
}

/// The strongly connected components with more than one member (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let number = self.index.len();
            self.index.insert(node, number);
            self.low.insert(node, number);
            self.stack.push(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    component.push(member.to_string());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

/// What ties a cycle: each member's imports from the other members.
fn explain(graph: &BTreeMap<String, BTreeSet<String>>, cycle: &[String]) -> String {
    cycle
        .iter()
        .map(|member| {
            let within: Vec<&str> = graph[member]
                .iter()
                .filter(|target| cycle.contains(target))
                .map(String::as_str)
                .collect();
            format!("  {member} -> {}", within.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn top_level(file: &str) -> String {
    let first = file.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first).to_string()
}

#[test]
fn no_file_of_the_library_imports_itself_through_others() {
    let graph = import_graph();
    // The reader must see the library, or an empty graph passes.
    assert!(graph.len() > 100, "only {} files found", graph.len());
    assert!(graph["stages/intake.rs"].contains("bus/step.rs"));
    let found = cycles(&graph);
    let report: Vec<String> = found.iter().map(|cycle| explain(&graph, cycle)).collect();
    assert!(
        found.is_empty(),
        "files that import each other in a circle:\n{}",
        report.join("\n\n")
    );
}

#[test]
fn no_top_level_module_imports_itself_through_others() {
    let files = import_graph();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, imports) in &files {
        let from = top_level(file);
        let entry = graph.entry(from.clone()).or_default();
        entry.extend(
            imports
                .iter()
                .map(|target| top_level(target))
                .filter(|to| *to != from),
        );
    }
    assert!(graph["stages"].contains("bus"));
    let found = cycles(&graph);
    let report: Vec<String> = found.iter().map(|cycle| explain(&graph, cycle)).collect();
    assert!(
        found.is_empty(),
        "modules that import each other in a circle:\n{}",
        report.join("\n\n")
    );
}

#[test]
fn the_reader_sees_a_cycle_when_there_is_one() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("a.rs".into(), ["b.rs".to_string()].into());
    graph.insert("b.rs".into(), ["c.rs".to_string()].into());
    graph.insert("c.rs".into(), ["a.rs".to_string()].into());
    graph.insert("d.rs".into(), ["a.rs".to_string()].into());
    assert_eq!(cycles(&graph), vec![vec!["a.rs", "b.rs", "c.rs"]]);
    // And the resolver follows `super` and groups.
    let mut named = Named {
        here: vec!["stages".to_string(), "intake".to_string()],
        paths: Vec::new(),
    };
    let file: syn::File = syn::parse_str(
        "use super::validator::{Decided, Scoring};\nuse crate::bus::{step::Step, Bus};\nfn f() { crate::metrics::x(); tracing::info!(\"{}\", crate::envelope::now()); }\nmod inner { use super::super::gateway::Claim; }",
    )
    .unwrap();
    named.visit_file(&file);
    let paths: Vec<String> = named.paths.iter().map(|path| path.join("::")).collect();
    for wanted in [
        "stages::validator::Decided",
        "stages::validator::Scoring",
        "bus::step::Step",
        "bus::Bus",
        "metrics::x",
        "envelope::now",
        "stages::gateway::Claim",
    ] {
        assert!(
            paths.iter().any(|path| path == wanted),
            "{wanted}: {paths:?}"
        );
    }
}

/// The worker a file of `stages/` runs in; `None` for the pure decision cores the stages
/// share (`admission`: the recorder's rule of who may record what; `validator`: intake's
/// scoring), which do no I/O.
fn worker_of(file: &str) -> Option<&str> {
    let rest = file.strip_prefix("stages/")?;
    let module = rest.split(['/', '.']).next()?;
    match module {
        "admission" | "validator" | "mod" => None,
        "approvals_bot" => Some("approvals"),
        worker => Some(worker),
    }
}

/// ARCHITECTURE.md: "Stages talk only through NATS subjects, never by calling each other."
/// No file of one worker's stage names anything of another's: what they share sits below
/// them (`bus`, `claims`, `approval`, `rollout`, …), and what one tells another travels as a
/// message.
#[test]
fn stages_talk_only_through_nats() {
    let graph = import_graph();
    let stage_files: Vec<&String> = graph
        .keys()
        .filter(|file| worker_of(file).is_some())
        .collect();
    // Every worker crate's stage is here, or the test looks at nothing.
    let workers: BTreeSet<&str> = stage_files.iter().filter_map(|f| worker_of(f)).collect();
    for worker in [
        "intake",
        "recorder",
        "approvals",
        "authority",
        "gateway",
        "watcher",
    ] {
        assert!(
            workers.contains(worker),
            "{worker} not found in {workers:?}"
        );
    }
    let mut crossings = Vec::new();
    for file in stage_files {
        let from = worker_of(file);
        for target in &graph[file] {
            let to = worker_of(target);
            if to.is_some() && to != from {
                crossings.push(format!("{file} -> {target}"));
            }
        }
    }
    assert!(
        crossings.is_empty(),
        "stages that call each other instead of sending a message:\n{}",
        crossings.join("\n")
    );
}

/// A read of one variable by name, as the library writes it (`var("X")`, `parse_var::<T>("X")`,
/// `secret_var`, `duration_var`, `flag_var`, `std::env::var`).
fn environment_read() -> regex::Regex {
    regex::Regex::new(
        r#"\b(var|parse_var(?:::<[^>]*>)?|secret_var|duration_var|flag_var|env::var(?:_os)?)\(\s*"([A-Z][A-Z0-9_]*)""#,
    )
    .unwrap()
}

/// Where a file may read an environment variable itself: the settings modules, the CLI's
/// own files (a person's shell is its configuration), the compose runner passing `PATH` and
/// `HOME` through to the binary it starts, the failpoint hook of the fault tests, and tests.
fn may_read_the_environment(file: &str) -> bool {
    matches!(
        file,
        "src/config.rs" | "src/settings.rs" | "src/failpoint.rs" | "src/engine/compose_cli.rs"
    ) || file.starts_with("src/cli/")
        || file.starts_with("src/bin/")
        || file.contains("/tests/")
        || file.ends_with("/tests.rs")
}

/// ARCHITECTURE.md: "A worker's settings are read once, in one place." No worker main and no
/// module of the library outside `config`/`settings` (and the CLI) reads an environment
/// variable: each worker reads its section of `wingman::settings` at start and hands it to
/// its stage's builder, which the tests call with a section they build.
#[test]
fn settings_are_read_in_the_settings_modules_only() {
    let read = environment_read();
    let files = crate::helpers::rust_files(&["src", "workers"]);
    assert!(files.len() > 100, "the scan saw only {} files", files.len());
    let outside: Vec<String> = files
        .iter()
        .filter(|(file, _)| !may_read_the_environment(file))
        .flat_map(|(file, text)| {
            read.captures_iter(text)
                .map(move |found| format!("{file}: {}", &found[0]))
        })
        .collect();
    assert!(
        outside.is_empty(),
        "variables read outside wingman::settings (add them to the worker's section):\n{}",
        outside.join("\n")
    );
}

#[test]
fn the_settings_scan_sees_a_variable_read_in_a_stage() {
    let read = environment_read();
    let sample =
        r#"let ttl = duration_var("WINGMAN_TOKEN_TTL")?; let x = parse_var::<u16>("API_PORT");"#;
    let names: Vec<&str> = read
        .captures_iter(sample)
        .map(|found| found.get(2).unwrap().as_str())
        .collect();
    assert_eq!(names, ["WINGMAN_TOKEN_TTL", "API_PORT"]);
    assert!(!may_read_the_environment("src/stages/authority.rs"));
    assert!(!may_read_the_environment("workers/gateway/src/main.rs"));
}

/// The library's files (`src/`, test files left out) with their text without comment lines.
fn library_code() -> Vec<(String, String)> {
    let files: Vec<(String, String)> = crate::helpers::rust_files(&["src"])
        .into_iter()
        .filter(|(file, _)| !file.contains("/tests/") && !file.ends_with("/tests.rs"))
        .map(|(file, text)| {
            let code = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .map(|line| format!("{line}\n"))
                .collect();
            (file, code)
        })
        .collect();
    assert!(files.len() > 100, "the scan saw only {} files", files.len());
    files
}

/// ARCHITECTURE.md: "Only `stages::gateway` (through `engine`) touches Docker." No file of
/// the library outside `engine/` names the Docker client (`bollard`) or the `Engine` that
/// wraps it, but the gateway's stage; the others use the engine's plain data types
/// (`Probe`, `TargetResult`, …) at most.
#[test]
fn only_the_gateway_stage_touches_docker() {
    let client = regex::Regex::new(r"\bbollard::|\bEngine\b").unwrap();
    // "the Docker Engine" in a message is no use of it.
    let strings = regex::Regex::new(r#""(?:[^"\\]|\\.)*""#).unwrap();
    let files = library_code();
    let outside: Vec<String> = files
        .iter()
        .filter(|(file, _)| !file.starts_with("src/engine/") && file != "src/stages/gateway.rs")
        .filter_map(|(file, code)| {
            let code = strings.replace_all(code, "\"\"");
            client
                .find(&code)
                .map(|m| format!("{file}: {}", m.as_str()))
        })
        .collect();
    assert!(
        outside.is_empty(),
        "the Docker client named outside the engine and the gateway:\n{}",
        outside.join("\n")
    );
    let gateway = files
        .iter()
        .find(|(file, _)| file == "src/stages/gateway.rs")
        .unwrap();
    assert!(
        client.is_match(&gateway.1),
        "the scan no longer sees the gateway's engine"
    );
}

/// ARCHITECTURE.md: "Only `bus/consume.rs` acks, and only after the stage's effect is
/// durable." No other file of the library acknowledges a JetStream message.
#[test]
fn only_the_consume_loop_acks() {
    let ack = regex::Regex::new(r"\.(ack|ack_with|double_ack)\s*\(").unwrap();
    let files = library_code();
    let acking: Vec<&String> = files
        .iter()
        .filter(|(_, code)| ack.is_match(code))
        .map(|(file, _)| file)
        .collect();
    assert_eq!(acking, ["src/bus/consume.rs"], "files that ack a message");
}
