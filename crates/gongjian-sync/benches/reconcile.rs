//! Criterion benchmarks of the reconciliation core (in process, no
//! network): a whole reconciliation of 3,000 documents between two
//! snapshots, with nothing changed and with 1% changed on one side, and
//! building a snapshot. `cargo bench -p gongjian-sync --bench reconcile`
//! (also run by `scripts/bench.sh`). The bytes of the same runs are checked
//! by the crate's tests; BENCHMARKS.md has the figures.

use criterion::{Criterion, criterion_group, criterion_main};
use gongjian_identity::Hash;
use gongjian_sync::{Item, Range, Snapshot};

const SALT: [u8; 8] = [5; 8];

fn items(n: u32) -> Vec<Item> {
    (0..n)
        .map(|k| Item {
            key: *Hash::of(&k.to_be_bytes()).as_bytes(),
            value: [1; 16],
        })
        .collect()
}

/// Runs a reconciliation to the end; the number of differences found.
fn reconcile(a: &Snapshot, b: &Snapshot) -> usize {
    let mut msg: Vec<Range> = a.initial(&SALT);
    let sides = [a, b];
    let (mut turn, mut wanted) = (1, 0);
    while !msg.is_empty() {
        let r = sides[turn].respond(&msg, &SALT).expect("honest steps");
        wanted += r.wanted.len();
        msg = r.reply;
        turn ^= 1;
    }
    wanted
}

fn bench(c: &mut Criterion) {
    let xs = items(3000);
    let mut ys = xs.clone();
    for k in 0..30 {
        ys[k * 100].value = [2; 16];
    }
    let (a, same, changed) = (
        Snapshot::new(xs.clone()),
        Snapshot::new(xs.clone()),
        Snapshot::new(ys),
    );
    assert_eq!(
        reconcile(&a, &changed),
        60,
        "each side learns the 30 differences"
    );
    c.bench_function("reconcile 3,000 documents, none changed", |bch| {
        bch.iter(|| reconcile(&a, &same))
    });
    c.bench_function("reconcile 3,000 documents, 1% changed", |bch| {
        bch.iter(|| reconcile(&a, &changed))
    });
    c.bench_function("snapshot of 3,000 documents", |bch| {
        bch.iter(|| Snapshot::new(xs.clone()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
