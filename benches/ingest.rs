//! Catalog ingest: posts upserted per second, in pages of 200 per transaction as a sync
//! writes them. Target (issue 7): ≥ 100,000 posts/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use matterbak::catalog::{Access, Catalog, ChannelCursor, LastOutcome};
use matterbak::model::object::{self, Raw};
use serde_json::value::RawValue;

const PAGE: usize = 200;

fn page(channel: &str, start: usize) -> Vec<Raw<object::Post>> {
    (start..start + PAGE)
        .map(|i| {
            let json = format!(
                r#"{{"id":"post{i:022}","create_at":{at},"update_at":{at},"edit_at":0,"delete_at":0,"is_pinned":false,"user_id":"user{u:022}","channel_id":"{channel}","root_id":"","original_id":"","message":"message number {i} with some text to make it realistic","type":"","props":{{}},"hashtags":"","pending_post_id":"","reply_count":0,"last_reply_at":0,"participants":null,"metadata":{{}}}}"#,
                at = 1_700_000_000_000i64 + i as i64,
                u = i % 50
            );
            Raw::parse(RawValue::from_string(json).unwrap()).unwrap()
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let channel = "channel0000000000000000000";
    let channel_json = format!(
        r#"{{"id":"{channel}","team_id":"t","type":"O","name":"bench","display_name":"Bench"}}"#
    );
    let mut group = c.benchmark_group("catalog");
    group.throughput(Throughput::Elements(PAGE as u64));
    group.bench_function("upsert page of 200 new posts", |b| {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog =
            Catalog::open(&dir.path().join("catalog.sqlite"), Access::ReadWrite).unwrap();
        let raw: Raw<object::Channel> =
            Raw::parse(RawValue::from_string(channel_json.clone()).unwrap()).unwrap();
        catalog.upsert_channel(&raw, true, None).unwrap();
        let mut next = 0;
        b.iter_batched(
            || {
                next += PAGE;
                page(channel, next)
            },
            |posts| {
                black_box(
                    catalog
                        .apply_posts_page(
                            &channel.into(),
                            &posts,
                            &ChannelCursor::default(),
                            LastOutcome::Ok,
                            0,
                        )
                        .unwrap(),
                )
            },
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
