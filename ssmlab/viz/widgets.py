"""ipywidgets apps: sliders wired to the same figure builders the notebooks call.

Each app is an :class:`App` (an ``ipywidgets.VBox``): its controls on top, its plotly
``FigureWidget``\\ s below. Moving a slider rebuilds the figures with the builders of
``ssmlab.viz`` and copies the new traces and shapes into the FigureWidgets in place. Tests and
benchmarks call ``app.update(name=value, ...)``, which does the same without a browser.

Needs the ``lab`` extra (ipywidgets, anywidget: plotly's FigureWidget is an anywidget).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch

from ssmlab import ssm
from ssmlab.viz import discretization, masks, scans


def _look() -> dict:
    """Keyword arguments every slider shares (a fresh Layout each: layouts are widgets too)."""
    return dict(
        continuous_update=True,
        layout=widgets.Layout(width="420px"),
        style={"description_width": "110px"},
    )


class _FigureWidget(go.FigureWidget):
    """A ``go.FigureWidget`` whose comm opens with the figure already in its state.

    plotly 7's FigureWidget (an anywidget) opens its comm in ``ipywidgets.Widget.__init__``,
    *before* it copies the figure into ``_widget_data`` / ``_widget_layout``, and sends the figure
    in a second message. A view that renders between the two stays empty and ignores later
    updates (seen under CPU load in the browser test). Deferring ``open()`` to the end of
    ``__init__`` puts the figure into the opening message, so there is nothing to race.
    """

    def __init__(self, *args, **kwargs):
        self._defer_open = True
        super().__init__(*args, **kwargs)
        self._defer_open = False
        self.open()

    def open(self) -> None:
        if not getattr(self, "_defer_open", False):
            super().open()


class App(widgets.VBox):
    """Controls above FigureWidgets; ``update(**values)`` sets controls and redraws once.

    ``redraw(**values)`` must return one ``go.Figure`` per FigureWidget, with the same trace
    types in the same order on every call (the traces are updated in place).
    """

    def __init__(
        self,
        name: str,
        controls: Mapping[str, widgets.ValueWidget],
        redraw: Callable[..., Sequence[go.Figure]],
        columns: int = 2,
    ):
        figs = list(redraw(**{k: c.value for k, c in controls.items()}))
        fws = [_FigureWidget(_plain_figure(f)) for f in figs]
        if columns > 1:  # side by side: fit a ~1000 px notebook column
            for fw in fws:
                fw.layout.width = 1000 // columns
        rows = [widgets.HBox(fws[i : i + columns]) for i in range(0, len(fws), columns)]
        super().__init__([widgets.VBox(list(controls.values())), *rows])
        self.app_name, self.controls, self.figures, self._redraw = name, dict(controls), fws, redraw
        self._muted = False
        for control in self.controls.values():
            control.observe(self._on_change, names="value")

    @property
    def values(self) -> dict:
        """The current value of every control, by name."""
        return {k: c.value for k, c in self.controls.items()}

    def _on_change(self, _change) -> None:
        if not self._muted:
            self.redraw()

    def update(self, **values) -> None:
        """Set controls by name (as a slider drag would) and redraw the figures once."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(
                f"{self.app_name}: unknown controls {unknown}; known: {sorted(self.controls)}"
            )
        self._muted = True
        try:
            for k, v in values.items():
                self.controls[k].value = v
        finally:
            self._muted = False
        self.redraw()

    def redraw(self) -> None:
        """Rebuild the figures from the current values and copy them into the FigureWidgets."""
        for fw, fig in zip(self.figures, self._redraw(**self.values), strict=True):
            _sync(fw, fig)

    def snapshot(self) -> list[go.Figure]:
        """Static copies of the figures at the current values, titled "Static snapshot: …"."""
        figs = list(self._redraw(**self.values))
        for fig in figs:
            fig.update_layout(title_text=f"Static snapshot: {fig.layout.title.text}")
        return figs

    def show(self) -> None:
        """Display the app, then a static snapshot of its figures below it.

        A reader without a kernel (GitHub, nbviewer, a notebook opened without running it) sees
        the snapshot where the live figures would be; with a kernel, the app above it moves.
        """
        from IPython.display import display

        display(self)
        for fig in self.snapshot():
            display(fig)

    def __repr__(self) -> str:  # stable text/plain in stored notebooks (no random trace uids)
        return f"<ssmlab.viz.widgets.App {self.app_name!r}: controls {sorted(self.controls)}>"


def _plain(obj):
    """Nested numpy arrays -> lists, for every figure a FigureWidget receives.

    A FigureWidget built from numpy arrays sends them as binary buffers; plotly 7's anywidget
    front end then fails to apply later updates to those traces (seen in the browser: bars built
    from arrays kept their first values while line traces built from lists followed the slider).
    Plain JSON lists avoid it; the figures are small."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict) and "bdata" in obj and "dtype" in obj:  # plotly's typed-array spec
        arr = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"]))
        shape = obj.get("shape")
        if shape:
            arr = arr.reshape([int(n) for n in str(shape).split(",")])
        return arr.tolist()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _plain_figure(fig: go.Figure) -> dict:
    """``fig`` as a dict of plain lists (``Figure.to_dict`` would encode arrays as base64)."""
    return {
        "data": [_plain(tr.to_plotly_json()) for tr in fig.data],
        "layout": _plain(fig.layout.to_plotly_json()),
    }


def _sync(fw: go.FigureWidget, fig: go.Figure) -> None:
    """Copy ``fig``'s traces, shapes, annotations and title into ``fw`` in place."""
    same = len(fw.data) == len(fig.data) and all(
        a.type == b.type for a, b in zip(fw.data, fig.data)
    )
    if not same:  # traces cannot be added or removed inside batch_update
        fw.data = ()
        fw.add_traces(list(fig.data))
    with fw.batch_update():
        if same:
            for old, new in zip(fw.data, fig.data):
                props = _plain(new.to_plotly_json())
                props.pop("uid", None)
                old.update(props, overwrite=True)
        fw.layout.shapes = fig.layout.shapes
        fw.layout.annotations = fig.layout.annotations
        fw.layout.title = fig.layout.title
    # The update message above redraws the views that exist; the full state below is what a view
    # re-rendered later starts from (JupyterLab re-attaches outputs when cells scroll back into
    # view). plotly only refreshes it on display, so without this a re-attached view showed the
    # figure as first drawn.
    fw._widget_data = deepcopy(fw._data)
    fw._widget_layout = deepcopy(fw._layout_obj._props)


def _log_slider(name: str, value: float, lo: float, hi: float) -> widgets.FloatLogSlider:
    return widgets.FloatLogSlider(
        value=value,
        base=10,
        min=np.log10(lo),
        max=np.log10(hi),
        step=0.05,
        description=name,
        readout_format=".3g",
        **_look(),
    )


# ---------------------------------------------------------------- notebook 01
def discretization_app(
    eigenvalue: float = -1.0,
    dt: float = 0.5,
    t_end: float = 8.0,
    methods: Sequence[str] = discretization.METHODS,
) -> App:
    """Δt and eigenvalue sliders -> step responses against the exact solution, and |Ā(Δλ)|.

    Controls: ``dt`` (log slider 0.01–5), ``eigenvalue`` (real λ, −10 to −0.1).
    """
    controls = {
        "dt": _log_slider("Δt", dt, 0.01, 5.0),
        "eigenvalue": widgets.FloatSlider(
            value=eigenvalue, min=-10.0, max=-0.1, step=0.1, description="eigenvalue λ", **_look()
        ),
    }
    z = np.linspace(-6.0, 0.0, 121)
    gains = {m: discretization.amplification(z, m) for m in methods}

    def redraw(dt, eigenvalue):
        t = np.linspace(0.0, t_end, 161)
        disc = {
            m: discretization.discrete_step_response(eigenvalue, 1.0, dt, t_end, m) for m in methods
        }
        step = discretization.step_response(
            t,
            discretization.exact_step_response(eigenvalue, 1.0, t),
            disc,
            title=f"Step response, λ = {eigenvalue:.2g}, Δt = {dt:.3g}",
        )
        return [step, discretization.stability_curve(z, gains, marker=dt * eigenvalue)]

    return App("discretization", controls, redraw)


# ---------------------------------------------------------------- notebook 02
def s5_decay_app(
    timestamps,
    Lambda,
    scale: float = 1.0,
    method: str = "zoh",
    B=None,
    query_time: float | None = None,
    x=None,
) -> App:
    """Δt-scale slider -> S5 state path on an irregular timeline and |exp(Δ_k Λ)| per step.

    SS4Rec's step: Δ_k = scale · (t_{k+1} − t_k), the last one to ``query_time`` (default: 5% of
    the span after the last interaction) [SS4Rec]. Under ZOH input x_k is held over that step and
    the drawn path follows the exact solution inside it (``scans.zoh_path``). ``B`` defaults to −Λ:
    each state is then a continuous-time moving average of the input, relaxing towards x_k with
    memory 1/|λ|. ``x`` defaults to alternating ±1, so old and new inputs can be told apart.
    Controls: ``scale`` (log slider 0.01–100).

    Shapes:
        timestamps: (l,) sorted   Lambda: (p,) real negative (or complex)   B: (p,) or None
        x: (l,) or None
    """
    t_np = np.asarray(timestamps, dtype=np.float64)
    if query_time is None:
        query_time = float(t_np[-1] + 0.05 * max(float(t_np[-1] - t_np[0]), 1e-12))
    gaps = scans.next_gaps(t_np, query_time)  # (l,)
    lam = np.asarray(Lambda)
    B = -lam if B is None else np.asarray(B)
    x_np = np.where(np.arange(len(t_np)) % 2 == 0, 1.0, -1.0) if x is None else np.asarray(x)
    names = [
        f"λ = {complex(v).real:g}" if complex(v).imag == 0 else f"λ = {complex(v):g}" for v in lam
    ]
    controls = {"scale": _log_slider("Δt scale", scale, 0.01, 100.0)}

    def redraw(scale):
        if method != "zoh":  # the path is drawn for ZOH; the bars hold for any method
            raise ValueError(f"s5_decay_app draws the ZOH path; got method={method!r}")
        t_path, h_path = scans.zoh_path(t_np, query_time, lam, B, x_np, scale=scale)
        traj = scans.state_trajectory(
            t_path,
            h_path,
            names,
            events=t_np,
            title=f"S5 states under ZOH, Δ_k = {scale:.3g} · (t_(k+1) − t_k)",
            xaxis="time (days)",
        )
        return [traj, scans.decay_bars(scans.decay_factors(scale * gaps, lam), names)]

    return App("s5_decay", controls, redraw)


def s6_memory_app(
    n_irrelevant: int = 20, delta_irrelevant: float = 0.01, delta_relevant: float = 1.0, A=-1.0
) -> App:
    """S6's long-range memory: one relevant item, then many irrelevant ones.

    The first item gets Δ = ``delta_relevant``. S6 (selective) gives the irrelevant items a
    small Δ (its input says "skip me"), so exp(ΔA) ≈ 1 and the first item survives them; an LTI
    model (S4, constant Δ) uses the same Δ at every step and forgets it geometrically. Left: the
    first item's weight in the state against the position; right: Δ per position.
    Controls: ``n_irrelevant`` (0–60), ``delta_irrelevant`` (log slider 1e-3–1).
    """
    controls = {
        "n_irrelevant": widgets.IntSlider(
            value=n_irrelevant, min=0, max=60, description="irrelevant items", **_look()
        ),
        "delta_irrelevant": _log_slider("Δ irrelevant", delta_irrelevant, 1e-3, 1.0),
    }
    a = np.array([float(A)])

    def redraw(n_irrelevant, delta_irrelevant):
        selective = np.array([delta_relevant] + [delta_irrelevant] * n_irrelevant)
        lti = np.full(n_irrelevant + 1, delta_relevant)
        weights = {
            "S6: Δ from the input": scans.first_item_weight(selective, a)[:, 0],
            "LTI: constant Δ": scans.first_item_weight(lti, a)[:, 0],
        }
        left = scans.first_item_plot(
            weights, title=f"First item after {n_irrelevant} irrelevant ones (A = {A:g})"
        )
        right = scans.delta_comparison(
            {"S6: Δ from the input": selective, "LTI: constant Δ": lti},
            title="Δ per position",
            log=True,
        )
        return [left, right]

    return App("s6_memory", controls, redraw)


def s6_delta_app(x, w: float = 1.0, bias: float = 0.0, A=(-0.5, -2.0)) -> App:
    """Input-gain and bias sliders -> S6's Δ_t = softplus(w·x_t + bias) and |exp(Δ_t A)|.

    Mamba's selection: the step comes from the input itself, never from a timestamp.
    Controls: ``w`` (−3 to 3), ``bias`` (−4 to 4).

    Shapes:
        x: (l,) one input channel   A: (n,) negative
    """
    x_np = np.asarray(x, dtype=np.float64)
    a = np.asarray(A, dtype=np.float64)
    names = [f"A = {v:g}" for v in a]
    controls = {
        "w": widgets.FloatSlider(
            value=w, min=-3.0, max=3.0, step=0.1, description="input weight w", **_look()
        ),
        "bias": widgets.FloatSlider(
            value=bias, min=-4.0, max=4.0, step=0.1, description="Δ bias", **_look()
        ),
    }

    def redraw(w, bias):
        delta = torch.nn.functional.softplus(torch.as_tensor(w * x_np + bias)).numpy()
        bars = scans.delta_comparison(
            {"input x_t": x_np, "Δ_t = softplus(w·x_t + b)": delta},
            title="S6: Δ_t follows the input",
        )
        return [
            bars,
            scans.decay_bars(
                scans.decay_factors(delta, a),
                names,
                title="|exp(Δ_t A)|: what S6 keeps at each step",
            ),
        ]

    return App("s6_delta", controls, redraw)


# ---------------------------------------------------------------- notebook 03
def chunk_app(L, chunk_size: int = 8, choices: Sequence[int] = (2, 4, 8, 16)) -> App:
    """Chunk-size slider -> L split into its diagonal blocks and the blocks passed through states.

    Controls: ``chunk_size`` (a selection slider over ``choices``).

    Shapes:
        L: (l, l)
    """
    controls = {
        "chunk_size": widgets.SelectionSlider(
            options=list(choices), value=chunk_size, description="chunk size", **_look()
        )
    }

    def redraw(chunk_size):
        diag, off = masks.chunk_split(L, chunk_size)
        panels = {"diagonal blocks (quadratic)": diag, "off-diagonal (via states)": off}
        return [
            masks.mask_grid(
                panels,
                title=f"L in chunks of {chunk_size}",
                diagonal_only=False,
                boundaries=masks.chunk_boundaries(diag.shape[0], chunk_size),
                ztitles=dict.fromkeys(panels, "weight"),
            )
        ]

    return App("chunks", controls, redraw, columns=1)


# ---------------------------------------------------------------- notebook 04
def gap_mask_app(
    gaps: Sequence[float],
    A: float = -0.5,
    dt: float = 1.0,
    interval_fn: Callable[[torch.Tensor], object] | None = None,
) -> App:
    """One slider per gap t_k − t_{k-1} -> SSD's mask, TiM4Rec's time-aware mask and, with
    ``interval_fn`` (e.g. TiSASRec's relative-time matrix from ``ssmlab.layers``), a third panel.

    ``interval_fn(timestamps (1, l) float64)`` returns an (l, l) matrix; viz never imports layers.
    Controls: ``gap_1`` ... ``gap_{l-1}`` (0 to 5 each).
    """
    controls = {
        f"gap_{k + 1}": widgets.FloatSlider(
            value=float(g),
            min=0.0,
            max=5.0,
            step=0.1,
            description=f"gap t{k + 1} − t{k}",
            **_look(),
        )
        for k, g in enumerate(gaps)
    }
    seqlen = len(gaps) + 1
    constant = ssm.ssd_mask(
        torch.full((1, seqlen, 1), float(dt), dtype=torch.float64),
        torch.tensor([float(A)], dtype=torch.float64),
    )[0, 0]

    def redraw(**g):
        t = np.concatenate([[0.0], np.cumsum([g[f"gap_{k + 1}"] for k in range(len(gaps))])])
        panels = {
            "SSD: L, constant Δ": constant,
            "TiM4Rec (idealized): L with Δ·𝒟": masks.time_aware_mask(t, A, dt),
        }
        ztitles = dict.fromkeys(panels, "weight")
        if interval_fn is not None:
            panels["TiSASRec: bucket index"] = interval_fn(torch.as_tensor(t)[None])
            ztitles["TiSASRec: bucket index"] = "index"
        return [
            masks.mask_grid(panels, title="Masks for the gaps set by the sliders", ztitles=ztitles)
        ]

    return App("gap_masks", controls, redraw, columns=1)
