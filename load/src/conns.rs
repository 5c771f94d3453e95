//! `conns`: open many idle connections and measure what each costs the server
//! in resident memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::cli::{ConnsArgs, Target};
use crate::client::{OpenPlan, open_many};
use crate::net::{self, Endpoint};
use crate::procfs;

#[derive(Debug, Serialize)]
struct ConnsResult {
    target: Target,
    url: String,
    /// The channel every connection subscribed to, if any.
    subscribed: Option<String>,
    requested: usize,
    opened: usize,
    failed: usize,
    alive_at_measure: usize,
    connect_secs: f64,
    connects_per_sec: f64,
    server_rss_before: Option<u64>,
    server_rss_after: Option<u64>,
    server_bytes_per_conn: Option<f64>,
    load_rss_bytes: Option<u64>,
}

pub async fn run(args: ConnsArgs) -> Result<()> {
    let c = &args.common;
    let url = c.url();
    let endpoint = Arc::new(Endpoint::resolve(&url).await?);
    let sources = Arc::new(match &c.sources {
        Some(s) => net::parse_sources(s)?,
        None => Vec::new(),
    });
    let rss = |pid: Option<u32>| pid.and_then(|p| procfs::rss_bytes(Some(p)).ok());
    let before = rss(c.server_pid);
    if let Some(b) = before {
        println!("server RSS before: {:.1} MiB", b as f64 / 1048576.0);
    }
    let plan = OpenPlan {
        target: c.target,
        endpoint,
        sources: sources.clone(),
        read_buffer: args.read_buffer,
        timeout: Duration::from_secs(c.connect_timeout_secs),
        concurrency: c.connect_concurrency,
        subscribe: args.subscribe.as_deref().map(Arc::from),
        tokens: c.tokens(),
        first_user: 0,
    };
    println!(
        "opening {} {} connections to {url} from {} source address(es), {} at a time, {}",
        args.count,
        c.target,
        sources.len().max(1),
        plan.concurrency,
        match &args.subscribe {
            Some(channel) => format!("each subscribed to {channel:?}"),
            None => "unsubscribed".to_owned(),
        }
    );
    let alive = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    let body_alive = alive.clone();
    let opened = open_many(args.count, &plan, &mut tasks, move |_, client| {
        let alive = body_alive.clone();
        async move {
            alive.fetch_add(1, Ordering::Relaxed);
            client.idle().await;
            alive.fetch_sub(1, Ordering::Relaxed);
        }
    })
    .await;
    opened.print("connections");
    if opened.ok == 0 {
        anyhow::bail!("no connection could be opened");
    }

    println!("settling {} s ...", args.settle_secs);
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let after = rss(c.server_pid);
    let alive_now = alive.load(Ordering::Relaxed);
    let per_conn = match (before, after) {
        (Some(b), Some(a)) if alive_now > 0 => Some((a as f64 - b as f64) / alive_now as f64),
        _ => None,
    };
    let load_rss = procfs::rss_bytes(None).ok();
    println!("alive after settle: {alive_now}");
    if let (Some(a), Some(per)) = (after, per_conn) {
        println!(
            "server RSS after: {:.1} MiB -> {:.0} bytes ({:.2} KiB) per idle connection",
            a as f64 / 1048576.0,
            per,
            per / 1024.0
        );
    }
    if let Some(l) = load_rss {
        println!("load tool RSS: {:.1} MiB", l as f64 / 1048576.0);
    }
    let secs = opened.elapsed.as_secs_f64();
    let result = ConnsResult {
        target: c.target,
        url,
        subscribed: args.subscribe.clone(),
        requested: args.count,
        opened: opened.ok,
        failed: opened.failed,
        alive_at_measure: alive_now,
        connect_secs: secs,
        connects_per_sec: opened.ok as f64 / secs.max(1e-9),
        server_rss_before: before,
        server_rss_after: after,
        server_bytes_per_conn: per_conn,
        load_rss_bytes: load_rss,
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.hold_secs > 0 {
        println!("holding {} s ...", args.hold_secs);
        tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
        println!("alive at end: {}", alive.load(Ordering::Relaxed));
    }
    tasks.abort_all();
    Ok(())
}
