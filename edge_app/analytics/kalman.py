"""A constant-velocity Kalman filter over boxes, batched over tracks.

State (8,): centre x, centre y, aspect ratio w/h, height, and their velocities; measurement (4,): the
first four. Noise follows the usual SORT/ByteTrack scaling by box height. With diagonal initial, process
and measurement noise and a transition that couples each quantity only with its own velocity, the 8 x 8
covariance stays block-diagonal: four independent (position, velocity) pairs. It is kept as such,
``cov`` (N, 3, 4) = the variances of position, the covariances, the variances of velocity per quantity,
so predict and update are a few elementwise operations (the same numbers as the 8 x 8 form).

Time is in seconds and the model is scaled to a nominal 30 fps frame (``FRAME_S``): at 30 fps a step is
exactly one frame, at 10 fps the same motion takes three frames' worth of prediction and process noise,
so tracks behave alike at any frame rate.
"""
from __future__ import annotations

import numpy as np

FRAME_S = 1.0 / 30.0
_W_POS, _W_VEL = 1.0 / 20.0, 1.0 / 160.0
# std = weight x box height; the aspect ratio has small constants instead. As variances (per quantity):
_P_H, _P_C = np.array([_W_POS, _W_POS, 0, _W_POS]) ** 2, np.array([0, 0, 1e-2, 0]) ** 2   # process, position
_V_H, _V_C = np.array([_W_VEL, _W_VEL, 0, _W_VEL]) ** 2, np.array([0, 0, 1e-5, 0]) ** 2   # process, velocity
_R_H, _R_C = _P_H, np.array([0, 0, 1e-1, 0]) ** 2                                          # measurement
PP, PV, VV = 0, 1, 2


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, 4) centre x, centre y, aspect w/h, height."""
    b = np.asarray(boxes, np.float64)
    out = np.empty((len(b), 4))
    wh = b[:, 2:4] - b[:, 0:2]
    np.maximum(wh[:, 1], 1e-6, out=out[:, 3])
    out[:, 0:2] = b[:, 0:2] + wh / 2
    np.divide(wh[:, 0], out[:, 3], out=out[:, 2])
    return out


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """(N, >=4) centre x, centre y, aspect, height -> (N, 4) xyxy."""
    half = np.empty((len(xyah), 2))
    np.multiply(xyah[:, 3], 0.5, out=half[:, 1])
    np.multiply(xyah[:, 2], half[:, 1], out=half[:, 0])
    out = np.empty((len(xyah), 4))
    np.subtract(xyah[:, 0:2], half, out=out[:, 0:2])
    np.add(xyah[:, 0:2], half, out=out[:, 2:4])
    return out


def initiate(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) measurements -> mean (N, 8), covariance blocks (N, 3, 4)."""
    z = np.asarray(z, np.float64).reshape(-1, 4)
    mean = np.concatenate([z, np.zeros_like(z)], axis=1)
    h2 = z[:, 3:4] ** 2
    cov = np.zeros((len(z), 3, 4))
    cov[:, PP] = 4 * (h2 * _P_H + _P_C)     # (2 x std)^2
    cov[:, VV] = 100 * (h2 * _V_H + _V_C)   # (10 x std)^2
    return mean, cov


_TRANSITIONS: dict[float, np.ndarray] = {}


def _transition(steps: float) -> np.ndarray:
    """(12, 12) map of the flattened blocks [pp(4), pv(4), vv(4)] one prediction of ``steps`` frames on:
    pp' = pp + 2 s pv + s^2 vv, pv' = pv + s vv, vv' = vv (cached: a stream's steps repeat)."""
    m = _TRANSITIONS.get(steps)
    if m is None:
        i4 = np.eye(4)
        m = np.zeros((12, 12))
        m[0:4, 0:4] = i4
        m[4:8, 0:4], m[4:8, 4:8] = 2 * steps * i4, i4
        m[8:12, 0:4], m[8:12, 4:8], m[8:12, 8:12] = steps * steps * i4, steps * i4, i4
        if len(_TRANSITIONS) < 256:
            _TRANSITIONS[steps] = m
    return m


_NOISE_H = np.concatenate([_P_H, np.zeros(4), _V_H])
_NOISE_C = np.concatenate([_P_C, np.zeros(4), _V_C])


def predict(mean: np.ndarray, cov: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Every track ``dt`` seconds ahead (x += steps * v; P = F P F^T + Q per quantity, as one product)."""
    steps = float(dt) / FRAME_S
    if len(mean) == 0 or not steps:
        return mean, cov
    h2 = mean[:, 3:4] ** 2  # noise scaled by the height before the step (as SORT/ByteTrack do)
    mean = mean.copy()
    mean[:, :4] += steps * mean[:, 4:]
    flat = cov.reshape(len(cov), 12) @ _transition(steps) + (h2 * _NOISE_H + _NOISE_C) * steps
    return mean, flat.reshape(-1, 3, 4)


def update(mean: np.ndarray, cov: np.ndarray, z: np.ndarray, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Correct N tracks with their measurements z (N, 4): four scalar Kalman updates per track. noise: the
    measurement's standard deviation as a multiple of SORT's (1/20 of the box height): above 1 the filter
    trusts a detection less and its motion more (smoother velocities through jittery boxes)."""
    if len(mean) == 0:
        return mean, cov
    pp, pv, vv = cov[:, PP], cov[:, PV], cov[:, VV]
    s = pp + (mean[:, 3:4] ** 2 * _R_H + _R_C) * (noise * noise)
    kp, kv = pp / s, pv / s
    innovation = np.asarray(z, np.float64) - mean[:, :4]
    mean = mean.copy()
    mean[:, :4] += kp * innovation
    mean[:, 4:] += kv * innovation
    out = np.empty_like(cov)
    out[:, PP] = pp - kp * pp
    out[:, PV] = pv - kp * pv
    out[:, VV] = vv - kv * pv
    return mean, out


def full_covariance(cov: np.ndarray) -> np.ndarray:
    """The blocks as (N, 8, 8) matrices (tests compare with the textbook 8 x 8 filter)."""
    n = len(cov)
    P = np.zeros((n, 8, 8))
    i = np.arange(4)
    P[:, i, i] = cov[:, PP]
    P[:, i + 4, i + 4] = cov[:, VV]
    P[:, i, i + 4] = P[:, i + 4, i] = cov[:, PV]
    return P


def mahalanobis(mean: np.ndarray, cov: np.ndarray, z: np.ndarray, noise: float = 1.0) -> np.ndarray:
    """Squared Mahalanobis distance of measurements from tracks' predictions, by the innovation covariance
    (predicted position variance + the detection's noise, diagonal, as ``update`` uses it): row-aligned
    mean (K, 8), cov (K, 3, 4), z (K, 4) xyah -> (K,); or broadcast, mean[:, None], cov[:, None], z[None]
    -> (T, M). Beyond CHI2_4_99 a track explains the measurement less than 1 % of the time."""
    s = cov[..., PP, :] + (mean[..., 3:4] ** 2 * _R_H + _R_C) * (noise * noise)
    d = np.asarray(z, np.float64) - mean[..., :4]
    return (d * d / s).sum(axis=-1)


CHI2_4_99 = 13.2767  # the 99 % quantile of chi-square with 4 degrees of freedom
