"""The A/B numbers against independent references: the paired bootstrap interval of the F1 difference
against scipy.stats.bootstrap resampling the same frames; Wilson intervals against the closed form worked
by hand (Newcombe 1998, table I); the decision rule on clear cases; no bootstrap before the rule's frames."""
import numpy as np
import pytest

from edge_app.rollout.ab import PairedScore, Rule, wilson


def _score(a: np.ndarray, b: np.ndarray, rule: Rule) -> PairedScore:
    s = PairedScore("detection", ("circle", "square"), 0.5, rule)
    s._pairs = list(zip(a, b))  # per frame (C, 3) [tp, fp, labels] counts, as frame_counts makes them
    return s


def _frames(rng, n: int, recall: float, fp: float) -> np.ndarray:
    labels = rng.integers(0, 4, size=(n, 2))
    tp = rng.binomial(labels, recall)
    return np.stack([tp, rng.poisson(fp, size=(n, 2)), labels], axis=2).astype(np.int64)


def _f1(x: np.ndarray) -> float:
    tp, fp, n = x[..., 0].sum(), x[..., 1].sum(), x[..., 2].sum()
    return 2 * tp / (2 * tp + fp + n - tp)


def test_the_paired_bootstrap_interval_matches_scipy():
    from scipy.stats import bootstrap

    rng = np.random.default_rng(3)
    a, b = _frames(rng, 120, 0.6, 0.5), _frames(rng, 120, 0.7, 0.4)
    rule = Rule(frames=100, confidence=0.95, resamples=20000)
    numbers = _score(a, b, rule).bootstrap()
    assert numbers["delta"] == pytest.approx(_f1(b) - _f1(a), abs=1e-4)
    ref = bootstrap((np.arange(len(a)),), lambda idx: _f1(b[idx]) - _f1(a[idx]), vectorized=False,
                    n_resamples=20000, confidence_level=0.90, method="percentile", random_state=1)
    lo, hi = numbers["delta_interval"]   # one-sided 0.95 each way = the two-sided 0.90 percentile interval
    assert lo == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=0.01)


def test_the_rule_promotes_better_and_equal_and_rejects_worse_and_waits_for_its_frames():
    rng = np.random.default_rng(5)
    base = _frames(rng, 100, 0.7, 0.3)
    worse = base.copy()
    worse[:, :, 0] = rng.binomial(base[:, :, 0], 0.6)        # loses 40 % of its true positives
    rule = Rule(frames=100)
    assert _score(base, base, rule).decide()[0] == "promote"  # as good: not worse by more than the margin
    assert _score(worse, base, rule).decide()[0] == "promote"
    verdict, numbers = _score(base, worse, rule).decide()
    assert verdict == "reject" and numbers["delta_interval"][1] < 0
    early = _score(base[:99], worse[:99], rule)
    assert early.decide() == (None, {"frames": 99}) and early._numbers is None   # no bootstrap before 100


def test_wilson_intervals_match_the_closed_form():
    # Newcombe (1998), Table I: 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605; 0/10 -> 0 to 0.2775
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=2e-4)
    assert wilson(15, 148) == pytest.approx((0.0624, 0.1605), abs=2e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=2e-4)
    assert wilson(0, 0) is None
