//! `secure-api-operator`: see `secure-api-operator --help`.

use clap::Parser;
use secure_api_operator::cli::{self, Cli, Command, CrdsArgs, RenderArgs};
use secure_api_operator::{crdgen, gateway, operator, telemetry};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::exit_code(dispatch(Cli::parse()))
}

fn dispatch(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Crds(args) => crds(args),
        Command::Run(args) => {
            telemetry::init(cli.logging.log_format, &cli.logging.log_filter)?;
            let runtime = runtime()?;
            let result = runtime.block_on(operator::run(args));
            // The shutdown grace is spent: nothing left (a DNS lookup on a blocking thread, say)
            // may hold the exit.
            runtime.shutdown_background();
            result.map_err(|e| e.to_string())
        }
        Command::Render(args) => render(args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn crds(args: CrdsArgs) -> Result<(), String> {
    if args.reference {
        let text = crdgen::reference::markdown(&crdgen::all());
        return std::io::stdout().write_all(text.as_bytes()).map_err(|e| format!("cannot write to stdout: {e}"));
    }
    let Some(dir) = args.output_dir else {
        let yaml = crdgen::all_yaml().map_err(|e| format!("cannot render the CRDs: {e}"))?;
        return std::io::stdout().write_all(yaml.as_bytes()).map_err(|e| format!("cannot write to stdout: {e}"));
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for crd in crdgen::all() {
        let path = dir.join(crdgen::file_name(&crd));
        let yaml = crdgen::to_yaml(&crd).map_err(|e| format!("cannot render {}: {e}", path.display()))?;
        std::fs::write(&path, yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn render(args: RenderArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.file).map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let gateway = gateway::manifest::gateway_config(&args.file.display().to_string(), &text, args.name.as_deref())?;
    let mut backends = BTreeMap::new();
    for entry in &args.backends {
        let (service, url) =
            entry.split_once('=').ok_or_else(|| format!("--backend {entry:?}: expected SERVICE=URL"))?;
        backends.insert(service.to_owned(), url.to_owned());
    }
    // In a cluster a backend's address is its service's status.externalUrl; here, one not given is
    // a placeholder that never resolves (RFC 2606 `.invalid`), so the document still shows.
    let services = gateway.spec.routes.iter().filter_map(|route| route.backend.service.clone());
    for service in services.collect::<std::collections::BTreeSet<_>>() {
        if let std::collections::btree_map::Entry::Vacant(entry) = backends.entry(service) {
            let placeholder = format!("https://{}.backend.invalid", entry.key());
            eprintln!(
                "note: backend {} rendered as {placeholder}; give its URL with --backend {}=URL",
                entry.key(),
                entry.key()
            );
            entry.insert(placeholder);
        }
    }
    let name = gateway.metadata.name.clone().unwrap_or_else(|| "gateway".into());
    let yaml = gateway::render_yaml(&name, &gateway.spec, &backends).map_err(|e| e.to_string())?;
    std::io::stdout().write_all(yaml.as_bytes()).map_err(|e| format!("cannot write to stdout: {e}"))
}
