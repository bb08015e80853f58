"""Continuous -> discrete: Ā and B̄ from a diagonal A and a step dt, and observed gaps -> dt.

The continuous SSM h'(t) = A h(t) + B x(t) [TiM4Rec Eq. (1)] is sampled with a step dt. With the
input held constant over the step (zero-order hold) the exact update is
h_k = exp(dt A) h_{k-1} + (dt A)^{-1} (exp(dt A) - I) dt B x_k [TiM4Rec Eq. (2)]. The other methods
are approximations of it. ``A`` is always diagonal, given as its diagonal (real or complex).

``time_gap_to_dt`` is the one named place where an observed gap t_{k+1} - t_k in seconds becomes a
step (SS4Rec's time-aware SSM, TiM4Rec's time differences).
"""

from __future__ import annotations

import torch

METHODS = ("zoh", "bilinear", "euler", "mamba")
NORMS = ("raw", "log1p", "scale")

# Below this |z| the functions of z = dt*A use their Taylor series: the direct formula
# expm1(z)/z is exact in value but its autograd derivative cancels catastrophically as z -> 0.
_SERIES_RADIUS = 0.1
_SERIES_TERMS = 12  # error |z|^12 / 13! < 1e-22 at |z| = 0.1


def _expm1(z: torch.Tensor) -> torch.Tensor:
    """exp(z) - 1 without cancellation, for real and complex z (torch.expm1 is real-only here).

    For z = x + iy: exp(z) - 1 = expm1(x) cos(y) - 2 sin(y/2)^2 + i exp(x) sin(y).
    """
    if not z.is_complex():
        return torch.expm1(z)
    x, y = z.real, z.imag
    real = torch.expm1(x) * torch.cos(y) - 2.0 * torch.sin(0.5 * y) ** 2
    imag = torch.exp(x) * torch.sin(y)
    return torch.complex(real, imag)


def phi1(z: torch.Tensor) -> torch.Tensor:
    """(exp(z) - 1) / z with its limit 1 at z = 0; finite values and gradients everywhere.

    Uses the series sum_k z^k / (k+1)! for |z| < 0.1 and expm1(z) / z elsewhere. Both branches
    see only safe inputs (torch.where would otherwise leak NaN gradients from the unused branch).

    Shapes:
        z: any shape, real or complex
        returns: same shape and dtype as z
    """
    small = z.abs() < _SERIES_RADIUS
    z_direct = torch.where(small, torch.ones_like(z), z)
    z_series = torch.where(small, z, torch.zeros_like(z))
    series = torch.ones_like(z)  # Horner: 1 + z/2 (1 + z/3 (1 + z/4 (...)))
    for k in range(_SERIES_TERMS, 0, -1):
        series = 1.0 + z_series / (k + 1) * series
    return torch.where(small, series, _expm1(z_direct) / z_direct)


def discretize(
    A: torch.Tensor, B: torch.Tensor, dt: torch.Tensor | float, method: str = "zoh"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Discretize the diagonal SSM (A, B) with step dt: returns (A_bar, B_bar).

    Implements [TiM4Rec Eq. (2)] (``zoh``: A_bar = exp(dt A),
    B_bar = (dt A)^{-1}(exp(dt A) - I) dt B) and the approximation of [TiM4Rec Eq. (13)] used by
    Mamba and SSD (``mamba``: A_bar = exp(dt A), B_bar = dt B). Also ``bilinear``
    (A_bar = (1 + dt A/2) / (1 - dt A/2), B_bar = dt B / (1 - dt A/2), S4's choice; S5's official
    code defaults to zoh) and forward ``euler`` (A_bar = 1 + dt A, B_bar = dt B).

    Broadcasting convention: ``A`` and ``dt`` broadcast to the shape of ``z = dt * A``; A_bar has
    that shape and B_bar = coef(dt, A) * B, where coef has that shape too and ``B`` must broadcast
    against it. The caller adds the unsqueezes: for a matrix B (p, h) pass ``A[:, None]`` and
    ``dt[..., None]``. Because B_bar is linear in B, ``B`` may also be the product B x (the input
    already multiplied in), which avoids materializing B_bar.

    ``zoh`` is stable as dt A -> 0 (B_bar -> dt B), at A = 0, and for dt up to 1e9 with Re(A) < 0
    (A_bar -> 0, B_bar -> -B / A): values and gradients stay finite.

    Shapes:
        A: (..., n) diagonal of A, real or complex (Re(A) < 0 for a stable system)
        B: broadcastable against dt * A, e.g. (..., n) or, with unsqueezed A and dt, (..., n, h)
        dt: broadcastable against A, real, >= 0 (a python float is fine)
        returns: A_bar with the shape of dt * A; B_bar with the shape of coef * B
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    if not isinstance(dt, torch.Tensor):
        dt = torch.as_tensor(dt, dtype=A.real.dtype, device=A.device)
    if dt.is_complex():
        raise ValueError(f"dt must be real, got dtype {dt.dtype}")
    try:
        z = dt * A  # (...) the shape of dt * A
    except RuntimeError as err:
        raise ValueError(
            f"A {tuple(A.shape)} and dt {tuple(dt.shape)} do not broadcast: {err}"
        ) from None

    if method == "zoh":
        A_bar = torch.exp(z)
        coef = dt * phi1(z)  # = (exp(dt A) - 1) / A, -> dt as dt A -> 0
    elif method == "bilinear":
        denom = 1.0 - 0.5 * z
        A_bar = (1.0 + 0.5 * z) / denom
        coef = dt / denom
    elif method == "euler":
        A_bar = 1.0 + z
        coef = dt.to(z.dtype).expand(z.shape)
    else:  # mamba
        A_bar = torch.exp(z)
        coef = dt.to(z.dtype).expand(z.shape)

    try:
        B_bar = coef * B
    except RuntimeError as err:
        raise ValueError(
            f"B {tuple(B.shape)} does not broadcast against dt * A {tuple(z.shape)}: {err}"
        ) from None
    return A_bar, B_bar


def time_gap_to_dt(
    time_gap: torch.Tensor,
    norm: str = "raw",
    scale: float | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Turn observed gaps t_{k+1} - t_k (seconds) into SSM steps dt.

    The named bridge from data to discretization used by the time-aware models [SS4Rec]
    [TiM4Rec]. ``norm``:
      - ``"raw"``: dt = gap (seconds, as floats);
      - ``"log1p"``: dt = log(1 + gap), compressing gaps of years to ~20;
      - ``"scale"``: dt = gap / scale with ``scale > 0`` (e.g. a dataset's median gap).
    Integer gaps (e.g. differences of int64 Unix seconds) are converted to float after the
    difference was taken: timestamps do not fit float32 exactly, gaps do. The arithmetic runs in
    float64 and the result is cast to ``dtype``.

    Shapes:
        time_gap: any shape, integer or real, >= 0
        returns: same shape, ``dtype`` (default: time_gap's dtype if floating, else torch's default)
    """
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r}: expected one of {NORMS}")
    if not isinstance(time_gap, torch.Tensor):
        time_gap = torch.as_tensor(time_gap)
    if time_gap.is_complex() or time_gap.dtype == torch.bool:
        raise ValueError(f"time_gap must be an integer or real tensor, got dtype {time_gap.dtype}")
    if dtype is None:
        dtype = time_gap.dtype if time_gap.is_floating_point() else torch.get_default_dtype()
    gap = time_gap.to(torch.float64)
    if not torch.isfinite(gap).all():
        raise ValueError("time_gap contains NaN or inf")
    if (gap < 0).any():
        raise ValueError(
            f"time_gap must be >= 0 (timestamps sorted within a sequence), "
            f"min is {gap.min().item()}"
        )
    if norm != "scale" and scale is not None:
        raise ValueError(f"scale={scale!r} is only used with norm='scale', got norm={norm!r}")
    if norm == "raw":
        dt = gap
    elif norm == "log1p":
        dt = torch.log1p(gap)
    else:
        if scale is None or not float(scale) > 0:
            raise ValueError(f"norm='scale' needs scale > 0 (e.g. the median gap), got {scale!r}")
        dt = gap / float(scale)
    return dt.to(dtype)
