//! The raw floor: what the same JetStream server does with nothing around it — publish with
//! ack (256 in flight), then consume + ack, of 512-byte messages on a file stream.

use std::time::Instant;

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, stream};
use futures::StreamExt;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub messages: usize,
    pub publish_per_s: f64,
    pub consume_per_s: f64,
}

pub async fn measure(url: &str, count: usize) -> anyhow::Result<Floor> {
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client);
    let name = format!("BENCH_FLOOR_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let subject = format!("bench.{}", name.to_lowercase());
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let payload = bytes::Bytes::from(vec![b'x'; 512]);
    let started = Instant::now();
    let mut acks = futures::stream::FuturesUnordered::new();
    for index in 0..count {
        let ack = js
            .send_publish(
                subject.clone(),
                PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(index.to_string()),
            )
            .await?;
        acks.push(ack.into_future());
        if acks.len() >= 256 {
            acks.next().await.transpose()?;
        }
    }
    while acks.next().await.transpose()?.is_some() {}
    let publish_per_s = count as f64 / started.elapsed().as_secs_f64();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("floor".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(500)
        .messages()
        .await?;
    for _ in 0..count {
        let message = messages
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("floor stream ended"))?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let consume_per_s = count as f64 / started.elapsed().as_secs_f64();
    js.delete_stream(&name).await?;
    Ok(Floor {
        messages: count,
        publish_per_s,
        consume_per_s,
    })
}
