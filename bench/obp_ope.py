"""Open Bandit Pipeline's IPS, SNIPS and DR on the logged data nearline evaluated.

Reads the arrays `simulate_logs --obp DIR` wrote (the same decisions, propensities,
rewards, target distribution and out-of-fold reward model that `nearline evaluate`
used) and nearline's estimates (its JSON report, or `estimate_arrays`'s output);
prints both sides' estimates, intervals and times.

obp 0.5.7 pins Python < 3.11 and torch 1.12, for which there is no wheel on this
Python; its off-policy estimators are numpy and scikit-learn only, and `obp.utils`
touches torch only to type-check tensors, so a stand-in module satisfies that import
and the package's `__init__` (which loads the torch-based policy learners) is skipped.
"""

import importlib.util
import json
import sys
import time
import types

import numpy as np

torch = types.ModuleType("torch")
torch.Tensor = type("Tensor", (), {})
torch.tensor = torch.Tensor
sys.modules.setdefault("torch", torch)
spec = importlib.util.find_spec("obp")
package = types.ModuleType("obp")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["obp"] = package

from obp.ope import DoublyRobust  # noqa: E402
from obp.ope import InverseProbabilityWeighting  # noqa: E402
from obp.ope import SelfNormalizedInverseProbabilityWeighting  # noqa: E402
from obp.version import __version__ as obp_version  # noqa: E402


def nearline_estimates(path):
    """nearline's estimates: from `nearline evaluate`'s JSON report, or from the lines
    `estimate_arrays` prints (`ips 0.174045 [0.156905, 0.200326]`)."""
    text = open(path).read()
    if text.lstrip().startswith("{"):
        return {e["estimator"]: e for e in json.loads(text)["overall"]["estimates"]}
    ours = {}
    for line in text.splitlines():
        parts = line.replace("[", " ").replace("]", " ").replace(",", " ").split()
        if len(parts) == 4 and parts[0] in ("ips", "snips", "dr"):
            ours[parts[0]] = {"value": float(parts[1]), "low": float(parts[2]), "high": float(parts[3])}
    return ours


def main(arrays, report_path, bootstrap):
    meta = json.load(open(f"{arrays}/meta.json"))
    n, k = meta["rounds"], meta["actions"]
    action = np.fromfile(f"{arrays}/action.i64", dtype="<i8")
    pscore = np.fromfile(f"{arrays}/pscore.f64", dtype="<f8")
    reward = np.fromfile(f"{arrays}/reward.f64", dtype="<f8")
    action_dist = np.fromfile(f"{arrays}/action_dist.f64", dtype="<f8").reshape(n, k, 1)
    q_hat = np.fromfile(f"{arrays}/estimated_rewards.f64", dtype="<f8").reshape(n, k, 1)
    ours = nearline_estimates(report_path)

    estimators = {
        "ips": InverseProbabilityWeighting(),
        "snips": SelfNormalizedInverseProbabilityWeighting(),
        "dr": DoublyRobust(),
    }
    rows = []
    started_all = time.perf_counter()
    for name, estimator in estimators.items():
        kwargs = dict(reward=reward, action=action, pscore=pscore, action_dist=action_dist)
        if name == "dr":
            kwargs["estimated_rewards_by_reg_model"] = q_hat
        started = time.perf_counter()
        value = estimator.estimate_policy_value(**kwargs)
        interval = estimator.estimate_interval(**kwargs, alpha=0.05, n_bootstrap_samples=bootstrap, random_state=0)
        took = time.perf_counter() - started
        rows.append((name, value, interval["95.0% CI (lower)"], interval["95.0% CI (upper)"], took))
    obp_seconds = time.perf_counter() - started_all

    print(f"obp {obp_version}: {n} logged decisions x {k} actions, target {meta['target']}, {bootstrap} bootstrap resamples")
    print(f"true value (the simulator's play probabilities): {meta['true_value']:.6f}")
    print(f"{'estimator':<9} {'nearline':>10} {'nearline 95% interval':>24} {'obp':>10} {'obp 95% interval':>24} {'|diff|':>9}  agree")
    agree_all = True
    for name, value, low, high, _ in rows:
        e = ours[name]
        v, lo, hi = e["value"], e["low"], e["high"]
        agree = lo <= value <= hi and low <= v <= high
        agree_all &= agree
        print(f"{name:<9} {v:>10.6f} {f'[{lo:.6f}, {hi:.6f}]':>24} {value:>10.6f} {f'[{low:.6f}, {high:.6f}]':>24} {abs(v - value):>9.2e}  {'yes' if agree else 'NO'}")
    for name, *_, took in rows:
        print(f"obp {name}: {took:.2f} s (estimate + {bootstrap}-resample interval)")
    print(f"obp total: {obp_seconds:.2f} s")
    print("OBP_SECONDS", f"{obp_seconds:.3f}")
    print("AGREE", "yes" if agree_all else "no")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
