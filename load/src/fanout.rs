//! `fanout`: many subscribers on one channel, one publisher stepping through
//! target rates; per step: rates, latency, loss and CPU. Stops after the first
//! step that is not sustained (unless `--no-stop`); with `--cpu-pid`, the
//! servers' CPU-seconds per million deliveries (`efficiency`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::{FanoutArgs, PublishVia, Target};
use crate::client::{Client, OpenPlan, Opened, open_many};
use crate::efficiency::{self, CpuWindow};
use crate::net::{self, Endpoint};
use crate::procfs::{CpuSampler, MachineSampler};
use crate::publisher::{Publisher, Replies};
use crate::report::{self, Run, Step};
use crate::stats::Shared;
use crate::{ferry, subscriber};

pub async fn run(args: FanoutArgs, threads: usize) -> Result<()> {
    let c = &args.common;
    ferry::check_channel(&args.channel)?;
    if c.target == Target::Nats && args.publish_via == PublishVia::Http {
        bail!("--publish-via http is for --target ferrygate");
    }
    if args.rates.is_empty() || args.rates.contains(&0) {
        bail!("--rates needs one or more positive rates");
    }
    let url = c.url();
    let endpoint = Arc::new(Endpoint::resolve(&url).await?);
    let sources = Arc::new(match &c.sources {
        Some(s) => net::parse_sources(s)?,
        None => Vec::new(),
    });
    let timeout = Duration::from_secs(c.connect_timeout_secs);
    println!(
        "fanout {} {url}: {} subscribers on {:?}, {} B payloads, {} s steps, rates {:?}, publishing via {:?}",
        c.target,
        args.subscribers,
        args.channel,
        args.payload_bytes,
        args.step_secs,
        args.rates,
        args.publish_via
    );

    let shared = Arc::new(Shared::new(if threads > 1 { threads * 4 } else { 1 }));
    let plan = OpenPlan {
        target: c.target,
        endpoint: endpoint.clone(),
        sources: sources.clone(),
        read_buffer: args.read_buffer,
        timeout,
        concurrency: c.connect_concurrency,
        subscribe: Some(args.channel.as_str().into()),
        tokens: c.tokens(),
        first_user: 0,
    };
    let mut tasks = JoinSet::new();
    let sub_shared = shared.clone();
    let ping_every =
        (args.client_ping_secs > 0.0).then(|| Duration::from_secs_f64(args.client_ping_secs));
    let opened = if args.subscriber_urls.is_empty() {
        let opened = open_many(args.subscribers, &plan, &mut tasks, move |i, client| {
            subscriber::run(i, client, sub_shared.clone(), ping_every)
        })
        .await;
        opened.print("subscribers");
        opened
    } else {
        open_spread(&args, &plan, &mut tasks, &sub_shared, ping_every).await?
    };
    if opened.ok == 0 {
        bail!("no subscriber could connect");
    }
    let source = (!sources.is_empty()).then(|| sources[args.subscribers % sources.len()]);
    let mut publisher = match args.publish_via {
        PublishVia::Ws => {
            let endpoint = match &plan.tokens {
                None => endpoint.clone(),
                Some(tokens) => Arc::new(Endpoint {
                    url: tokens.url(&endpoint.url, &format!("{}publisher", c.user_prefix)),
                    addr: endpoint.addr,
                }),
            };
            let client = Client::open(c.target, &endpoint, source, 64 * 1024, timeout).await?;
            let cfg = net::ws_config(64 * 1024, 256 * 1024);
            Publisher::websocket(client, cfg, &args.channel, args.payload_bytes).await?
        }
        PublishVia::Http => {
            let Some(key) = &args.api_key else {
                bail!("--publish-via http needs --api-key or FERRYGATE_API_KEY");
            };
            Publisher::http(&endpoint, source, key, &args.channel, args.payload_bytes).await?
        }
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut run = Run {
        target: c.target,
        url,
        subscribers: opened.ok,
        subscribers_failed: opened.failed,
        payload_bytes: args.payload_bytes,
        step_secs: args.step_secs,
        p99_limit_ms: args.p99_limit_ms,
        steps: Vec::new(),
        max_sustained_rate: None,
        max_sustained_delivered_per_sec: None,
        stopped_because: None,
        subscriber_disconnects: Vec::new(),
    };
    let ctx = StepCtx {
        args: &args,
        shared: &shared,
        subscribers: opened.ok as u64,
    };
    report::print_header();
    let mut missing_before = 0i64;
    for &rate in &args.rates {
        let step = match ctx.step(&mut publisher, rate, &mut missing_before).await {
            Ok(step) => step,
            Err(e) => {
                let closed = publisher
                    .replies
                    .close_reason()
                    .map(|r| format!(" (publisher connection {r})"))
                    .unwrap_or_default();
                run.stopped_because = Some(format!("{rate} msg/s: {e:#}{closed}"));
                break;
            }
        };
        report::print_row(&step);
        let why = report::shortfall(&step, args.p99_limit_ms);
        run.steps.push(step.clone());
        if let Some(why) = why {
            run.stopped_because
                .get_or_insert(format!("{rate} msg/s: {why}"));
            if !args.no_stop {
                break;
            }
        } else {
            run.max_sustained_rate = Some(rate);
            run.max_sustained_delivered_per_sec = Some(step.delivered_per_sec);
        }
        if let Some(why) = publisher.replies.close_reason() {
            run.stopped_because = Some(format!("the publisher's connection was {why}"));
            break;
        }
    }
    if let Ok(g) = publisher.replies.first_error.lock()
        && let Some(e) = g.as_ref()
    {
        println!("first publish error: {e}");
    }
    run.subscriber_disconnects = shared.disconnect_reasons();
    for (why, n) in run.subscriber_disconnects.iter().take(5) {
        println!("subscribers disconnected: {n} x {why}");
    }
    report::print_summary(&run);
    efficiency::print_summary(&run.steps);
    if let Some(path) = &args.json {
        report::write_json(path, &run)?;
    }
    publisher.close().await;
    tasks.abort_all();
    Ok(())
}

/// Opens `--subscribers` split evenly over `--subscriber-urls`, with
/// subscriber numbers unique across the instances.
async fn open_spread(
    args: &FanoutArgs,
    plan: &OpenPlan,
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    ping_every: Option<Duration>,
) -> Result<Opened> {
    let urls = &args.subscriber_urls;
    let mut total = Opened::default();
    let mut offset = 0;
    for (k, url) in urls.iter().enumerate() {
        let share = args.subscribers / urls.len() + usize::from(k < args.subscribers % urls.len());
        let plan = OpenPlan {
            endpoint: Arc::new(Endpoint::resolve(url).await?),
            first_user: offset,
            ..plan.clone()
        };
        let shared = shared.clone();
        let opened = open_many(share, &plan, tasks, move |i, client| {
            subscriber::run(offset + i, client, shared.clone(), ping_every)
        })
        .await;
        opened.print(&format!("subscribers on {url}"));
        total.ok += opened.ok;
        total.failed += opened.failed;
        total.elapsed += opened.elapsed;
        for (error, n) in opened.errors {
            *total.errors.entry(error).or_default() += n;
        }
        offset += share;
    }
    Ok(total)
}

struct StepCtx<'a> {
    args: &'a FanoutArgs,
    shared: &'a Shared,
    subscribers: u64,
}

impl StepCtx<'_> {
    async fn step(
        &self,
        publisher: &mut Publisher,
        rate: u64,
        missing_before: &mut i64,
    ) -> Result<Step> {
        let a = self.args;
        let pid = a.common.server_pid;
        let r0 = ReplySnap::take(&publisher.replies);
        let t0 = self.shared.totals();
        let _ = self.shared.take_latency();
        let server_cpu = pid.and_then(|p| CpuSampler::start(Some(p)).ok());
        let load_cpu = CpuSampler::start(None).ok();
        let machine_cpu = MachineSampler::start().ok();
        let window = (!a.cpu_pids.is_empty())
            .then(|| CpuWindow::start(&a.cpu_pids))
            .transpose()?;

        let sent = publisher
            .run_step(
                rate,
                Duration::from_secs(a.step_secs),
                Duration::from_millis(a.tick_ms),
            )
            .await?;
        let server_cpu_pct = server_cpu.and_then(|s| s.percent().ok());
        let load_cpu_pct = load_cpu.and_then(|s| s.percent().ok());
        let machine_cpu_pct = machine_cpu.and_then(|s| s.percent().ok());
        let t1 = self.shared.totals();

        // Grace: wait for stragglers, but no longer than needed.
        let expected_total = publisher.seq * self.subscribers;
        let grace_end = Instant::now() + Duration::from_secs_f64(a.grace_secs.max(0.0));
        while Instant::now() < grace_end && self.shared.totals().unique < expected_total {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let t2 = self.shared.totals();
        let cpu = window
            .map(|w| w.finish(t2.unique - t0.unique))
            .transpose()?;
        let r1 = ReplySnap::take(&publisher.replies);
        let latency = self.shared.take_latency();
        let missing = expected_total as i64 - t2.unique as i64;
        let loss = missing - *missing_before;
        *missing_before = missing;

        let secs = sent.elapsed.as_secs_f64().max(1e-9);
        let mut step = Step {
            target_rate: rate,
            secs,
            sent: sent.sent,
            achieved_rate: sent.sent as f64 / secs,
            acked_ok: r1.ok - r0.ok,
            pub_errors: r1.errors - r0.errors,
            rate_limited: r1.rate_limited - r0.rate_limited,
            expected: sent.sent * self.subscribers,
            received: t2.received - t0.received,
            delivered_per_sec: (t1.received - t0.received) as f64 / secs,
            loss,
            duplicates: t2.duplicates - t0.duplicates,
            out_of_order: t2.out_of_order - t0.out_of_order,
            unparsable: t2.unparsable - t0.unparsable,
            disconnected: self.shared.disconnected(),
            latency,
            server_cpu_pct,
            load_cpu_pct,
            machine_cpu_pct,
            cpu,
            sustained: false,
        };
        step.sustained = report::shortfall(&step, a.p99_limit_ms).is_none();
        Ok(step)
    }
}

#[derive(Debug, Clone, Copy)]
struct ReplySnap {
    ok: u64,
    errors: u64,
    rate_limited: u64,
}

impl ReplySnap {
    fn take(r: &Replies) -> Self {
        Self {
            ok: r.ok.load(Ordering::Relaxed),
            errors: r.errors.load(Ordering::Relaxed),
            rate_limited: r.rate_limited.load(Ordering::Relaxed),
        }
    }
}
