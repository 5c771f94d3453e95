//! `churn`: many short-lived clients in sequence, for soak runs. Each cycle
//! connects, subscribes, publishes one message to its own channel, waits for
//! it to come back as a push, and disconnects (every other cycle with a
//! close frame, the others by dropping the socket). Samples the server's
//! `VmRSS` every `--sample-every` cycles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cli::{ChurnArgs, Target};
use crate::client::Client;
use crate::net::{self, Endpoint};
use crate::wsframe::{OP_CLOSE, OP_TEXT};
use crate::{ferry, procfs};

#[derive(Debug, Serialize)]
struct Sample {
    cycles: u64,
    secs: f64,
    server_rss_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct ChurnResult {
    url: String,
    cycles: u64,
    ok: u64,
    failed: u64,
    secs: f64,
    cycles_per_sec: f64,
    errors: BTreeMap<String, u64>,
    samples: Vec<Sample>,
}

/// Everything a cycle needs, shared by the cycling tasks.
struct Plan {
    endpoint: Endpoint,
    sources: Vec<std::net::IpAddr>,
    channel: String,
    channels: u64,
    timeout: Duration,
    next: AtomicU64,
    cycles: u64,
}

pub async fn run(args: ChurnArgs) -> Result<()> {
    let c = &args.common;
    if c.target != Target::Ferrygate {
        bail!("churn speaks ferrygate's protocol only");
    }
    ferry::check_channel(&args.channel)?;
    let url = c.url();
    let plan = Arc::new(Plan {
        endpoint: Endpoint::resolve(&url).await?,
        sources: match &c.sources {
            Some(s) => net::parse_sources(s)?,
            None => Vec::new(),
        },
        channel: args.channel.clone(),
        channels: args.channels.max(1),
        timeout: Duration::from_secs(c.connect_timeout_secs),
        next: AtomicU64::new(0),
        cycles: args.cycles,
    });
    let rss = || c.server_pid.and_then(|p| procfs::rss_bytes(Some(p)).ok());
    let start = Instant::now();
    let mut samples = vec![Sample {
        cycles: 0,
        secs: 0.0,
        server_rss_bytes: rss(),
    }];
    print_sample(&samples[0]);
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<(), String>>();
    for _ in 0..args.concurrency.max(1) {
        let (plan, tx) = (Arc::clone(&plan), tx.clone());
        tokio::spawn(async move {
            loop {
                let i = plan.next.fetch_add(1, Ordering::Relaxed);
                if i >= plan.cycles {
                    return;
                }
                let outcome = tokio::time::timeout(plan.timeout, cycle(&plan, i))
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
                if tx.send(outcome.map_err(|e| format!("{e:#}"))).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut errors = BTreeMap::<String, u64>::new();
    while let Some(outcome) = rx.recv().await {
        match outcome {
            Ok(()) => ok += 1,
            Err(e) => {
                failed += 1;
                *errors.entry(e.chars().take(160).collect()).or_default() += 1;
            }
        }
        let done = ok + failed;
        if done % args.sample_every.max(1) == 0 || done == args.cycles {
            let sample = Sample {
                cycles: done,
                secs: start.elapsed().as_secs_f64(),
                server_rss_bytes: rss(),
            };
            print_sample(&sample);
            samples.push(sample);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "churn: {ok} cycles ok, {failed} failed in {secs:.1} s ({:.0} cycles/s)",
        ok as f64 / secs.max(1e-9)
    );
    for (e, n) in &errors {
        println!("  {n} x {e}");
    }
    let result = ChurnResult {
        url,
        cycles: args.cycles,
        ok,
        failed,
        secs,
        cycles_per_sec: ok as f64 / secs.max(1e-9),
        errors,
        samples,
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if failed > 0 {
        bail!("{failed} of {} cycles failed", args.cycles);
    }
    Ok(())
}

fn print_sample(sample: &Sample) {
    let rss = sample.server_rss_bytes.map_or_else(
        || "-".to_owned(),
        |b| format!("{:.1}", b as f64 / 1048576.0),
    );
    println!(
        "  cycles {:>8}  t {:>7.1} s  server RSS {rss} MiB",
        sample.cycles, sample.secs
    );
}

/// One client's life: connect, subscribe, publish, see the push, leave.
async fn cycle(plan: &Plan, i: u64) -> Result<()> {
    let source = (!plan.sources.is_empty()).then(|| plan.sources[i as usize % plan.sources.len()]);
    let mut client = Client::open(
        Target::Ferrygate,
        &plan.endpoint,
        source,
        4096,
        plan.timeout,
    )
    .await?;
    let channel = format!("{}.{}", plan.channel, i % plan.channels);
    client.subscribe(&channel, plan.timeout).await?;
    let mut frame = BytesMut::new();
    let payload = format!("{{\"cycle\":{i}}}");
    ferry::encode_publish(&mut frame, 2, &channel, payload.as_bytes());
    client.conn.send(OP_TEXT, &frame).await?;
    let deadline = Instant::now() + plan.timeout;
    // Another cycle on the same channel may publish too: wait for our own
    // (a transform on the channel may add fields after ours).
    let mine = format!("\"cycle\":{i}");
    loop {
        let data = client.conn.next_data(deadline).await?;
        if let Some(pushed) = ferry::push_data(data)
            && let Some(at) = memchr::memmem::find(pushed, mine.as_bytes())
            && !pushed.get(at + mine.len()).is_some_and(u8::is_ascii_digit)
        {
            break;
        }
        if let ferry::Reply::Error { .. } = ferry::classify_reply(data) {
            bail!("publish refused: {}", String::from_utf8_lossy(data));
        }
    }
    if i.is_multiple_of(2) {
        client.conn.send(OP_CLOSE, &1000u16.to_be_bytes()).await?;
    }
    Ok(())
}
