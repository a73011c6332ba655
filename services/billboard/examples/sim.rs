//! Runs the simulated world once per policy and prints the take rates over the last
//! 40 % of decisions against uniform and the oracle.
//!
//! `cargo run --release -p nearline-billboard --example sim [decisions]`

use std::time::Instant;

use nearline_billboard::policy::{Discount, Params, PolicyKind, Split};
use nearline_billboard::sim::{RunConfig, World, WorldConfig, run};

fn main() {
    let decisions = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let seeds = std::env::var("NL_SEEDS").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
    let worlds: Vec<World> =
        (0..seeds).map(|s| World::new(WorldConfig { seed: 42 + s, ..WorldConfig::default() })).collect();
    // Tuning knobs, for exploring the defaults: NL_ALPHA, NL_RIDGE, NL_HALF_LIFE_H, ...
    let knob = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
    let mut params = Params::default();
    if let Some(v) = knob("NL_ALPHA") {
        params.linucb_alpha = v;
    }
    if let Some(v) = knob("NL_RIDGE") {
        params.ridge = v;
    }
    if let Some(v) = knob("NL_HALF_LIFE_H") {
        params.discount = Discount::new((v * 3_600_000.0) as i64);
    }
    if let Some(v) = knob("NL_FLOOR") {
        params.min_propensity = v;
    }
    if let Some(v) = knob("NL_NEW_FLOOR") {
        params.new_title_floor = v;
    }
    if let Some(v) = knob("NL_PRIOR") {
        params.prior_strength = v;
    }
    if let Some(v) = knob("NL_UCB_C") {
        params.ucb_c = v;
    }
    if let Some(v) = knob("NL_EPSILON") {
        params.epsilon = v;
    }
    if let Some(v) = knob("NL_DRAWS") {
        params.thompson_draws = v as usize;
    }
    let policies: Vec<PolicyKind> = match std::env::var("NL_POLICIES") {
        Ok(list) => list.split(',').filter_map(PolicyKind::parse).collect(),
        Err(_) => PolicyKind::ALL.to_vec(),
    };
    for policy in policies {
        let mut config = RunConfig::new(Split::new(&[(policy, 1.0)]), params);
        config.decisions = decisions;
        config.gap_ms = 86_400_000 / decisions as i64;
        let start = Instant::now();
        let (mut served, mut oracle, mut uniform, mut ratios) = (0.0, 0.0, 0.0, Vec::new());
        for world in &worlds {
            let report = run(world, &config);
            served += report.total.served / seeds as f64;
            oracle += report.total.oracle / seeds as f64;
            uniform += report.uniform / seeds as f64;
            ratios.push(report.total.ratio());
        }
        let worst = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{:<15} served {served:.4}  oracle {oracle:.4}  uniform {uniform:.4}  served/oracle {:.3} (worst world {worst:.3})  ({:.1?})",
            policy.as_str(),
            served / oracle,
            start.elapsed()
        );
    }
}
