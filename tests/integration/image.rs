//! The image's builder stage, replayed without a container engine (CI has none, and cannot pull
//! the base images): the Dockerfile's COPY lines fill a clean directory from the build context
//! (with `.dockerignore` applied), its RUN lines run there with `sh`, in order, and the file the
//! runtime stage copies out of the builder must come out and be the product binary. So a
//! placeholder that falls behind Cargo.toml, a COPY of something the context leaves out, or a
//! second build that keeps the placeholder's crate (COPY keeps the files' old times; the replay
//! does too) fails here, not in the release workflow.
//!
//! Not replayed: the base image (the host's toolchain stands in for `rust:<RUST_VERSION>`, which a
//! chart test keeps at Cargo.toml's `rust-version`) and the runtime stage (distroless has no
//! shell; its lines are checked in `chart::repository`).
//!
//! The RUN lines see `CARGO_TARGET_DIR` set to this test's own target directory. `.ci/run` builds
//! `--release --locked --bin secure-api-operator` there before the tests, which compiles the same
//! dependencies with the same flags, so the replay pays for this crate only; on a machine without
//! that build, the first replay compiles the dependencies too. The commands are the Dockerfile's
//! own: the Dockerfile reads `${CARGO_TARGET_DIR:-target}` where it takes the binary.
//!
//! Measured on two cores shared with other builds: with no release dependencies yet, 966 s (633 s
//! of them the dependencies); after `.ci/run`'s release build, 205 to 222 s, all of it this
//! crate's release compile, run at the lowest CPU priority beside the other tests.

use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One RUN line. Generous: a first replay on two busy cores compiles every dependency in release.
const RUN_DEADLINE: Duration = Duration::from_secs(40 * 60);

#[derive(Debug)]
enum Instruction {
    Workdir(String),
    Copy {
        from: Option<String>,
        sources: Vec<String>,
        dest: String,
    },
    Run(String),
    /// ENV, and ARG with a default: both are in the environment of the RUN lines after them.
    Env(Vec<(String, String)>),
    /// LABEL, USER, EXPOSE, ...: nothing the builder's files depend on.
    Other(String),
}

#[derive(Debug)]
struct Stage {
    name: Option<String>,
    instructions: Vec<Instruction>,
}

/// The Dockerfile's instructions, one a line: comments and the `# syntax` directive dropped,
/// lines ending in `\` joined with the next (comment lines inside such a run dropped, as docker
/// does).
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line.trim_end());
                lines.push(std::mem::take(&mut current).trim().to_owned());
            }
        }
    }
    assert!(current.trim().is_empty(), "the Dockerfile ends inside a continued line: {current}");
    lines
}

fn unquote(value: &str) -> String {
    value.trim_matches('"').to_owned()
}

fn parse(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical_lines(text) {
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line.as_str(), ""));
        let keyword = keyword.to_ascii_uppercase();
        let rest = rest.trim();
        if keyword == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                [_] => None,
                _ => panic!("FROM the replay cannot read: {line}"),
            };
            stages.push(Stage { name, instructions: Vec::new() });
            continue;
        }
        // Before the first FROM only ARGs for FROM lines may stand.
        let Some(stage) = stages.last_mut() else {
            assert_eq!(keyword, "ARG", "before the first FROM: {line}");
            continue;
        };
        let instruction = match keyword.as_str() {
            "WORKDIR" => Instruction::Workdir(unquote(rest)),
            "COPY" | "ADD" => {
                assert!(keyword == "COPY", "the replay copies with COPY only: {line}");
                assert!(!rest.starts_with('['), "the replay does not read COPY's JSON form: {line}");
                let mut from = None;
                let mut words = Vec::new();
                for word in rest.split_whitespace() {
                    if let Some(stage) = word.strip_prefix("--from=") {
                        from = Some(stage.to_owned());
                    } else {
                        assert!(!word.starts_with("--"), "COPY flag the replay does not know: {line}");
                        words.push(unquote(word));
                    }
                }
                let dest = words.pop().unwrap_or_else(|| panic!("COPY without a destination: {line}"));
                assert!(!words.is_empty(), "COPY without a source: {line}");
                Instruction::Copy { from, sources: words, dest }
            }
            "RUN" => {
                assert!(
                    !rest.starts_with("--") && !rest.starts_with('['),
                    "the replay runs RUN's shell form without flags only: {line}"
                );
                Instruction::Run(rest.to_owned())
            }
            "ENV" => {
                let pairs = if rest.contains('=') {
                    rest.split_whitespace()
                        .map(|pair| {
                            let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("ENV pair: {line}"));
                            (key.to_owned(), unquote(value))
                        })
                        .collect()
                } else {
                    let (key, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    vec![(key.to_owned(), unquote(value.trim()))]
                };
                Instruction::Env(pairs)
            }
            "ARG" => match rest.split_once('=') {
                Some((key, value)) => Instruction::Env(vec![(key.to_owned(), unquote(value))]),
                None => Instruction::Other(line.clone()),
            },
            _ => Instruction::Other(line.clone()),
        };
        stage.instructions.push(instruction);
    }
    stages
}

/// `.dockerignore`, as docker reads it: patterns relative to the context, `*` and `?` within one
/// path segment, `!` brings back; the last pattern that matches a path or one of its parents
/// decides.
struct DockerIgnore {
    rules: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    fn load(context: &Path) -> Self {
        let text = std::fs::read_to_string(context.join(".dockerignore")).unwrap_or_default();
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (include, pattern) = match line.strip_prefix('!') {
                    Some(pattern) => (true, pattern.trim()),
                    None => (false, line),
                };
                assert!(!pattern.contains("**"), ".dockerignore pattern the replay does not know: {line}");
                let segments =
                    pattern.split('/').filter(|s| !s.is_empty() && *s != ".").map(str::to_owned).collect::<Vec<_>>();
                (include, segments)
            })
            .collect();
        Self { rules }
    }

    /// Whether `relative` (a path in the context) goes into the build.
    fn includes(&self, relative: &Path) -> bool {
        let segments: Vec<String> =
            relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let mut included = true;
        for (include, pattern) in &self.rules {
            // The path itself or one of its parents.
            let matches = (1..=segments.len()).any(|n| {
                n == pattern.len() && pattern.iter().zip(&segments[..n]).all(|(p, s)| glob(p.as_bytes(), s.as_bytes()))
            });
            if matches {
                included = *include;
            }
        }
        included
    }
}

/// `*` and `?` within one path segment.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// `path` without `.` and `..`, relative paths taken from `base`; `None` when it climbs above
/// the root.
fn normalize(base: &str, path: &str) -> Option<PathBuf> {
    let joined = if path.starts_with('/') { PathBuf::from(path) } else { Path::new(base).join(path) };
    let mut normal = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                if !normal.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    Some(normal)
}

/// The builder's file system: the directory of its first WORKDIR is the replay's directory, and
/// nothing outside it can be replayed (the RUN lines run on this machine, not in a container).
struct Builder {
    dir: PathBuf,
    base: Option<PathBuf>,
    workdir: String,
}

impl Builder {
    /// Where the builder's `path` lies in the replay's directory.
    fn host(&self, path: &str) -> PathBuf {
        let base = self.base.as_ref().unwrap_or_else(|| panic!("the builder stage needs a WORKDIR before `{path}`"));
        let normal = normalize(&self.workdir, path).unwrap_or_else(|| panic!("`{path}` climbs above /"));
        let inside = normal.strip_prefix(base).unwrap_or_else(|_| {
            panic!(
                "the builder stage uses `{}` outside its WORKDIR {}: the replay cannot follow it there; \
                 keep the stage's paths under WORKDIR",
                normal.display(),
                base.display()
            )
        });
        self.dir.join(inside)
    }
}

/// Copies what `.dockerignore` lets into the build from `source` (a file or a directory of the
/// context) to `dest`, keeping modification times as COPY does. Returns how many files it copied.
fn copy_tree(context: &Path, ignore: &DockerIgnore, source: &Path, dest: &Path) -> usize {
    let relative =
        source.strip_prefix(context).unwrap_or_else(|_| panic!("{} is outside the context", source.display()));
    if !relative.as_os_str().is_empty() && !ignore.includes(relative) {
        return 0;
    }
    let metadata = std::fs::metadata(source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    if metadata.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(source)
            .unwrap_or_else(|e| panic!("reading {}: {e}", source.display()))
            .map(|entry| entry.unwrap_or_else(|e| panic!("reading {}: {e}", source.display())).path())
            .collect();
        entries.sort();
        entries
            .iter()
            .map(|entry| copy_tree(context, ignore, entry, &dest.join(entry.file_name().unwrap_or_default())))
            .sum()
    } else {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::fs::copy(source, dest)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", source.display(), dest.display()));
        let modified = metadata.modified().unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        std::fs::File::options()
            .write(true)
            .open(dest)
            .and_then(|file| file.set_modified(modified))
            .unwrap_or_else(|e| panic!("setting the time of {}: {e}", dest.display()));
        1
    }
}

/// The last `lines` lines of a command's output, for a failure message.
fn tail(output: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The target directory of this test binary: `CARGO_TARGET_TMPDIR` is its `tmp` folder.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or_else(|| panic!("CARGO_TARGET_TMPDIR has no parent"))
        .to_path_buf()
}

/// Whether cargo or nextest put `name` into this test's environment (the package's manifest
/// values, the binaries' paths, nextest's own). A RUN line must not see them: cargo compares some
/// of them for build scripts that watch them (ring's watches `CARGO_PKG_NAME`), and would rebuild
/// those dependencies and everything above them instead of sharing `.ci/run`'s build.
fn set_for_tests(name: &str) -> bool {
    ["CARGO_PKG_", "CARGO_BIN_", "CARGO_MANIFEST_", "CARGO_CRATE_", "NEXTEST", "__NEXTEST"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || ["CARGO", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"]
            .contains(&name)
}

/// Runs one RUN line with `sh -c` in `cwd`, within [`RUN_DEADLINE`]; the test fails with the end
/// of its output when it fails.
fn run(command: &str, cwd: &Path, env: &[(String, String)]) {
    let started = Instant::now();
    let mut sh = std::process::Command::new("sh");
    for (name, _) in std::env::vars_os() {
        if set_for_tests(&name.to_string_lossy()) {
            sh.env_remove(name);
        }
    }
    sh.arg("-c")
        .arg(command)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: on the deadline the test ends cargo and rustc too, not just sh.
        .process_group(0);
    // SAFETY: nice(2) is a plain system call, safe between fork and exec. The lowest priority:
    // the release build takes what CPU the tests running beside it leave, and never starves them
    // (their waits have deadlines).
    unsafe {
        sh.pre_exec(|| {
            libc::nice(19);
            Ok(())
        });
    }
    let child = sh.spawn().unwrap_or_else(|e| panic!("running sh: {e}"));
    let group = libc::pid_t::try_from(child.id()).unwrap_or_else(|e| panic!("process id: {e}"));
    // std waits without a deadline: a thread waits, this one gives up after RUN_DEADLINE.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let Ok(output) = finished.recv_timeout(RUN_DEADLINE) else {
        // SAFETY: signals the process group this test created for its own child; no memory is
        // involved.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        panic!("RUN {command}\nstill running after {RUN_DEADLINE:?}");
    };
    let output = output.unwrap_or_else(|e| panic!("waiting for sh: {e}"));
    assert!(
        output.status.success(),
        "RUN {command}\nfailed ({}) in the replay of the Dockerfile's builder stage:\n{}\n{}",
        output.status,
        tail(&output.stdout, 20),
        tail(&output.stderr, 40)
    );
    eprintln!("RUN {command}\n  done in {:.0?}", started.elapsed());
}

#[test]
fn the_dockerfile_builder_stage_replayed_in_a_clean_directory_builds_the_product_binary() {
    let context = Path::new(ROOT);
    let dockerfile = std::fs::read_to_string(context.join("Dockerfile")).unwrap_or_else(|e| panic!("Dockerfile: {e}"));
    let stages = parse(&dockerfile);
    let builder = stages
        .iter()
        .find(|stage| stage.name.as_deref() == Some("builder"))
        .unwrap_or_else(|| panic!("the Dockerfile has no stage `AS builder`"));
    let runtime = stages.last().unwrap_or_else(|| panic!("the Dockerfile has no stage"));
    let ignore = DockerIgnore::load(context);

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut files = Builder { dir: dir.path().to_path_buf(), base: None, workdir: "/".to_owned() };
    let mut env: Vec<(String, String)> = Vec::new();
    let mut runs = 0;
    for instruction in &builder.instructions {
        match instruction {
            Instruction::Workdir(path) => {
                let normal = normalize(&files.workdir, path).unwrap_or_else(|| panic!("WORKDIR {path}"));
                files.base.get_or_insert_with(|| normal.clone());
                files.workdir = normal.to_string_lossy().into_owned();
                let host = files.host(&files.workdir);
                std::fs::create_dir_all(&host).unwrap_or_else(|e| panic!("creating {}: {e}", host.display()));
            }
            Instruction::Copy { from: Some(stage), .. } => {
                panic!("the builder copies from stage {stage}: not replayed")
            }
            Instruction::Copy { from: None, sources, dest } => {
                let into_dir = dest.ends_with('/') || sources.len() > 1;
                let dest_host = files.host(dest);
                for source in sources {
                    assert!(!source.contains(['*', '?']), "COPY with a wildcard is not replayed: {source}");
                    let source_path = normalize("/", source)
                        .and_then(|p| p.strip_prefix("/").ok().map(|p| context.join(p)))
                        .unwrap_or_else(|| panic!("COPY source {source} leaves the context"));
                    let is_file = source_path.is_file();
                    let target = if is_file && into_dir {
                        dest_host.join(source_path.file_name().unwrap_or_default())
                    } else {
                        dest_host.clone()
                    };
                    let copied =
                        if source_path.exists() { copy_tree(context, &ignore, &source_path, &target) } else { 0 };
                    assert!(
                        copied > 0,
                        "COPY {source}: not in the build context (missing, or left out by .dockerignore)"
                    );
                }
            }
            Instruction::Run(command) => {
                run(command, &files.host(&files.workdir), &env);
                runs += 1;
            }
            Instruction::Env(pairs) => env.extend(pairs.iter().cloned()),
            Instruction::Other(_) => {}
        }
    }
    assert!(runs > 0, "the builder stage runs nothing");

    // What the runtime stage takes from the builder is there, and it is the product binary.
    let taken: Vec<&String> = runtime
        .instructions
        .iter()
        .filter_map(|instruction| match instruction {
            Instruction::Copy { from: Some(stage), sources, .. } if stage == "builder" => Some(sources),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!taken.is_empty(), "the runtime stage copies nothing from the builder");
    for source in taken {
        let binary = files.host(source);
        assert!(binary.is_file(), "the builder stage left no {source} (looked at {})", binary.display());
        let output = std::process::Command::new(&binary)
            .arg("--help")
            .output()
            .unwrap_or_else(|e| panic!("running {} --help: {e}", binary.display()));
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{source} --help failed:\n{help}");
        let lists = |subcommand: &str| {
            help.lines()
                .any(|line| line.strip_prefix("  ").and_then(|l| l.split_whitespace().next()) == Some(subcommand))
        };
        for subcommand in ["run", "crds", "render"] {
            assert!(lists(subcommand), "the image's binary does not offer `{subcommand}`:\n{help}");
        }
        for subcommand in ["emulator", "dev"] {
            assert!(!lists(subcommand), "the image's binary carries the test bed (`{subcommand}`):\n{help}");
        }
    }
}

#[test]
fn dockerignore_rules_read_as_docker_reads_them() {
    let ignore = DockerIgnore {
        rules: vec![
            (false, vec!["*".to_owned()]),
            (true, vec!["src".to_owned()]),
            (true, vec!["docker".to_owned(), "a.sh".to_owned()]),
            (false, vec!["src".to_owned(), "*.md".to_owned()]),
        ],
    };
    assert!(ignore.includes(Path::new("src/main.rs")));
    assert!(ignore.includes(Path::new("src/api/mod.rs")));
    assert!(!ignore.includes(Path::new("src/notes.md")));
    assert!(ignore.includes(Path::new("docker/a.sh")));
    assert!(!ignore.includes(Path::new("docker/b.sh")));
    assert!(!ignore.includes(Path::new("tests/integration/main.rs")));
    assert!(!ignore.includes(Path::new("README.md")));
}

#[test]
fn dockerfile_lines_join_continuations_and_drop_comments() {
    let stages = parse(
        "# syntax=docker/dockerfile:1\nARG V=1\nFROM rust:${V} AS builder\nWORKDIR /build\n\
         RUN a \\\n    # a comment inside\n    && b\nCOPY --from=builder /build/x /x\nFROM scratch\nUSER 1\n",
    );
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].name.as_deref(), Some("builder"));
    assert!(matches!(&stages[0].instructions[1], Instruction::Run(command) if command == "a      && b"));
    assert!(matches!(&stages[1].instructions[0], Instruction::Other(line) if line == "USER 1"));
}
