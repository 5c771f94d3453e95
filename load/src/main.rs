//! `ferrygate-load`: load and benchmark tool for ferrygate.
//!
//! `conns` measures the server's memory per idle connection; `fanout` steps a
//! publisher through target rates against many subscribers and reports the
//! highest sustained one; `churn` cycles short-lived clients; `recover` is a
//! reconnect storm on channels with history; `presence` measures what
//! presence costs per join and per query. `conns` and `fanout` also speak
//! NATS over WebSocket, as a baseline.

mod churn;
mod cli;
mod client;
mod conns;
mod counters;
mod efficiency;
mod fanout;
mod ferry;
mod http_pub;
mod httpget;
mod nats;
mod net;
mod payload;
mod presence;
mod procfs;
mod publisher;
mod recover;
mod report;
mod seq;
mod stats;
mod subscriber;
mod token;
mod wsconn;
mod wsframe;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    payload::init_clock();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => eprintln!("open-file limit: {n}"),
        Err(e) => eprintln!("warning: cannot raise the open-file limit: {e}"),
    }
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    }
    .context("building the runtime")?;
    let limit = Duration::from_secs(cli.max_secs);
    let threads = cli.threads;
    let outcome = runtime.block_on(async move {
        let work = async {
            match cli.command {
                Command::Conns(args) => conns::run(args).await,
                Command::Fanout(args) => fanout::run(args, threads).await,
                Command::Churn(args) => churn::run(args).await,
                Command::Recover(args) => recover::run(args).await,
                Command::Presence(args) => presence::run(args).await,
            }
        };
        tokio::time::timeout(limit, work).await
    });
    // Don't wait for connection tasks still parked in the runtime.
    runtime.shutdown_background();
    match outcome {
        Ok(result) => result,
        Err(_) => anyhow::bail!("run exceeded --max-secs {}", limit.as_secs()),
    }
}
