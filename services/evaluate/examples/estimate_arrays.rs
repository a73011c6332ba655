//! nearline's estimators on exactly the arrays Open Bandit Pipeline gets in
//! `bench/obp.sh` (written by `simulate_logs --obp DIR`): IPS, SNIPS and DR with their
//! bootstrap intervals, timed without the file reading, so the two sides do the same
//! work on the same numbers.
//!
//! `cargo run --release -p nearline-evaluate --example estimate_arrays -- DIR [BOOTSTRAP]`

use std::time::Instant;

use nearline_evaluate::estimate::{self, Bootstrap, Estimator, ReplayData, Term, TermInput};

fn read<T: Copy>(path: &std::path::Path, parse: fn([u8; 8]) -> T) -> std::io::Result<Vec<T>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.chunks_exact(8).map(|c| parse(c.try_into().expect("8 bytes"))).collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: estimate_arrays DIR [BOOTSTRAP]")?);
    let resamples: usize = args.next().map_or(Ok(1000), |s| s.parse())?;
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json"))?)?;
    let k = meta["actions"].as_u64().ok_or("meta.json: actions")? as usize;
    let action = read(&dir.join("action.i64"), i64::from_le_bytes)?;
    let pscore = read(&dir.join("pscore.f64"), f64::from_le_bytes)?;
    let reward = read(&dir.join("reward.f64"), f64::from_le_bytes)?;
    let pi = read(&dir.join("action_dist.f64"), f64::from_le_bytes)?;
    let q = read(&dir.join("estimated_rewards.f64"), f64::from_le_bytes)?;

    let started = Instant::now();
    let mut terms = Vec::with_capacity(action.len());
    let mut weights = Vec::with_capacity(action.len());
    for i in 0..action.len() {
        let (pi, q) = (&pi[i * k..(i + 1) * k], &q[i * k..(i + 1) * k]);
        let a = action[i] as usize;
        let weight = pi[a] / pscore[i];
        let direct = pi.iter().zip(q).map(|(p, q)| p * q).sum();
        terms.push(Term::new(
            TermInput {
                weight,
                reward: reward[i],
                direct,
                direct_logged: q[a],
                uniform_slice: false,
                accept_uniform: false,
                accept_all: false,
            },
            None,
        ));
        weights.push(weight);
    }
    let all: Vec<u32> = (0..terms.len() as u32).collect();
    let summary = estimate::summarise(
        &terms,
        &weights,
        &all,
        &[Estimator::Ips, Estimator::Snips, Estimator::Dr],
        ReplayData::UniformSlice,
        Bootstrap { resamples, seed: 0 },
        0,
    );
    let took = started.elapsed().as_secs_f64();
    for e in &summary.estimates {
        let (lo, hi) = e.interval.unwrap_or((f64::NAN, f64::NAN));
        println!("{:<6} {:.6} [{lo:.6}, {hi:.6}]", e.estimator.as_str(), e.value.clone().unwrap_or(f64::NAN));
    }
    println!("NEARLINE_ARRAYS_SECONDS {took:.3}");
    eprintln!(
        "nearline: {} decisions x {k} actions, IPS/SNIPS/DR + {resamples}-resample intervals in {took:.2} s",
        terms.len()
    );
    Ok(())
}
