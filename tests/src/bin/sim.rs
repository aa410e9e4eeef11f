//! Runs the seeded simulator over many seeds: `sim --from 1 --count 1000`,
//! or one seed to replay it: `sim --seed 17`. With `--revocation`, the
//! revocation-under-concurrency scenario instead of the stormy district.

use gongjian_tests::sim::{Config, run, run_revocation};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let (from, count) = match get("--seed") {
        Some(s) => (s, 1),
        None => (get("--from").unwrap_or(1), get("--count").unwrap_or(100)),
    };
    let revocation = args.iter().any(|a| a == "--revocation");
    let mut failed = Vec::new();
    for seed in from..from + count {
        let started = std::time::Instant::now();
        if revocation {
            match std::panic::catch_unwind(|| run_revocation(seed)) {
                Ok(Ok(r)) => println!(
                    "seed {seed}: ok, {} holders accept exactly {:?} of {} writes ({:.1}s)",
                    r.holders,
                    r.kept,
                    r.writes,
                    started.elapsed().as_secs_f64()
                ),
                Ok(Err(e)) => {
                    println!("FAILED {e}");
                    failed.push(seed);
                }
                Err(_) => {
                    println!(
                        "FAILED seed {seed}: panicked (replay: scripts/sim.sh --revocation --seed {seed})"
                    );
                    failed.push(seed);
                }
            }
            continue;
        }
        let outcome =
            std::panic::catch_unwind(|| run(Config::district(seed))).unwrap_or_else(|_| {
                Err(format!(
                    "seed {seed}: panicked (replay: scripts/sim.sh --seed {seed})"
                ))
            });
        match outcome {
            Ok(r) => println!(
                "seed {seed}: ok, {} nodes, {} writes, {} multi-author documents, {} messages, {} bytes, healed in {} rounds ({:.1}s)",
                r.nodes,
                r.writes,
                r.multi_author_docs,
                r.messages,
                r.bytes,
                r.heal_rounds,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                println!("FAILED {e}");
                failed.push(seed);
            }
        }
    }
    println!("{} seeds, {} failed: {failed:?}", count, failed.len());
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
