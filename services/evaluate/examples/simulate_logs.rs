//! Writes simulated billboard outcomes as `.ndjson.gz` files that `nearline evaluate
//! --input DIR` reads, and optionally the same logged data as arrays for Open Bandit
//! Pipeline (`bench/obp.sh`): per decision the logged action, its propensity, the reward,
//! the target's distribution and the out-of-fold reward model over a fixed action space.
//!
//! ```text
//! cargo run --release -p nearline-evaluate --example simulate_logs -- \
//!     --decisions 1000000 --out DIR [--target 'linucb(alpha=0.5)' --obp DIR] [--seed 1]
//! ```
//!
//! The world is billboard's default simulated world (60 context cells, 36–39 (title,
//! artwork) pairs per request, a launch and a drift), one decision every 1.7 s of event
//! time, rewards 17 minutes late, logged by a mix of 85 % `linucb`, 10 % `epsilon_greedy`
//! and 5 % `uniform` with billboard's default parameters.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;

use nearline_billboard::policy::{Arm, Params, PolicyKind, Split};
use nearline_billboard::sim::{RunConfig, World, WorldConfig};
use nearline_evaluate::direct::DirectModel;
use nearline_evaluate::{Bootstrap, Estimator, LogsBuilder, Options, Range, Training, evaluate_with, spec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(key) = it.next() {
        let value = it.next().ok_or_else(|| format!("{key} needs a value"))?;
        args.insert(key.trim_start_matches("--").to_string(), value);
    }
    let decisions: usize = args.get("decisions").map_or(Ok(50_000), |s| s.parse())?;
    let seed: u64 = args.get("seed").map_or(Ok(1), |s| s.parse())?;
    let out = PathBuf::from(args.get("out").ok_or("--out DIR is required")?);
    std::fs::create_dir_all(&out)?;

    let world = World::new(WorldConfig::default());
    let split = Split::new(&[
        (PolicyKind::Linear, 0.85),
        (PolicyKind::EpsilonGreedy, 0.10),
        (PolicyKind::Uniform, 0.05),
    ]);
    let mut config = RunConfig::new(split, Params::default());
    config.decisions = decisions;
    config.seed = seed;
    let started = std::time::Instant::now();
    let outcomes = nearline_evaluate::sim::simulate(&world, &config);
    eprintln!("simulated {} decisions in {:.1} s", outcomes.len(), started.elapsed().as_secs_f64());

    let per_file = 100_000;
    for (k, chunk) in outcomes.chunks(per_file).enumerate() {
        let file = File::create(out.join(format!("outcomes-{k:04}.ndjson.gz")))?;
        let mut gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        for o in chunk {
            serde_json::to_writer(&mut gz, o)?;
            gz.write_all(b"\n")?;
        }
        gz.finish()?.flush()?;
    }
    let (first, last) = (
        outcomes.first().map_or(0, |o| o.impression_time_ms),
        outcomes.last().map_or(0, |o| o.impression_time_ms),
    );
    eprintln!("wrote {} into {} (impression times {first}..={last})", outcomes.len(), out.display());

    let Some(obp) = args.get("obp").map(PathBuf::from) else { return Ok(()) };
    std::fs::create_dir_all(&obp)?;
    let target_spec = args.get("target").map_or("linucb(alpha=0.5)", String::as_str);
    let mut builder = LogsBuilder::default();
    for o in outcomes {
        builder.push(o.logged());
    }
    let logs = builder.finish();
    let target = spec::parse(target_spec, Params::default())?;
    // The fixed action space OBP needs: every pair that was ever a candidate.
    let mut actions: HashMap<Arm, usize> = HashMap::new();
    for set in &logs.sets {
        for arm in set.iter() {
            let next = actions.len();
            actions.entry(arm.clone()).or_insert(next);
        }
    }
    let n_actions = actions.len();
    let direct = DirectModel::fit(&logs, Params::default());
    let mut action = BufWriter::new(File::create(obp.join("action.i64"))?);
    let mut pscore = BufWriter::new(File::create(obp.join("pscore.f64"))?);
    let mut reward = BufWriter::new(File::create(obp.join("reward.f64"))?);
    let mut dist = BufWriter::new(File::create(obp.join("action_dist.f64"))?);
    let mut q_hat = BufWriter::new(File::create(obp.join("estimated_rewards.f64"))?);
    let mut rows = 0usize;
    let mut truth = 0.0;
    let options = Options {
        estimators: vec![Estimator::Ips],
        bootstrap: Bootstrap { resamples: 0, seed: 0 },
        clip: None,
        by: Vec::new(),
        training: Training::default(),
        range: Range { from_ms: i64::MIN, to_ms: i64::MAX },
        direct_params: Params::default(),
        stickiness_ms: 24 * 3_600_000,
    };
    // The target's distribution over each decision's candidates (`None`: `logging`).
    let (_, walked) = evaluate_with(&logs, &target, &options, |i, probs| {
        let expected = nearline_evaluate::sim::expected_reward(&world, &logs, &logs.decisions[i], probs);
        (expected, probs.map(<[f64]>::to_vec))
    })?;
    let mut pi_row = vec![0.0f64; n_actions];
    let mut q_row = vec![0.0f64; n_actions];
    for (i, (expected, probs)) in walked {
        let d = &logs.decisions[i];
        truth += expected;
        let q = direct.predict(&logs, i);
        pi_row.fill(0.0);
        q_row.fill(0.0);
        for (k, arm) in logs.candidates(d).iter().enumerate() {
            let a = actions[arm];
            pi_row[a] = probs.as_ref().map_or(f64::from(u8::from(k == d.action)), |p| p[k]);
            q_row[a] = q[k];
        }
        action.write_all(&(actions[&d.arm] as i64).to_le_bytes())?;
        pscore.write_all(&d.propensity.to_le_bytes())?;
        reward.write_all(&d.reward.to_le_bytes())?;
        for x in &pi_row {
            dist.write_all(&x.to_le_bytes())?;
        }
        for x in &q_row {
            q_hat.write_all(&x.to_le_bytes())?;
        }
        rows += 1;
    }
    for w in [&mut action as &mut dyn std::io::Write, &mut pscore, &mut reward, &mut dist, &mut q_hat] {
        w.flush()?;
    }
    let meta = serde_json::json!({
        "rounds": rows,
        "actions": n_actions,
        "target": target_spec,
        "from_ms": first,
        "to_ms": last + 1,
        "true_value": truth / rows.max(1) as f64,
    });
    std::fs::write(obp.join("meta.json"), serde_json::to_string_pretty(&meta)?)?;
    eprintln!("wrote OBP arrays for {rows} decisions × {n_actions} actions into {}", obp.display());
    eprintln!("true value of {target_spec} on these requests: {:.6}", truth / rows.max(1) as f64);
    Ok(())
}
