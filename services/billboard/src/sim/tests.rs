//! The simulator's claims: contextual policies beat uniform clearly and approach the
//! best pair per request, and the default configuration serves at least 90 % of the
//! oracle's take rate, on the setting (50 000 decisions, rewards 17 minutes
//! late, measured over the last 40 %, with a launch and a drift in the measured part).

use super::*;

fn single(policy: PolicyKind) -> Split {
    Split::new(&[(policy, 1.0)])
}

fn report(policy: PolicyKind, params: Params) -> Report {
    let world = World::new(WorldConfig::default());
    let report = run(&world, &RunConfig::new(single(policy), params));
    let r = report.total;
    eprintln!(
        "{policy}: served {:.4}, oracle {:.4}, uniform {:.4}, served/oracle {:.3}",
        r.served,
        r.oracle,
        report.uniform,
        r.ratio()
    );
    report
}

/// The policy mix and parameters the service runs with when nothing is configured.
fn served_defaults() -> (Split, Params) {
    let settings = crate::service::Settings::from_config(&nearline_runtime::Config::default());
    (settings.split, settings.params)
}

/// The goal for the default configuration: with its whole mix serving (the
/// uniform slice included), the served take rate over the last 40 % is at least 90 % of
/// the oracle's on the default world and on average over four seeded worlds.
#[test]
fn the_default_configuration_serves_ninety_percent_of_the_oracle() {
    let (split, params) = served_defaults();
    let config = RunConfig::new(split, params);
    let ratios: Vec<(u64, f64)> = (42..46)
        .map(|seed| {
            let report = run(&World::new(WorldConfig { seed, ..WorldConfig::default() }), &config);
            eprintln!("world {seed}: served/oracle {:.3}, {:?}", report.total.ratio(), report.by_policy);
            (seed, report.total.ratio())
        })
        .collect();
    let default_world = WorldConfig::default().seed;
    let (_, on_default) = ratios.iter().find(|(seed, _)| *seed == default_world).expect("the default world");
    assert!(*on_default >= 0.90, "the default world: {ratios:?}");
    let mean = ratios.iter().map(|(_, r)| r).sum::<f64>() / ratios.len() as f64;
    assert!(mean >= 0.90, "mean {mean:.3} over {ratios:?}");
}

#[test]
fn linear_policy_beats_uniform_and_approaches_the_oracle() {
    let report = report(PolicyKind::Linear, Params::default());
    assert!(report.total.served > 3.0 * report.uniform, "{report:?}");
    // Measured 0.919 on this world with the per-title model (0.905 per arm before).
    assert!(report.total.ratio() >= 0.85, "{report:?}");
}

#[test]
fn thompson_beats_uniform_clearly() {
    // Win probabilities by quadrature, the default.
    let report = report(PolicyKind::Thompson, Params::default());
    assert!(report.total.served > 2.5 * report.uniform, "{report:?}");
    assert!(report.total.ratio() >= 0.7, "{report:?}");
}

#[test]
fn runs_are_reproducible() {
    let world = World::new(WorldConfig::default());
    let mut config = RunConfig::new(single(PolicyKind::Linear), Params::default());
    config.decisions = 3_000;
    let (a, b) = (run(&world, &config), run(&world, &config));
    assert_eq!(a.total, b.total);
}
