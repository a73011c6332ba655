//! The simulator's claims: contextual policies beat uniform clearly and approach the
//! best pair per request, on the setting (50 000 decisions, rewards 17 minutes
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

#[test]
fn linear_policy_beats_uniform_and_approaches_the_oracle() {
    let report = report(PolicyKind::Linear, Params::default());
    assert!(report.total.served > 3.0 * report.uniform, "{report:?}");
    // Measured 0.919 on this world with the per-title model (0.905 per arm before).
    assert!(report.total.ratio() >= 0.85, "{report:?}");
}

#[test]
fn thompson_beats_uniform_clearly() {
    // Fewer Monte Carlo draws keep the test quick; the propensities stay exact for the
    // distribution drawn from, only the estimate of Thompson's own law is coarser.
    let report = report(PolicyKind::Thompson, Params { thompson_draws: 100, ..Params::default() });
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
