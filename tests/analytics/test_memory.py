"""The counting memory and the other repairs of split identities, on constructed identities whose right
counts are known: a person who crosses a line while hidden and comes back under a new id is counted once;
a different person elsewhere, of another size, or after the memory has lapsed inherits nothing; an old id
found again does not count twice; the truth's identities are never repaired."""
import numpy as np
import pytest

from edge_app.analytics.counting import Analytics
from edge_app.analytics.memory import CountingMemory
from edge_app.config.schema import AnalyticsConfig, LineConfig

W, H, FPS = 640, 480, 30.0
LINE = LineConfig(name="door", points=((320.0, 0.0), (320.0, 480.0)), margin=0.1)  # downwards: "in" = moving right


def _box(x, y=400.0, h=100.0):
    """A person whose feet (bottom centre) are at (x, y)."""
    return [x - h / 5, y - h, x + h / 5, y]


def _count(tracks, truth=None, **rule):
    """tracks: per frame a list of (id, x[, h]); the same rule on ``truth`` (per frame (id, x)) if given."""
    bare = {"memory_s": 0.0, "count_at_start": False, "count_at_end": False}   # each repair on only when asked
    an = Analytics(AnalyticsConfig(lines=(LINE,), **{**bare, **rule}), {}, W, H, forget_s=10.0)
    for f, objs in enumerate(tracks):
        boxes = np.array([_box(o[1], h=o[2] if len(o) > 2 else 100.0) for o in objs], np.float64).reshape(-1, 4)
        ids = np.array([o[0] for o in objs], np.int64)
        an.count(boxes, ids, np.zeros(len(ids), np.int64), ("person",), f / FPS)
        if truth is not None:
            tb = np.array([_box(x) for _i, x in truth[f]], np.float64).reshape(-1, 4)
            an.count(tb, np.array([i for i, _x in truth[f]], np.int64), np.zeros(len(tb), np.int64), ("person",),
                     f / FPS, truth=True)
    an.end_of_stream()
    line = an.snapshot()["lines"]["door"]
    return line["total_in"], line["total_out"], line.get("truth_in"), line.get("truth_out")


def _hidden_walk(gap=range(30, 75), after=0.0, h_after=100.0):
    """A person walking right at 3 px/frame from x = 200 (last seen at x = 287), hidden (no box) during
    ``gap``, crossing x = 320 while hidden, back as id 2 at x = 425 (+ after), height h_after, walking on."""
    frames = []
    for f in range(gap.stop + 35):
        if f in gap:
            frames.append([])
        elif f < gap.start:
            frames.append([(1, 200 + 3 * f)])
        else:
            frames.append([(2, 425 + after + 3 * (f - gap.stop), h_after)])
    return frames


def test_a_crossing_made_while_hidden_counts_with_the_memory():
    # hidden 1.5 s: last seen at x = 287 (left), back at x = 425 (right): 1.4 box heights away
    walk = _hidden_walk()
    assert _count(walk)[:2] == (0, 0)                                   # two ids, neither crossed
    assert _count(walk, memory_s=4.0, memory_radius=1.5)[:2] == (1, 0)  # one person went in
    assert _count(walk, memory_s=4.0, memory_radius=1.0)[:2] == (0, 0)  # beyond the reach


@pytest.mark.parametrize("change, why", [
    ({"after": 200.0}, "another person, far from where the first vanished"),
    ({"h_after": 200.0}, "a box twice the size: not the same person"),
    ({"gap": range(30, 160)}, "hidden longer than the memory"),
])
def test_what_does_not_continue_a_vanished_identity_inherits_nothing(change, why):
    walk = _hidden_walk(**change)
    assert _count(walk, memory_s=4.0, memory_radius=1.5)[:2] == (0, 0), why


def test_an_old_id_found_again_does_not_count_the_crossing_twice():
    walk = _hidden_walk()
    for f in range(80, 110):  # the old id comes back too, beside the new one, past the line
        walk[f] = walk[f] + [(1, 440 + 3 * (f - 80))]
    assert _count(walk, memory_s=4.0, memory_radius=1.5)[:2] == (1, 0)


def test_the_truth_is_counted_without_repairs():
    # two true people: 1 vanishes left of the line, 2 appears right of it, as the split track above; the
    # truth's ids are whole, so no crossing happened, whatever the memory does for tracks
    walk = _hidden_walk()
    got = _count(walk, truth=[[(i + 10, x) for i, x, *_ in objs] for objs in walk], memory_s=4.0, memory_radius=1.5)
    assert got == (1, 0, 0, 0)


def test_count_at_start_and_at_end():
    # a track born within the margin left of the line, then clearly right: crossed (count_at_start)
    born = [[(1, 318 + 2 * f)] for f in range(30)]
    assert _count(born)[:2] == (0, 0) and _count(born, count_at_start=True)[:2] == (1, 0)
    # a track clearly left, lost just past the line (within the margin), walking on: crossed (count_at_end)
    lost = [[(1, 250 + 3 * f)] if f < 25 else [] for f in range(40)]   # last seen at x = 322
    assert _count(lost)[:2] == (0, 0) and _count(lost, count_at_end=True)[:2] == (1, 0)
    # ... but not one that was going back when lost (its last second: from x = 326.9 to 323.9)
    back = [[(1, 200 + 2.9 * f if f < 40 else 329.9 - 0.1 * (f - 40))] if f <= 100 else [] for f in range(110)]
    assert _count(back, count_at_end=True)[:2] == (0, 0)


def test_the_memory_forgets():
    m = CountingMemory(memory_s=1.0, radius=1.0)
    box = np.array([[0.0, 0.0, 10.0, 50.0]])
    for f in range(10):
        m.step([("a", 1)], np.array([[5.0, 50.0]]), box, f / 10)
    m.end(("a", 1), {})
    m.step([("a", 2)], np.array([[500.0, 50.0]]), box, 3.0)   # 2 s later: (a, 1) is past remembering
    assert ("a", 1) not in m.seen and ("a", 2) in m.seen
