#!/usr/bin/env python3
"""Peer comparison: MABWiser (LinUCB, Thompson sampling) and Vowpal Wabbit
(--cb_explore_adf) on nearline's simulated request stream.

Reads the stream written by `cargo run --release -p nearline-billboard --example
sim_stream` (the default world of the simulator tests: 50 000 decisions over a day,
60 context cells, 36-40 (title, artwork) pairs per request). Each peer decides, its
play is drawn from the true probability, and the outcome reaches it 17 minutes of event
time later, in batches every simulated minute, as nearline's simulator does. Reported:
the served take rate (true probability of what was served) over the last 40 % against
the oracle's, and decisions per second (time spent deciding only, one process).

Run through bench/peers.sh, which builds the stream and its own virtualenv.
"""

import collections
import random
import sys
import time

DELAY_MS = 17 * 60_000
FLUSH_MS = 60_000
MEASURED = 0.4


def load(path):
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            t, country, device, daypart, cands = line.rstrip("\n").split("\t")
            pairs = []
            for c in cands.split(" "):
                arm, p = c.split("=")
                pairs.append((arm, float(p)))
            rows.append((int(t), (country, device, daypart), pairs))
    return rows


def simulate(name, rows, decide, learn, seed=7):
    rng = random.Random(seed)
    pending = collections.deque()
    batch = []
    next_flush = FLUSH_MS
    measured_from = int((1 - MEASURED) * len(rows))
    served = oracle = 0.0
    spent = 0.0
    for i, (t, ctx, cands) in enumerate(rows):
        while pending and pending[0][0] <= t:
            batch.append(pending.popleft()[1:])
        if t >= next_flush:
            if batch:
                learn(batch)
                batch = []
            next_flush = t + FLUSH_MS
        start = time.perf_counter()
        index, prob = decide(ctx, cands, rng)
        spent += time.perf_counter() - start
        arm, p = cands[index]
        played = rng.random() < p
        if i >= measured_from:
            served += p
            oracle += max(q for _, q in cands)
        pending.append((t + DELAY_MS, ctx, [a for a, _ in cands], arm, prob, played))
    ratio = served / oracle
    rate = len(rows) / spent
    print(f"{name:<26} served/oracle {ratio:.3f}  decisions/s {rate:>10,.0f}", flush=True)
    return ratio, rate


def onehot(ctx, vocab):
    x = [0.0] * len(vocab)
    for field, value in zip(("country", "device", "daypart"), ctx):
        x[vocab[(field, value)]] = 1.0
    return x


def mabwiser(rows, policy_name):
    from mabwiser.mab import MAB, LearningPolicy

    arms = sorted({a for _, _, cands in rows for a, _ in cands})
    vocab = {}
    for _, ctx, _ in rows:
        for key in zip(("country", "device", "daypart"), ctx):
            vocab.setdefault(key, len(vocab))
    if policy_name == "LinUCB":
        policy = LearningPolicy.LinUCB(alpha=0.2)
    else:
        policy = LearningPolicy.ThompsonSampling()
    mab = MAB(arms=arms, learning_policy=policy, seed=11)
    state = {"fitted": False}

    def decide(ctx, cands, rng):
        if not state["fitted"]:
            return rng.randrange(len(cands)), 1.0 / len(cands)
        if policy_name == "LinUCB":
            scores = mab.predict_expectations([onehot(ctx, vocab)])
        else:
            scores = mab.predict_expectations()
        best = max(range(len(cands)), key=lambda j: scores[cands[j][0]])
        return best, 1.0

    def learn(batch):
        decisions = [arm for _, _, arm, _, _ in batch]
        rewards = [int(played) for _, _, _, _, played in batch]
        contexts = [onehot(ctx, vocab) for ctx, _, _, _, _ in batch]
        if policy_name == "LinUCB":
            (mab.partial_fit if state["fitted"] else mab.fit)(decisions, rewards, contexts)
        else:
            (mab.partial_fit if state["fitted"] else mab.fit)(decisions, rewards)
        state["fitted"] = True

    return decide, learn


def vw(rows):
    import vowpalwabbit

    model = vowpalwabbit.Workspace("--cb_explore_adf --epsilon 0.02 -q CA --quiet --random_seed 5")

    def example(ctx, arms, label=None):
        country, device, daypart = ctx
        lines = [f"shared |C country={country} device={device} daypart={daypart}"]
        for a in arms:
            title = a.split("/")[0]
            prefix = ""
            if label is not None and a == label[0]:
                prefix = f"0:{label[1]}:{label[2]} "
            lines.append(f"{prefix}|A arm={a} title={title}")
        return lines

    def decide(ctx, cands, rng):
        pmf = model.predict(example(ctx, [a for a, _ in cands]))
        u = rng.random() * sum(pmf)
        acc = 0.0
        for j, p in enumerate(pmf):
            acc += p
            if u < acc:
                return j, p / sum(pmf)
        return len(pmf) - 1, pmf[-1]

    def learn(batch):
        for ctx, arms, arm, prob, played in batch:
            cost = -1.0 if played else 0.0
            model.learn(example(ctx, arms, (arm, cost, max(prob, 1e-6))))

    return decide, learn


def main():
    rows = load(sys.argv[1])
    print(f"{len(rows)} decisions; measured over the last {MEASURED:.0%}", flush=True)
    for name, make in [
        ("MABWiser LinUCB", lambda: mabwiser(rows, "LinUCB")),
        ("MABWiser Thompson", lambda: mabwiser(rows, "Thompson")),
        ("VW --cb_explore_adf", lambda: vw(rows)),
    ]:
        decide, learn = make()
        simulate(name, rows, decide, learn)


if __name__ == "__main__":
    main()
