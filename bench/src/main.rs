//! The `ferromq-bench` binary: parse the command line, run a scenario or a comparison, print.

use clap::Parser;
use ferromq_bench::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Scenario(s) => {
                let report = ferromq_bench::run_scenario(&s).await?;
                println!("{}", report.line());
            }
            Command::Compare(c) => ferromq_bench::compare::run(&c).await?,
        }
        Ok(())
    })
}
