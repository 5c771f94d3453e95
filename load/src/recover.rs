//! `recover`: a reconnect storm against channels with history. `--clients`
//! clients subscribe on instance A (`--url`) and remember the position the
//! ack gives, all leave at once (as after a drain of A), `--missed` messages
//! are published on B (`--reconnect-url`), then every client reconnects to B
//! with `since` at once. Reported: the time from the first reconnect until
//! every client got `recovered:true` and exactly the missed offsets in order,
//! clients that did not (loss), and the broker's CPU during the storm.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cli::{RecoverArgs, Target};
use crate::client::Client;
use crate::net::Endpoint;
use crate::procfs::CpuSampler;
use crate::wsframe::OP_TEXT;
use crate::{ferry, wsconn::WsConn};

#[derive(Debug, Serialize)]
struct RecoverResult {
    clients: usize,
    missed: u64,
    recovered: usize,
    failed: usize,
    storm_secs: f64,
    broker_cpu_percent: Option<f64>,
    gateway_cpu_percent: Option<f64>,
    first_error: Option<String>,
}

pub async fn run(args: RecoverArgs) -> Result<()> {
    let c = &args.common;
    ferry::check_channel(&args.channel)?;
    let timeout = Duration::from_secs(c.connect_timeout_secs);
    let a = Endpoint::resolve(&c.url()).await?;
    let b = Endpoint::resolve(&args.reconnect_url).await?;
    let gate = Arc::new(Semaphore::new(c.connect_concurrency.max(1)));
    let mut first = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let channel = channel_of(&args.channel, i, args.channels);
        let _permit = gate.acquire().await?;
        let mut client = Client::open(Target::Ferrygate, &a, None, 4096, timeout).await?;
        let result = request(
            &mut client.conn,
            json!({"op":"subscribe","id":1,"channel":channel}),
            timeout,
        )
        .await?;
        let epoch = result["epoch"].as_str().context("no epoch: history on?")?;
        let offset = result["offset"].as_u64().context("no offset")?;
        first.push((epoch.to_owned(), offset));
    }
    eprintln!("{} clients subscribed on A; leaving", args.clients);
    let mut publisher = Client::open(Target::Ferrygate, &b, None, 4096, timeout).await?;
    for n in 0..args.missed {
        for k in 0..args.channels.max(1) {
            let channel = format!("{}.{k}", args.channel);
            request(
                &mut publisher.conn,
                json!({"op":"publish","id":2,"channel":channel,"data":{"n":n}}),
                timeout,
            )
            .await?;
        }
    }
    eprintln!(
        "{} messages published per channel on B; reconnecting",
        args.missed
    );
    let broker = args
        .broker_pid
        .map(|p| CpuSampler::start(Some(p)))
        .transpose()?;
    let gateway = c
        .server_pid
        .map(|p| CpuSampler::start(Some(p)))
        .transpose()?;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(args.clients);
    for (i, (epoch, offset)) in first.into_iter().enumerate() {
        let (b, gate) = (b.clone(), Arc::clone(&gate));
        let channel = channel_of(&args.channel, i, args.channels);
        let missed = args.missed;
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await?;
            let mut client = Client::open(Target::Ferrygate, &b, None, 4096, timeout).await?;
            drop(permit);
            let since = json!({"epoch":epoch,"offset":offset});
            let request_frame = json!({"op":"subscribe","id":1,"channel":channel,"since":since});
            let result = request(&mut client.conn, request_frame, timeout).await?;
            if result["recovered"] != true {
                bail!("not recovered: {result}");
            }
            let deadline = Instant::now() + timeout;
            for expected in offset + 1..=offset + missed {
                let data = client.conn.next_data(deadline).await?;
                let push: Value = serde_json::from_slice(data)?;
                if push["offset"].as_u64() != Some(expected) {
                    bail!("expected offset {expected}, got {push}");
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    let (mut recovered, mut failed, mut first_error) = (0, 0, None);
    for task in tasks {
        match task.await {
            Ok(Ok(())) => recovered += 1,
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let result = RecoverResult {
        clients: args.clients,
        missed: args.missed,
        recovered,
        failed,
        storm_secs: start.elapsed().as_secs_f64(),
        broker_cpu_percent: broker.and_then(|s| s.percent().ok()),
        gateway_cpu_percent: gateway.and_then(|s| s.percent().ok()),
        first_error,
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if failed > 0 {
        bail!(
            "{failed} of {} clients did not recover exactly",
            args.clients
        );
    }
    Ok(())
}

fn channel_of(prefix: &str, client: usize, channels: usize) -> String {
    format!("{prefix}.{}", client % channels.max(1))
}

/// Sends `request` and returns the `result` of its `ok` reply (pushes that
/// race it are skipped); an error reply fails.
async fn request(conn: &mut WsConn, request: Value, timeout: Duration) -> Result<Value> {
    let id = request["id"].clone();
    conn.send(OP_TEXT, request.to_string().as_bytes()).await?;
    let deadline = Instant::now() + timeout;
    loop {
        let data = conn.next_data(deadline).await?;
        let reply: Value = serde_json::from_slice(data).context("a non-JSON frame")?;
        if reply["id"] != id {
            continue;
        }
        if reply["ok"] != true {
            bail!("refused: {reply}");
        }
        return Ok(reply.get("result").cloned().unwrap_or(Value::Null));
    }
}
