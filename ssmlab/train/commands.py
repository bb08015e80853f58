"""``ssmlab train`` and ``ssmlab eval``: argparse namespaces in, one JSON line out.

Both print exactly one line on stdout, ``{"model", "data", "valid": {...}, "test": {...}}``;
progress bars, epoch summaries and warnings go to stderr.

Exit codes (one error path, ``ssmlab.cli.main``): every expected failure prints one line
``ssmlab <cmd>: error: ...`` on stderr, without a traceback, and

* 2: bad input, :data:`USER_ERRORS`: unknown model or dataset, bad ``--set`` or ``--config``,
  missing, corrupt or malformed data files, a bad or mismatched checkpoint (other weights
  shape, other data, non-finite weights or scores), a bad ``--device``, a run folder that
  already holds a run or that another process is using, an override ``--resume`` cannot apply;
* 1: training failed, :data:`TRAINING_ERRORS`: a NaN/inf or diverging loss or non-finite
  weights (the last good checkpoint is left in place);
* 130: interrupted (``--resume`` continues).

Only a bug shows a traceback.

``--resume`` continues the run in ``--output`` with its saved config; ``--set``/``--config``
may change only :data:`RESUMABLE` keys (they are applied, e.g. a new ``train.lr`` replaces the
optimizer's rate, and recorded in ``config.yaml`` and the next checkpoints); any other change,
or a ``--model``/``--data`` other than the run's, is refused with the key named.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import filelock
import torch

from ssmlab.config import (
    ConfigError,
    DataConfig,
    ExperimentConfig,
    build_config,
    load_config,
    parse_overrides,
)
from ssmlab.data import REGISTRY as DATA_REGISTRY
from ssmlab.data import ChecksumError, DataFormatError, known_names
from ssmlab.metrics import NonFiniteScoresError
from ssmlab.models import build_model, get_model_class
from ssmlab.train import checkpoint as ckpt
from ssmlab.train import distributed as dist_utils
from ssmlab.train.evaluation import evaluate
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
    """Bad command-line input (exit code 2)."""


# "ssmlab <cmd>: error: ..." and exit 2 (OSError covers missing files and failed downloads).
USER_ERRORS = (
    UsageError,
    ConfigError,
    OSError,
    ChecksumError,
    DataFormatError,
    ckpt.CheckpointError,
)
# "ssmlab train: error: ..." and exit 1: the run failed, the last good checkpoint is kept.
TRAINING_ERRORS = (FloatingPointError,)  # NonFiniteLossError, DivergenceError, NonFiniteScores


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


def check_names(model: str | None, data: str | None) -> None:
    """Unknown model or dataset -> :class:`UsageError` listing the known names (None: skip)."""
    if model is not None:
        try:
            get_model_class(model)
        except KeyError as err:
            raise UsageError(err.args[0]) from None
    if (
        data is not None
        and data != "toy"
        and not data.startswith("csv:")
        and data not in DATA_REGISTRY
    ):
        raise UsageError(f"unknown dataset {data!r}; known datasets: {', '.join(known_names())}")


def experiment_for(args: argparse.Namespace) -> tuple[ExperimentConfig, Path | None]:
    """The config of a new run, or of the run being resumed (with ``--set`` applied on top)."""
    output = Path(args.output) if args.output else None
    if not args.resume:
        model, data = args.model or DEFAULT_MODEL, args.data or DEFAULT_DATA
        check_names(model, data)
        if output is not None and (output / "last.pt").exists():
            raise UsageError(
                f"{output} already holds a run (last.pt); pass --resume to continue "
                "it, or choose another --output"
            )
        config = load_config(model, data, args.config, args.overrides)
        if args.data_dir:
            config.data.data_dir = args.data_dir
        return config, output
    if output is None:
        raise UsageError("--resume needs --output DIR, the run folder to continue")
    return resume_config(args, output), output


def resume_config(args: argparse.Namespace, output: Path) -> ExperimentConfig:
    """The saved config of the run in ``output`` with the allowed changes of ``args`` applied
    (:data:`RESUMABLE`); any other change is a :class:`UsageError` naming it."""
    saved = ckpt.load_checkpoint(output / "last.pt")["config"]
    base = ExperimentConfig.from_dict(saved)
    if args.model is not None and args.model.lower().replace("-", "_") != base.model_name:
        raise UsageError(
            f"--model {args.model}: {output} holds a {base.model_name} run; --resume continues "
            "it as it is (drop --model, or start a new run in another --output)"
        )
    if args.data is not None and DataConfig(name=args.data).name != base.data.name:
        raise UsageError(
            f"--data {args.data}: {output} holds a run on {base.data.name}; --resume continues "
            "it as it is (drop --data, or start a new run in another --output)"
        )
    layers = [{s: saved[s] for s in ("model", "data", "train")}]
    if args.config:
        from ssmlab.config import read_yaml

        layers.append(read_yaml(args.config))
    layers.append(parse_overrides(args.overrides))
    if args.data_dir:
        layers.append({"data": {"data_dir": args.data_dir}})
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


def main_train(args: argparse.Namespace) -> int:
    """``ssmlab train``: train, test the best weights, print one JSON line (rank 0)."""
    info = dist_utils.env_info()
    try:
        config, output = experiment_for(args)
        check_device(args.device or config.train.device)
        with run_lock(output, enabled=info.is_main):
            trainer = Trainer(config, output=output, device=args.device)
            if args.resume:
                trainer.resume()
            result = trainer.fit()
    except TRAINING_ERRORS as err:
        return _fail("train", err, 1)
    except KeyboardInterrupt:
        hint = (
            f"; `ssmlab train --resume --output {args.output}` continues from its last.pt"
            if args.output
            else ""
        )
        return _fail("train", f"interrupted{hint}", 130)
    finally:
        dist_utils.cleanup()
    if info.is_main:
        print(json.dumps(result), flush=True)
    return 0


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
    model = build_model(config.model_name, dataset.n_items, config=config.model)
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
        batches = split.eval_batches(
            stage, tc.eval_batch_size, config.max_len, bucket=tc.bucket
        )  # the trainer's order: the same sums, the same numbers to the last digit
        result[stage] = evaluate(model, batches, dev, tc.ks)
    return result


def main_eval(args: argparse.Namespace) -> int:
    """``ssmlab eval CKPT``: print the checkpoint's valid and test metrics as one JSON line."""
    try:
        with torch.inference_mode():
            result = evaluate_checkpoint(args.checkpoint, args.data_dir, args.device)
    except NonFiniteScoresError as err:  # finite weights, broken forward pass: a bad checkpoint
        raise ckpt.CheckpointError(f"{args.checkpoint}: {err}") from None
    print(json.dumps(result), flush=True)
    return 0


def _fail(command: str, err: Exception | str, code: int) -> int:
    from ssmlab.cli import one_line

    print(f"ssmlab {command}: error: {one_line(err)}", file=sys.stderr, flush=True)
    return code


__all__ = [
    "RESUMABLE",
    "TRAINING_ERRORS",
    "USER_ERRORS",
    "UsageError",
    "check_device",
    "check_names",
    "evaluate_checkpoint",
    "experiment_for",
    "main_eval",
    "main_train",
    "resume_config",
    "run_lock",
]
