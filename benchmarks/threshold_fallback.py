"""How far should a criterion's threshold trust a validation split with few positives?

Simulates nine criteria whose base rates differ tenfold (as ReDSM5's do) and whose match
scores are equally separable (logits N(+1, 1) vs N(-1.5, 1)); validation holds ``n`` posts,
test 20,000. For each prior strength k (0 = the criterion's own F1 optimum, inf = the shared
threshold) it reports the mean test F1 of the rarest and the commonest criterion and the
9-criterion macro-F1, over 400 draws. Run: python benchmarks/threshold_fallback.py
"""

import numpy as np

from cm.evaluate import thresholds

RATES = np.array([0.22, 0.10, 0.03, 0.08, 0.02, 0.09, 0.20, 0.04, 0.12])
PRIORS = (0, 3, 10, 30, None)  # None: the shared threshold alone


def draw(rng, n_posts):
    y = rng.random((n_posts, len(RATES))) < RATES
    logit = np.where(y, rng.normal(1.0, 1.0, y.shape), rng.normal(-1.5, 1.0, y.shape))
    return y.astype(int), 1 / (1 + np.exp(-logit))


def f1(y, p, t):
    made = p >= t
    tp, fp, fn = (made & (y == 1)).sum(), (made & (y == 0)).sum(), (~made & (y == 1)).sum()
    return 2 * tp / max(2 * tp + fp + fn, 1)


def main(val_posts=150, reps=400, seed=0):
    rng = np.random.default_rng(seed)
    test_y, test_p = draw(rng, 20_000)
    ids = np.repeat([[f"A.{j + 1}" for j in range(len(RATES))]], val_posts, axis=0).ravel()
    results = {k: [] for k in PRIORS}
    for _ in range(reps):
        y, p = draw(rng, val_posts)
        for k in PRIORS:
            tuned = thresholds.tune_thresholds("per_criterion", ids, y.ravel(), p.ravel(),
                                               prior=1e12 if k is None else k)
            results[k].append([f1(test_y[:, j], test_p[:, j], tuned[f"A.{j + 1}"])
                               for j in range(len(RATES))])
    rare, common = int(np.argmin(RATES)), int(np.argmax(RATES))
    print(f"{val_posts} validation posts; expected val positives: rarest "
          f"{RATES[rare] * val_posts:.0f}, commonest {RATES[common] * val_posts:.0f}")
    print("prior k | rarest F1 | commonest F1 | 9-criterion macro-F1")
    for k, rows in results.items():
        rows = np.array(rows)
        name = "shared" if k is None else str(k)
        print(f"{name:>7} | {rows[:, rare].mean():.4f} | {rows[:, common].mean():.4f} | "
              f"{rows.mean():.4f}")


if __name__ == "__main__":
    main()
