"""Runs: train by name (a new run, or one resumed from its folder) and evaluate a checkpoint.

What ``ssmlab train`` and ``ssmlab eval`` call (``ssmlab.cli``), with plain arguments:

>>> r = train("gru4rec", "toy", overrides=["train.epochs=2"], output="runs/d")  # doctest: +SKIP
>>> r = train(output="runs/d", resume=True, overrides=["train.epochs=4"])  # doctest: +SKIP
>>> evaluate_checkpoint("runs/d")["test"]["ndcg@10"]  # doctest: +SKIP

A run folder (``output``) gets ``config.yaml``, ``last.pt``, ``best.pt``, ``log.jsonl`` and
``metrics.json`` (:class:`~ssmlab.train.trainer.Trainer`); while a run writes there it holds
``<output>/.lock`` (:func:`run_lock`). ``resume=True`` continues the run in ``output`` with its
saved config; ``config_file``/``overrides`` may change only :data:`RESUMABLE` keys (they are
applied, e.g. a new ``train.lr`` replaces the optimizer's rate, and recorded in ``config.yaml``
and the next checkpoints); any other change, or a ``model``/``data`` other than the run's, is
refused with the key named. Bad input (unknown names, a bad device, a run folder that already
holds a run or that another process is using, data that changed under a checkpoint) raises
:class:`UsageError`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import filelock
import torch

from ssmlab.config import DataConfig, ExperimentConfig, build_config, load_config, parse_overrides
from ssmlab.data.registry import check_name
from ssmlab.models import build_model, canonical_name, get_model_class
from ssmlab.train import checkpoint as ckpt
from ssmlab.train import distributed as dist_utils
from ssmlab.train.evaluation import eval_batch_rows, evaluate
from ssmlab.train.trainer import Trainer

DEFAULT_MODEL, DEFAULT_DATA = "tim4rec", "toy"
# Keys --resume may change: they neither change the weights' shapes, the data, the batches nor
# the meaning of the best value so far. Every other difference is refused.
RESUMABLE = frozenset(
    {
        "data.data_dir",
        "train.epochs",
        "train.patience",
        "train.lr",
        "train.grad_clip",
        "train.divergence_factor",
        "train.eval_every",
        "train.eval_batch_size",
        "train.log_every",
        "train.progress",
        "train.device",
        "train.amp",
    }
)


class UsageError(ValueError):
    """Bad input from the user: names, device, run folder, data (``ssmlab`` exits with 2)."""


def train(
    model: str | None = None,
    data: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    output: str | Path | None = None,
    dataset=None,
    *,
    resume: bool = False,
    data_dir: str | None = None,
    **trainer_kwargs,
) -> dict[str, Any]:
    """Train, test the best weights; returns ``{"model", "data", "valid": {...}, "test": {...}}``.

    A new run: the config of ``ssmlab.config.load_config(model, data, config_file, overrides)``
    (default model ``tim4rec``, data ``toy``) with ``data_dir`` on top; ``output`` must not hold
    a run yet. ``resume=True``: continue the run in ``output`` (:func:`resume_config`; ``model``
    and ``data`` default to the run's). ``overrides`` are dotted ``"train.epochs=3"`` strings;
    ``dataset`` an already loaded ``ssmlab.data.Dataset``; ``trainer_kwargs`` go to
    :class:`~ssmlab.train.trainer.Trainer` (``device``, ``progress``, ``verbose``).
    """
    output = Path(output) if output else None
    if not resume:
        model, data = model or DEFAULT_MODEL, data or DEFAULT_DATA
        check_names(model, data)
        if output is not None and (output / "last.pt").exists():
            raise UsageError(
                f"{output} already holds a run (last.pt); pass --resume to continue "
                "it, or choose another --output"
            )
        config = load_config(model, data, config_file, overrides)
        if data_dir:
            config.data.data_dir = data_dir
    elif output is None:
        raise UsageError("--resume needs --output DIR, the run folder to continue")
    else:
        config = resume_config(output, model, data, config_file, overrides, data_dir)
    check_device(trainer_kwargs.get("device") or config.train.device)
    with run_lock(output, enabled=dist_utils.env_info().is_main):
        trainer = Trainer(config, dataset=dataset, output=output, **trainer_kwargs)
        if resume:
            trainer.resume()
        return trainer.fit()


def check_names(model: str | None, data: str | None) -> None:
    """Unknown model or dataset -> :class:`UsageError` listing the known names (None: skip)."""
    try:
        if model is not None:
            get_model_class(model)
        if data is not None:
            check_name(data)
    except KeyError as err:
        raise UsageError(err.args[0]) from None


def resume_config(
    output: Path,
    model: str | None = None,
    data: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
) -> ExperimentConfig:
    """The saved config of the run in ``output`` with the allowed changes applied
    (:data:`RESUMABLE`); any other change is a :class:`UsageError` naming it. ``model``/``data``
    (None: the run's) must be the run's."""
    saved = ckpt.load_checkpoint(output / "last.pt")["config"]
    base = ExperimentConfig.from_dict(saved)
    if model is not None and canonical_name(model) != base.model_name:
        raise UsageError(
            f"--model {model}: {output} holds a {base.model_name} run; --resume continues "
            "it as it is (drop --model, or start a new run in another --output)"
        )
    if data is not None and DataConfig(name=data).name != base.data.name:
        raise UsageError(
            f"--data {data}: {output} holds a run on {base.data.name}; --resume continues "
            "it as it is (drop --data, or start a new run in another --output)"
        )
    layers = [{s: saved[s] for s in ("model", "data", "train")}]
    if config_file:
        from ssmlab.config import read_yaml

        layers.append(read_yaml(config_file))
    layers.append(parse_overrides(overrides))
    if data_dir:
        layers.append({"data": {"data_dir": data_dir}})
    config = build_config(base.model_name, layers)
    before, after = _flat(base.to_dict()), _flat(config.to_dict())
    changed = {k: (before.get(k), after.get(k)) for k in after if before.get(k) != after.get(k)}
    refused = sorted(set(changed) - RESUMABLE)
    if refused:
        shown = ", ".join(f"{k} ({changed[k][0]!r} -> {changed[k][1]!r})" for k in refused)
        raise UsageError(
            f"--resume cannot change {shown}: the checkpoint in {output} depends on it. "
            f"Start a new run in another --output, or change only {', '.join(sorted(RESUMABLE))}"
        )
    for key, (old, new) in sorted(changed.items()):
        print(f"resume: {key} {old!r} -> {new!r}", file=sys.stderr, flush=True)
    return config


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s in ("model", "data", "train") for k, v in config[s].items()}


def check_device(device: str | None) -> None:
    """A ``--device`` torch can use here, else :class:`UsageError` saying why."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise UsageError(f"unknown device {device!r} ({err}); use cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return
    if dev.type != "cuda":
        raise UsageError(f"device {device!r}: ssmlab trains on cpu or cuda (cuda:N)")
    if not torch.cuda.is_available():
        raise UsageError(
            f"device {device!r}: torch {torch.__version__} sees no GPU (CUDA build: "
            f"{torch.version.cuda or 'none'}); use --device cpu"
        )
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(
            f"device {device!r}: only {torch.cuda.device_count()} GPU(s), cuda:0.."
            f"cuda:{torch.cuda.device_count() - 1}"
        )


@contextlib.contextmanager
def run_lock(output: Path | None, enabled: bool = True):
    """Hold ``<output>/.lock`` while a run writes there: a second ``ssmlab train`` on the same
    folder is refused instead of mixing files. The OS drops the lock when the process dies
    (``kill -9`` included), so ``--resume`` never meets a stale lock."""
    if output is None or not enabled:
        yield
        return
    output.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(output / ".lock", timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise UsageError(
            f"another ssmlab process is using {output} (it holds {output / '.lock'}); "
            "wait for it to finish or choose another --output"
        ) from None
    try:
        yield
    finally:
        lock.release()


def evaluate_checkpoint(
    path: str | Path, data_dir: str | None = None, device: str | None = None, dataset=None
) -> dict[str, Any]:
    """Rebuild the model from a checkpoint's config and weights; valid and test metrics.

    ``path`` is a checkpoint file or a run folder (its ``best.pt``).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    state = ckpt.load_checkpoint(path)
    bad = ckpt.nonfinite_tensors(state["model"])
    if bad:
        raise ckpt.CheckpointError(
            f"{path} holds weights that are not finite (NaN or inf in {', '.join(bad[:5])}); "
            "it cannot be evaluated"
        )
    config = ExperimentConfig.from_dict(state["config"])
    if data_dir:
        config.data.data_dir = data_dir
    check_device(device)
    dev = dist_utils.resolve_device(device)
    dist_utils.flush_denormals(dev)
    if dataset is None:
        dataset = config.data.load()
    changes = ckpt.data_changes(state["data"], dataset) if "data" in state else []
    if dataset.n_items != state["n_items"] and not changes:
        changes = [f"items {state['n_items']} -> {dataset.n_items}"]
    if changes:
        raise UsageError(
            f"{path} was trained on other data than {config.data.name} holds now: "
            + "; ".join(changes)
        )
    model = build_model(
        config.model_name, dataset.n_items, config=config.model, dataset_users=dataset.n_users
    )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ckpt.CheckpointError(
            f"{path}: its weights do not fit the {config.model_name} model its config "
            f"describes: {err}"
        ) from None
    model.to(dev)
    split, tc = dataset.split(), config.train
    result = {"model": config.model_name, "data": config.data.name}
    for stage in ("valid", "test"):
        rows = eval_batch_rows(tc.eval_batch_size, dev)  # the trainer's batches and order:
        batches = split.eval_batches(stage, rows, config.max_len, bucket=tc.bucket)  # its sums
        result[stage] = evaluate(model, batches, dev, tc.ks)
    return result


__all__ = [
    "DEFAULT_DATA",
    "DEFAULT_MODEL",
    "RESUMABLE",
    "UsageError",
    "check_device",
    "check_names",
    "evaluate_checkpoint",
    "resume_config",
    "run_lock",
    "train",
]
