//! Runs the simulated world with the default configuration's policy mix (what is
//! served), then once per policy serving all traffic, and prints the take rates over
//! the last 40 % of decisions against uniform and the oracle.
//!
//! `cargo run --release -p nearline-billboard --example sim [decisions]`
//! (`NL_MIX=linucb=0.9,thompson=0.08,uniform=0.02` tries another mix.)

use std::time::Instant;

use nearline_billboard::policy::{Discount, PolicyKind, Split};
use nearline_billboard::service::Settings;
use nearline_billboard::sim::{RunConfig, World, WorldConfig, run};

fn main() {
    let decisions = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let seeds = std::env::var("NL_SEEDS").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
    let worlds: Vec<World> =
        (0..seeds).map(|s| World::new(WorldConfig { seed: 42 + s, ..WorldConfig::default() })).collect();
    // Tuning knobs, for exploring the defaults: NL_ALPHA, NL_RIDGE, NL_HALF_LIFE_H, ...
    let knob = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
    // The served defaults: the configuration's, as the service reads them.
    let defaults = Settings::from_config(&nearline_runtime::Config::default());
    let mut params = defaults.params;
    if let Some(v) = knob("NL_ALPHA") {
        params.linucb_alpha = v;
    }
    if let Some(v) = knob("NL_RIDGE") {
        params.ridge = v;
    }
    if let Some(v) = knob("NL_ARTWORK_RIDGE") {
        params.artwork_ridge = v;
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
    let mix = match std::env::var("NL_MIX") {
        Ok(list) => Split::new(
            &list
                .split(',')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((PolicyKind::parse(k)?, v.parse().ok()?))
                })
                .collect::<Vec<_>>(),
        ),
        Err(_) => defaults.split.clone(),
    };
    let mut runs: Vec<(String, Split)> = vec![(
        format!(
            "mix {}",
            mix.shares().iter().map(|(p, s)| format!("{p}={s:.2}")).collect::<Vec<_>>().join(",")
        ),
        mix,
    )];
    let policies: Vec<PolicyKind> = match std::env::var("NL_POLICIES") {
        Ok(list) => list.split(',').filter_map(PolicyKind::parse).collect(),
        Err(_) => PolicyKind::ALL.to_vec(),
    };
    runs.extend(policies.into_iter().map(|p| (p.as_str().to_string(), Split::new(&[(p, 1.0)]))));
    for (name, split) in runs {
        let mut config = RunConfig::new(split, params);
        config.decisions = decisions;
        config.gap_ms = 86_400_000 / decisions as i64;
        let start = Instant::now();
        let (mut served, mut oracle, mut uniform, mut ratios) = (0.0, 0.0, 0.0, Vec::new());
        let mut deciding = std::time::Duration::ZERO;
        for world in &worlds {
            let report = run(world, &config);
            served += report.total.served / seeds as f64;
            oracle += report.total.oracle / seeds as f64;
            uniform += report.uniform / seeds as f64;
            ratios.push(report.total.ratio());
            deciding += report.deciding;
        }
        let worst = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let rate = (decisions as f64 * seeds as f64) / deciding.as_secs_f64();
        println!(
            "{name:<15} served {served:.4}  oracle {oracle:.4}  uniform {uniform:.4}  served/oracle {:.3} (worst world {worst:.3})  decisions/s {rate:.0}  ({:.1?})",
            served / oracle,
            start.elapsed()
        );
        if seeds > 1 {
            let each: Vec<String> =
                ratios.iter().zip(42..).map(|(r, seed)| format!("world {seed}: {r:.3}")).collect();
            println!("{:<15} {}", "", each.join(", "));
        }
    }
}
