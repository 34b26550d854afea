//! Cost of access control: one argon2id password check (paid once per login, off the async
//! runtime), and the per-operation checks on the publish / subscribe paths: a RabbitMQ
//! permission pattern (the `.*` fast path and a real regex) and an MQTT ACL decision.
//!
//! Run: `cargo bench --bench auth`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ferromq::auth::acl::AclFile;
use ferromq::auth::password;
use ferromq::auth::permissions::{Access, Permission, Resource};

fn bench(c: &mut Criterion) {
    let hash = password::hash(b"correct horse").expect("hash");
    let mut slow = c.benchmark_group("login");
    slow.sample_size(10);
    slow.bench_function("argon2id_verify", |b| {
        b.iter(|| password::verify(black_box(b"correct horse"), &hash))
    });
    slow.finish();

    let full = Permission::full();
    let regex = Permission::new("^own-", "^(own-|amq\\.topic)$", "^own-").expect("patterns");
    c.bench_function("permission_any", |b| {
        b.iter(|| full.allows(Access::Write, Resource::Exchange, black_box("amq.topic")))
    });
    c.bench_function("permission_regex", |b| {
        b.iter(|| regex.allows(Access::Write, Resource::Exchange, black_box("amq.topic")))
    });

    let acl = AclFile::parse(
        "user alice\ntopic readwrite alice/#\ntopic deny alice/secret/#\n\
         pattern write devices/%c/up\npattern read users/%u/inbox\n",
    )
    .expect("acl");
    let client = acl.for_client(Some("alice"), "dev1");
    c.bench_function("acl_publish", |b| {
        b.iter(|| client.may_publish(black_box("alice/sensors/t1")))
    });
    c.bench_function("acl_subscribe", |b| {
        b.iter(|| client.may_subscribe(black_box("alice/sensors/+")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
