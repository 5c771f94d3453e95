//! Unit tests of the hub: ack order, hold/release, bounds, mass leave.

use super::*;

fn subscriber(conn: &str) -> Subscriber {
    Subscriber {
        conn: ConnId::from(conn),
        outbox: Arc::new(Outbox::new(1 << 20)),
    }
}

async fn texts(outbox: &Outbox) -> Vec<String> {
    let mut batch = Vec::new();
    outbox.next(&mut batch, usize::MAX).await;
    batch.iter().map(|f| f.as_str().to_owned()).collect()
}

#[tokio::test]
async fn ack_precedes_pushes_and_interest_is_reported() {
    let hub = Hub::new(Arc::new(Metrics::new()));
    let channel = ChannelName::new("c").expect("valid");
    let (a, b) = (subscriber("a"), subscriber("b"));
    assert_eq!(
        hub.subscribe(&channel, a.clone(), Some(Frame::from("ack".to_owned()))),
        Subscribed::First
    );
    assert_eq!(
        hub.subscribe(&channel, b.clone(), Some(Frame::from("ack".to_owned()))),
        Subscribed::Joined
    );
    assert_eq!(hub.deliver(&channel, "1"), 2);
    assert_eq!(
        texts(&a.outbox).await,
        ["ack", r#"{"channel":"c","data":1}"#]
    );
    assert_eq!(hub.unsubscribe(&channel, &a.conn), Unsubscribed::Left);
    assert_eq!(
        hub.unsubscribe(&channel, &a.conn),
        Unsubscribed::NotSubscribed
    );
    assert_eq!(hub.unsubscribe(&channel, &b.conn), Unsubscribed::Last);
    assert_eq!(hub.deliver(&channel, "2"), 0);
    assert_eq!(hub.channel_count(), 0);
}

fn at(offset: u64) -> (Position, Frame) {
    let channel = ChannelName::new("c").expect("valid");
    let position = Position {
        epoch: "e".into(),
        offset,
    };
    (position, Frame::push_at(&channel, "0", offset, "e"))
}

fn offsets(texts: &[String]) -> Vec<String> {
    texts
        .iter()
        .map(|t| {
            t.split("\"offset\":")
                .nth(1)
                .map_or(t.clone(), |o| o[..1].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_held_member_gets_ack_replay_then_what_the_replay_did_not_cover() {
    let hub = Hub::new(Arc::new(Metrics::new()));
    let channel = ChannelName::new("c").expect("valid");
    let a = subscriber("a");
    hub.hold(&channel, a.clone());
    for offset in 3..=6 {
        let (position, frame) = at(offset);
        assert_eq!(hub.deliver_at(&channel, &position, &frame), 1);
    }
    let replay = (1..=4).map(|o| at(o).1).collect();
    hub.release(
        &channel,
        &a.conn,
        Frame::from("ack".to_owned()),
        replay,
        Some(at(4).0),
    );
    // A late copy of 4 is dropped, 7 goes through.
    for offset in [4, 7] {
        let (position, frame) = at(offset);
        hub.deliver_at(&channel, &position, &frame);
    }
    let got = offsets(&texts(&a.outbox).await);
    assert_eq!(got, ["ack", "1", "2", "3", "4", "5", "6", "7"]);
}

#[tokio::test]
async fn a_held_member_is_bounded_like_its_outbox() {
    let metrics = Arc::new(Metrics::new());
    let hub = Hub::new(Arc::clone(&metrics));
    let channel = ChannelName::new("c").expect("valid");
    let small = Subscriber {
        conn: ConnId::from("s"),
        outbox: Arc::new(Outbox::new(100)),
    };
    hub.hold(&channel, small.clone());
    for offset in 1..=5 {
        let (position, frame) = at(offset);
        hub.deliver_at(&channel, &position, &frame);
    }
    assert_eq!(
        small.outbox.close_reason(),
        Some(crate::close::CloseReason::SlowConsumer)
    );
    assert_eq!(metrics.slow_consumers.get(), 1);
}

/// 20,000 members of one channel leaving at once (a drain, a network blip),
/// from two threads as two workers' sessions would: with a scan per leave
/// this is 200 million comparisons under the shard lock; with the index it
/// is 20,000 lookups. The bound is loose (debug build, shared machine).
#[test]
fn twenty_thousand_members_leave_one_channel_in_bounded_time() {
    const MEMBERS: usize = 20_000;
    let hub = Arc::new(Hub::new(Arc::new(Metrics::new())));
    let channel = ChannelName::new("crowd").expect("valid");
    let conns: Vec<ConnId> = (0..MEMBERS)
        .map(|n| ConnId::from(format!("node.{n:x}")))
        .collect();
    for conn in &conns {
        let subscriber = Subscriber {
            conn: conn.clone(),
            outbox: Arc::new(Outbox::new(1024)),
        };
        hub.subscribe(&channel, subscriber, None);
    }
    assert_eq!(hub.deliver(&channel, "1"), MEMBERS);
    let started = std::time::Instant::now();
    let (first, second) = conns.split_at(MEMBERS / 2);
    let leave = |half: &[ConnId]| {
        half.iter()
            .filter(|conn| hub.unsubscribe(&channel, conn) == Unsubscribed::Last)
            .count()
    };
    let last = std::thread::scope(|scope| {
        let a = scope.spawn(|| leave(first));
        let b = scope.spawn(|| leave(second));
        a.join().expect("thread") + b.join().expect("thread")
    });
    let took = started.elapsed();
    assert_eq!(last, 1, "exactly one leave is the last");
    assert_eq!(hub.channel_count(), 0);
    assert!(
        took < std::time::Duration::from_secs(2),
        "{MEMBERS} leaves took {took:?}"
    );
}
