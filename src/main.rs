//! The `paved` command.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// paved: self-service PostgreSQL on AWS RDS for Kubernetes, reading Crossplane's YAML.
#[derive(Parser, Debug)]
#[command(name = "paved", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print every CRD paved serves as multi-document YAML (pipe into `kubectl apply -f -`).
    Crds {
        /// Instead of printing, write one file per CRD into this directory (as in `crds/`).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Point the Instance conversion at this webhook URL instead of the in-cluster Service
        /// (a local control plane running `paved run --conversion-webhook-addr`).
        #[arg(long, value_name = "URL", requires = "conversion_ca_bundle", conflicts_with_all = ["out_dir", "no_conversion_webhook"])]
        conversion_webhook_url: Option<String>,
        /// The CA (PEM) that signed the webhook's certificate, with --conversion-webhook-url.
        #[arg(long, value_name = "FILE")]
        conversion_ca_bundle: Option<PathBuf>,
        /// Point the Instance conversion at paved's webhook through the Service paved-webhook in
        /// paved-system (port 443, path /convert), its caBundle injected by cert-manager from the
        /// Certificate paved-system/paved-webhook.
        #[arg(long, conflicts_with_all = ["conversion_webhook_url", "no_conversion_webhook"])]
        conversion_webhook_service: bool,
        /// Instance conversion `strategy: None` (the API server only rewrites apiVersion), the
        /// default for now: exact for every field paved implements, not for blueGreenUpdate,
        /// restoreToPointInTime or s3Import, whose shape differs between versions.
        #[arg(long, conflicts_with = "out_dir")]
        no_conversion_webhook: bool,
    },
    /// Run the operator: the claim and RDS controllers, health probes and metrics.
    Run(Box<paved::run::RunArgs>),
    /// Render a Composition for a claim without a cluster: print the composed objects (and,
    /// with --include-claim, the claim with its patched status) as multi-document YAML.
    Render(paved::render::RenderArgs),
    /// Print the version of paved.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds {
            out_dir,
            conversion_webhook_url,
            conversion_ca_bundle,
            no_conversion_webhook,
            conversion_webhook_service,
        } => match (
            conversion_webhook_url,
            conversion_ca_bundle,
            no_conversion_webhook,
        ) {
            (Some(url), Some(ca), _) => crds_with_conversion(url, &ca),
            _ if conversion_webhook_service => {
                paved::crdgen::crds_multi_doc_with(&paved::api::Conversion::in_cluster())
                    .map(|yaml| print!("{yaml}"))
                    .map_err(anyhow::Error::from)
            }
            (_, _, true) => paved::crdgen::crds_multi_doc_with(&paved::api::Conversion::None)
                .map(|yaml| print!("{yaml}"))
                .map_err(anyhow::Error::from),
            _ => crds(out_dir),
        },
        Command::Run(args) => run(*args),
        Command::Render(args) => paved::render::run(&args, &mut std::io::stdout().lock()),
        Command::Version => {
            println!("paved {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: paved::run::RunArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    runtime.block_on(paved::run::run(args))
}

fn crds_with_conversion(url: String, ca: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let ca_bundle =
        std::fs::read(ca).with_context(|| format!("reading the CA bundle {}", ca.display()))?;
    let conversion = paved::api::Conversion::Url { url, ca_bundle };
    print!("{}", paved::crdgen::crds_multi_doc_with(&conversion)?);
    Ok(())
}

fn crds(out_dir: Option<PathBuf>) -> anyhow::Result<()> {
    use anyhow::Context;
    match out_dir {
        None => print!("{}", paved::crdgen::crds_multi_doc()?),
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, content) in paved::crdgen::crd_files()? {
                let path = dir.join(name);
                std::fs::write(&path, content)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(())
}
