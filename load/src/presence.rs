//! `presence`: the cost of presence (issue 12). `--members` connections,
//! each its own user (`--jwt-secret` tokens), connect and subscribe to one
//! channel; then, with all of them in it, presence queries are timed (the op
//! and `GET /v1/presence`, first page and every page); then all leave.
//! Reported per phase: the rate, the gateway's and the broker's CPU per
//! join, the broker's operations per join and per leave (`counters`), per
//! heartbeat over `--idle-secs`, and the time until presence shows
//! everyone. On a channel whose route has no presence (the baseline run)
//! the same joins and leaves are timed and the queries skipped.

mod query;
mod report;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::{PresenceArgs, Target};
use crate::client::{Client, OpenPlan, open_many};
use crate::counters::{self, Snapshot};
use crate::ferry;
use crate::httpget::HttpGet;
use crate::net::{self, Endpoint};
use crate::procfs::CpuSampler;
use query::Asker;
use report::{Phase, PresenceRun, per};

/// The gateway series read around each phase.
const GATEWAY_SERIES: &[&str] = &["ferrygate_presence_", "ferrygate_broker_messages_"];

/// Reads the broker's and the gateway's counters.
struct Meter<'a> {
    args: &'a PresenceArgs,
    http: HttpGet,
    key: &'a str,
}

impl Meter<'_> {
    async fn snapshot(&mut self) -> Result<(Snapshot, Snapshot)> {
        let broker = match (self.args.redis, self.args.nats_monitor) {
            (Some(addr), _) => counters::redis(addr).await?,
            (None, Some(addr)) => counters::nats(addr).await?,
            (None, None) => Snapshot::new(),
        };
        let gateway = counters::gateway(&mut self.http, self.key, GATEWAY_SERIES).await?;
        Ok((broker, gateway))
    }
}

/// CPU microseconds per item from a sampler's percentage over `secs`.
fn cpu_each(sampler: Option<CpuSampler>, secs: f64, n: usize) -> Option<f64> {
    let percent = sampler?.percent().ok()?;
    Some(percent / 100.0 * secs * 1e6 / n.max(1) as f64)
}

pub async fn run(args: PresenceArgs) -> Result<()> {
    let c = &args.common;
    ferry::check_channel(&args.channel)?;
    if c.target != Target::Ferrygate {
        bail!("presence is a ferrygate benchmark (--target ferrygate)");
    }
    let Some(tokens) = c.tokens() else {
        bail!("presence counts users: give --jwt-secret (the jwt-auth plugin's hs256_secret)");
    };
    let key = args
        .api_key
        .as_deref()
        .context("give --api-key or FERRYGATE_API_KEY (for /v1/presence and /metrics)")?;
    let endpoint = Arc::new(Endpoint::resolve(&c.url()).await?);
    let sources = Arc::new(match &c.sources {
        Some(s) => net::parse_sources(s)?,
        None => Vec::new(),
    });
    let timeout = Duration::from_secs(c.connect_timeout_secs);
    let mut meter = Meter {
        args: &args,
        http: HttpGet::new(endpoint.addr, timeout),
        key,
    };
    let mut probe = HttpGet::new(endpoint.addr, timeout);
    let presence = Asker::Http(&mut probe, key)
        .connections(1, &args.channel)
        .await?
        .is_some();
    println!(
        "presence {}: {} members on {:?} (route presence {})",
        c.url(),
        args.members,
        args.channel,
        if presence { "on" } else { "off" }
    );

    // Join: every member connects with its own token and subscribes.
    let plan = OpenPlan {
        target: c.target,
        endpoint: endpoint.clone(),
        sources,
        read_buffer: 4096,
        timeout,
        concurrency: c.connect_concurrency,
        subscribe: Some(args.channel.as_str().into()),
        tokens: Some(tokens.clone()),
        first_user: 0,
    };
    let (release, released) = watch::channel(false);
    let (before, gateway_before) = meter.snapshot().await?;
    let (server_cpu, broker_cpu) = samplers(c.server_pid, args.broker_pid);
    let mut tasks = JoinSet::new();
    let opened = open_many(args.members, &plan, &mut tasks, move |_, client| {
        let mut released = released.clone();
        async move {
            tokio::select! {
                () = client.idle() => {}
                _ = released.wait_for(|go| *go) => {}
            }
        }
    })
    .await;
    opened.print("joined");
    let join_secs = opened.elapsed.as_secs_f64();
    let gateway_cpu = cpu_each(server_cpu, join_secs, opened.ok);
    let broker_cpu = cpu_each(broker_cpu, join_secs, opened.ok);
    let settle_ms = if presence {
        Some(wait_for(&mut probe, key, &args.channel, opened.ok as u64).await?)
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        None
    };
    let (after, gateway_after) = meter.snapshot().await?;
    let join = Phase {
        count: opened.ok,
        failed: opened.failed,
        secs: join_secs,
        per_sec: opened.ok as f64 / join_secs.max(1e-9),
        settle_ms,
        gateway_cpu_us_each: gateway_cpu,
        broker_cpu_us_each: broker_cpu,
        broker_ops_each: per(&counters::delta(&before, &after), opened.ok),
        gateway_series_each: per(&counters::delta(&gateway_before, &gateway_after), opened.ok),
    };

    // Idle: what the heartbeats cost with everyone in.
    let heartbeat = if args.idle_secs > 0 {
        let (b0, g0) = meter.snapshot().await?;
        tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
        let (b1, g1) = meter.snapshot().await?;
        let beats = counters::delta(&g0, &g1)
            .get("ferrygate_presence_heartbeats_total")
            .copied()
            .unwrap_or(0);
        Some((beats, per(&counters::delta(&b0, &b1), beats as usize)))
    } else {
        None
    };

    // Queries, with every member in.
    let mut queries = Vec::new();
    if presence && args.queries > 0 {
        let observer = tokens.url(&endpoint.url, &format!("{}observer", c.user_prefix));
        let observer = Endpoint {
            url: observer,
            addr: endpoint.addr,
        };
        let mut client = Client::open(c.target, &observer, None, 1 << 20, timeout).await?;
        let mut http = HttpGet::new(endpoint.addr, timeout);
        let n = opened.ok;
        for (label, asker) in [
            ("op", &mut Asker::Op(&mut client.conn, timeout)),
            ("http", &mut Asker::Http(&mut http, key)),
        ] {
            queries.push(query::first_page(asker, label, &args.channel, args.queries).await?);
            let full = args.queries.div_ceil(4);
            queries.push(
                query::all_pages(asker, label, &args.channel, args.page_limit, full, n).await?,
            );
        }
    }

    // Leave: every member's socket closes at once.
    let (before, gateway_before) = meter.snapshot().await?;
    let (server_cpu, broker_cpu) = samplers(c.server_pid, args.broker_pid);
    let started = Instant::now();
    let _ = release.send(true);
    while tasks.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    let settle_ms = if presence {
        Some(wait_for(&mut probe, key, &args.channel, 0).await?)
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        None
    };
    let whole = started.elapsed().as_secs_f64();
    let (after, gateway_after) = meter.snapshot().await?;
    let leave = Phase {
        count: opened.ok,
        failed: 0,
        secs,
        per_sec: opened.ok as f64 / secs.max(1e-9),
        settle_ms,
        gateway_cpu_us_each: cpu_each(server_cpu, whole, opened.ok),
        broker_cpu_us_each: cpu_each(broker_cpu, whole, opened.ok),
        broker_ops_each: per(&counters::delta(&before, &after), opened.ok),
        gateway_series_each: per(&counters::delta(&gateway_before, &gateway_after), opened.ok),
    };
    let run = PresenceRun {
        channel: args.channel.clone(),
        presence,
        join,
        heartbeat,
        queries,
        leave,
    };
    report::print(&run);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&run)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if opened.failed > 0 {
        bail!(
            "{} of {} members could not join",
            opened.failed,
            args.members
        );
    }
    Ok(())
}

fn samplers(server: Option<u32>, broker: Option<u32>) -> (Option<CpuSampler>, Option<CpuSampler>) {
    let start = |pid: Option<u32>| pid.and_then(|p| CpuSampler::start(Some(p)).ok());
    (start(server), start(broker))
}

/// Polls `GET /v1/presence` until it shows `connections` connections;
/// milliseconds waited. Fails after a minute.
async fn wait_for(http: &mut HttpGet, key: &str, channel: &str, connections: u64) -> Result<f64> {
    let started = Instant::now();
    loop {
        let shown = Asker::Http(http, key).connections(2, channel).await?;
        if shown == Some(connections) {
            return Ok(started.elapsed().as_secs_f64() * 1e3);
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("presence shows {shown:?} connections after 60 s, expected {connections}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
