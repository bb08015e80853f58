"""Stored figures hold only platform-stable numbers.

Strict nbval compares a notebook's stored plotly JSON with a rerun bit for bit, so a float whose
last bit depends on numpy or libm (``np.round(x / 10**m) * 10**m``) fails on the next machine.
The builders round through decimal text (ssmlab.viz._style), which gives the double nearest to a
short decimal on every platform; these tests check the helpers and every float of every plotly
output stored in notebooks/*.ipynb (JSON numbers and plotly's base64 ``bdata`` typed arrays).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from ssmlab.viz._style import DECIMALS, round_decimal, round_sig, to_numpy

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
PLOTLY = "application/vnd.plotly.v1+json"
SIG = 4  # round_sig's default
# plotly.js typed-array names -> numpy dtypes (little-endian, as plotly.py writes them)
TYPED = {"f4": "<f4", "f8": "<f8", "i1": "i1", "u1": "u1", "u1c": "u1"}
TYPED |= {f"{k}{n}": f"<{k}{n}" for k in "iu" for n in (2, 4)}


def is_rounded(v: float, single: bool = False) -> bool:
    """v is the double (or float32 when ``single``) nearest to a decimal with at most DECIMALS
    digits after the point or SIG significant digits; NaN and ±inf count as rounded."""
    if not np.isfinite(v):
        return True
    parse = (lambda s: float(np.float32(s))) if single else float
    return v == parse(f"{v:.{DECIMALS}f}") or v == parse(f"{v:.{SIG}g}")


def stored_floats(node, path: str = ""):
    """Yield (path, value, is_float32) for every float in a plotly figure's JSON."""
    if isinstance(node, dict):
        if "bdata" in node and "dtype" in node:
            arr = np.frombuffer(base64.b64decode(node["bdata"]), dtype=TYPED[node["dtype"]])
            if arr.dtype.kind == "f":
                for v in arr.tolist():
                    yield path, v, arr.dtype.itemsize == 4
            return
        for key, value in node.items():
            yield from stored_floats(value, f"{path}/{key}")
    elif isinstance(node, list):
        for value in node:
            yield from stored_floats(value, path)
    elif isinstance(node, float):
        yield path, node, False


def figures(path: Path):
    """(cell index, figure JSON) of every plotly output stored in a notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if PLOTLY in out.get("data", {}):
                yield i, out["data"][PLOTLY]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_stored_figure_float_is_a_rounded_decimal(path):
    bad = [
        f"cell {i}{where}: {v!r}"
        for i, fig in figures(path)
        for where, v, single in stored_floats(fig)
        if not is_rounded(v, single)
    ]
    assert not bad, (
        f"{path.name}: {len(bad)} stored figure floats are not rounded through decimal text "
        f"(route the builder's data through ssmlab.viz._style.round_sig / to_numpy), e.g. "
        + "; ".join(bad[:5])
    )


def test_the_checker_sees_unrounded_floats_in_json_and_bdata():
    raw = np.array([0.1, 1 / 3])
    fig = {"data": [{"x": [0.25, 2 / 3], "y": {"dtype": "f8", "bdata": base64.b64encode(raw)}}]}
    fig["data"][0]["y"]["bdata"] = fig["data"][0]["y"]["bdata"].decode()
    found = [(w, v) for w, v, s in stored_floats(fig) if not is_rounded(v, s)]
    assert found == [("/data/x", 2 / 3), ("/data/y", 1 / 3)]
    assert is_rounded(float(np.float32(0.7408)), single=True)
    assert not is_rounded(float(np.float32(1 / 3)), single=True)


@pytest.mark.parametrize("digits", [1, 3, 4, 6])
def test_round_sig_is_the_decimal_text_rounding(digits):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2000) * 10.0 ** rng.integers(-12, 12, 2000)
    # values where log10/pow rounding used to give a neighbouring double
    x = np.concatenate([x, [0.001122, 891.3, 995.6, 0.304, 33.81, 1e-3, 1e3, 9.9995, -0.31625]])
    got = round_sig(x, digits)
    assert got.dtype == np.float64 and got.shape == x.shape
    assert got.tolist() == [float(f"{v:.{digits}g}") for v in x.tolist()]


def test_round_sig_keeps_shape_zero_sign_nan_and_inf():
    x = np.array([[0.0, -0.0, np.nan], [np.inf, -np.inf, -1234.5678]])
    got = round_sig(x)
    assert got.shape == (2, 3)
    assert np.signbit(got[0, 1]) and got[0, 0] == 0 and np.isnan(got[0, 2])
    assert got[1].tolist() == [np.inf, -np.inf, -1235.0]
    assert round_sig(0.0123456).shape == () and float(round_sig(0.0123456)) == 0.01235
    with pytest.raises(ValueError, match="digits"):
        round_sig(1.0, 0)


def test_fixed_decimals_round_through_text_for_real_and_complex():
    x = np.array([1.23456789, -2.5e-5, 12345.678951, np.nan])
    assert round_decimal(x).tolist()[:3] == [1.2346, -0.0, 12345.679]
    assert to_numpy(x, 2).tolist()[:3] == [1.23, -0.0, 12345.68]
    z = to_numpy(np.array([0.123456 - 7.654321j]))
    assert z.dtype == np.complex128 and z.tolist() == [0.1235 - 7.6543j]


def test_subplot_geometry_is_rounded():
    from ssmlab import viz

    fig = viz.masks.mask_grid({"a": np.eye(3), "b": -np.eye(3), "c": np.ones((3, 3))})
    floats = list(stored_floats(fig.to_plotly_json()))
    assert floats and all(is_rounded(v, s) for _, v, s in floats)
