//! Exchange types (AMQP 0-9-1 section 3.1.3 + RabbitMQ): direct, fanout, topic, headers, the
//! default exchange, mandatory returns, exchange-to-exchange bindings.

use conformance::{amqp, broker};
use lapin::options::{
    BasicPublishOptions, ExchangeBindOptions, ExchangeDeclareOptions, QueueBindOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};

async fn bind(ch: &lapin::Channel, queue: &str, exchange: &str, key: &str, args: FieldTable) {
    ch.queue_bind(queue, exchange, key, QueueBindOptions::default(), args)
        .await
        .expect("bind");
}

async fn publish(
    ch: &lapin::Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    ch.basic_publish(exchange, key, BasicPublishOptions::default(), body, props)
        .await
        .expect("publish");
}

#[tokio::test]
async fn default_and_direct_exchanges_route_by_key() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "d1").await;
    bind(&ch, "d1", "amq.direct", "key.one", FieldTable::default()).await;
    let mut cons = amqp::consume(&ch, "d1").await;
    publish(&ch, "", "d1", b"via default", BasicProperties::default()).await;
    publish(
        &ch,
        "amq.direct",
        "key.one",
        b"via direct",
        BasicProperties::default(),
    )
    .await;
    publish(
        &ch,
        "amq.direct",
        "key.other",
        b"nowhere",
        BasicProperties::default(),
    )
    .await;
    assert_eq!(amqp::next(&mut cons).await.data, b"via default");
    let d = amqp::next(&mut cons).await;
    assert_eq!(d.data, b"via direct");
    assert_eq!(d.exchange.as_str(), "amq.direct");
    assert_eq!(d.routing_key.as_str(), "key.one");
    amqp::nothing(&mut cons).await;
}

#[tokio::test]
async fn fanout_reaches_every_bound_queue() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    let mut consumers = Vec::new();
    for q in ["f1", "f2", "f3"] {
        amqp::queue(&ch, q).await;
        bind(&ch, q, "amq.fanout", "", FieldTable::default()).await;
        consumers.push(amqp::consume(&ch, q).await);
    }
    publish(
        &ch,
        "amq.fanout",
        "ignored",
        b"all",
        BasicProperties::default(),
    )
    .await;
    for c in &mut consumers {
        assert_eq!(amqp::next(c).await.data, b"all");
    }
}

#[tokio::test]
async fn topic_wildcards_match_words() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "star").await;
    amqp::queue(&ch, "hash").await;
    bind(
        &ch,
        "star",
        "amq.topic",
        "stock.*.nyse",
        FieldTable::default(),
    )
    .await;
    bind(&ch, "hash", "amq.topic", "stock.#", FieldTable::default()).await;
    let mut star = amqp::consume(&ch, "star").await;
    let mut hash = amqp::consume(&ch, "hash").await;
    publish(
        &ch,
        "amq.topic",
        "stock.ibm.nyse",
        b"1",
        BasicProperties::default(),
    )
    .await;
    publish(&ch, "amq.topic", "stock", b"2", BasicProperties::default()).await;
    publish(
        &ch,
        "amq.topic",
        "stock.ibm.nyse.extra",
        b"3",
        BasicProperties::default(),
    )
    .await;
    assert_eq!(amqp::next(&mut star).await.data, b"1");
    amqp::nothing(&mut star).await;
    for expected in [&b"1"[..], b"2", b"3"] {
        assert_eq!(amqp::next(&mut hash).await.data, expected);
    }
}

#[tokio::test]
async fn headers_exchange_matches_all_or_any() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "all").await;
    amqp::queue(&ch, "any").await;
    let mut all = FieldTable::default();
    all.insert("x-match".into(), AMQPValue::LongString("all".into()));
    all.insert("format".into(), AMQPValue::LongString("pdf".into()));
    all.insert("type".into(), AMQPValue::LongString("report".into()));
    let mut any = all.clone();
    any.insert("x-match".into(), AMQPValue::LongString("any".into()));
    bind(&ch, "all", "amq.headers", "", all).await;
    bind(&ch, "any", "amq.headers", "", any).await;
    let mut c_all = amqp::consume(&ch, "all").await;
    let mut c_any = amqp::consume(&ch, "any").await;
    let mut both = FieldTable::default();
    both.insert("format".into(), AMQPValue::LongString("pdf".into()));
    both.insert("type".into(), AMQPValue::LongString("report".into()));
    let mut one = FieldTable::default();
    one.insert("format".into(), AMQPValue::LongString("pdf".into()));
    publish(
        &ch,
        "amq.headers",
        "",
        b"both",
        BasicProperties::default().with_headers(both),
    )
    .await;
    publish(
        &ch,
        "amq.headers",
        "",
        b"one",
        BasicProperties::default().with_headers(one),
    )
    .await;
    assert_eq!(amqp::next(&mut c_all).await.data, b"both");
    amqp::nothing(&mut c_all).await;
    assert_eq!(amqp::next(&mut c_any).await.data, b"both");
    assert_eq!(amqp::next(&mut c_any).await.data, b"one");
}

#[tokio::test]
async fn exchange_to_exchange_binding_forwards() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    ch.exchange_declare(
        "upstream",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_bind(
        "amq.direct",
        "upstream",
        "",
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    amqp::queue(&ch, "e2e").await;
    bind(&ch, "e2e", "amq.direct", "k", FieldTable::default()).await;
    let mut cons = amqp::consume(&ch, "e2e").await;
    publish(
        &ch,
        "upstream",
        "k",
        b"forwarded",
        BasicProperties::default(),
    )
    .await;
    assert_eq!(amqp::next(&mut cons).await.data, b"forwarded");
}

#[tokio::test]
async fn publish_to_missing_exchange_closes_the_channel_with_404() {
    let b = broker().await;
    let (c, ch) = amqp::channel(&b).await;
    // In confirm mode lapin hands the channel's close reason to the pending confirm, which
    // makes the asynchronous channel error observable without racing the close.
    ch.confirm_select(Default::default()).await.unwrap();
    let confirm = ch
        .basic_publish(
            "no-such-exchange",
            "k",
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let e = tokio::time::timeout(conformance::WAIT, confirm)
        .await
        .expect("answered in time")
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("404") || text.contains("NOT_FOUND"), "{text}");
    // The connection survives a channel error.
    let ch2 = c.create_channel().await.unwrap();
    amqp::queue(&ch2, "after").await;
}

#[tokio::test]
async fn properties_survive_the_round_trip() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    amqp::queue(&ch, "props").await;
    let mut cons = amqp::consume(&ch, "props").await;
    let mut headers = FieldTable::default();
    headers.insert("i".into(), AMQPValue::LongInt(-7));
    headers.insert("s".into(), AMQPValue::LongString("text".into()));
    headers.insert("b".into(), AMQPValue::Boolean(true));
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("gzip".into())
        .with_headers(headers.clone())
        .with_delivery_mode(2)
        .with_priority(3)
        .with_correlation_id("corr-1".into())
        .with_reply_to("replies".into())
        .with_expiration("60000".into())
        .with_message_id("m-1".into())
        .with_timestamp(1_700_000_000)
        .with_type("event".into())
        .with_app_id("tests".into());
    publish(&ch, "", "props", b"{}", props.clone()).await;
    let d = amqp::next(&mut cons).await;
    assert_eq!(d.properties.content_type(), props.content_type());
    assert_eq!(d.properties.content_encoding(), props.content_encoding());
    assert_eq!(d.properties.headers(), props.headers());
    assert_eq!(d.properties.delivery_mode(), &Some(2));
    assert_eq!(d.properties.priority(), &Some(3));
    assert_eq!(d.properties.correlation_id(), props.correlation_id());
    assert_eq!(d.properties.reply_to(), props.reply_to());
    assert_eq!(d.properties.expiration(), props.expiration());
    assert_eq!(d.properties.message_id(), props.message_id());
    assert_eq!(d.properties.timestamp(), props.timestamp());
    assert_eq!(d.properties.kind(), props.kind());
    assert_eq!(d.properties.app_id(), props.app_id());
}

#[tokio::test]
async fn empty_routing_key_is_zero_words_as_in_rabbitmq() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    for (q, key) in [("empty", ""), ("star", "*"), ("hash", "#")] {
        amqp::queue(&ch, q).await;
        bind(&ch, q, "amq.topic", key, FieldTable::default()).await;
    }
    let mut empty = amqp::consume(&ch, "empty").await;
    let mut star = amqp::consume(&ch, "star").await;
    let mut hash = amqp::consume(&ch, "hash").await;
    publish(
        &ch,
        "amq.topic",
        "",
        b"no words",
        BasicProperties::default(),
    )
    .await;
    publish(
        &ch,
        "amq.topic",
        "one",
        b"one word",
        BasicProperties::default(),
    )
    .await;
    assert_eq!(amqp::next(&mut empty).await.data, b"no words");
    assert_eq!(amqp::next(&mut hash).await.data, b"no words");
    assert_eq!(amqp::next(&mut hash).await.data, b"one word");
    // `*` needs exactly one word: it sees only the second message.
    assert_eq!(amqp::next(&mut star).await.data, b"one word");
    amqp::nothing(&mut empty).await;
}
