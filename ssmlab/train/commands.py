"""``ssmlab train`` and ``ssmlab eval``: argparse namespaces in, one JSON line out.

Both print exactly one line on stdout, ``{"model", "data", "valid": {...}, "test": {...}}``;
progress bars, epoch summaries and warnings go to stderr. Bad input (unknown model or dataset,
bad ``--set``, missing files, a run folder that already holds a run) prints ``ssmlab <cmd>:
error: ...`` and returns 2, without a traceback; a NaN/inf loss returns 1 and leaves the last
good checkpoint in place.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from ssmlab.config import ConfigError, ExperimentConfig, build_config, load_config, parse_overrides
from ssmlab.data import REGISTRY as DATA_REGISTRY
from ssmlab.data import ChecksumError, DataFormatError, known_names, load_dataset
from ssmlab.models import build_model, get_model_class
from ssmlab.train import checkpoint as ckpt
from ssmlab.train import distributed as dist_utils
from ssmlab.train.loop import NonFiniteLossError, data_objective, evaluate
from ssmlab.train.trainer import Trainer

# Reported as "error: ..." with exit code 2 (OSError covers missing files and failed downloads).
USER_ERRORS = (ConfigError, OSError, ChecksumError, DataFormatError, ckpt.CheckpointError)


class UsageError(ValueError):
    """Bad command-line input (exit code 2)."""


def check_names(model: str, data: str) -> None:
    """Unknown model or dataset -> :class:`UsageError` listing the known names."""
    try:
        get_model_class(model)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    if data != "toy" and not data.startswith("csv:") and data not in DATA_REGISTRY:
        raise UsageError(f"unknown dataset {data!r}; known datasets: {', '.join(known_names())}")


def experiment_for(args: argparse.Namespace) -> tuple[ExperimentConfig, Path | None]:
    """The config of a new run, or of the run being resumed (with ``--set`` applied on top)."""
    output = Path(args.output) if args.output else None
    if not args.resume:
        check_names(args.model, args.data)
        if output is not None and (output / "last.pt").exists():
            raise UsageError(
                f"{output} already holds a run (last.pt); pass --resume to continue "
                "it, or choose another --output"
            )
        config = load_config(args.model, args.data, args.config, args.overrides)
    else:
        if output is None:
            raise UsageError("--resume needs --output DIR, the run folder to continue")
        state = ckpt.load_checkpoint(output / "last.pt")
        saved = state["config"]
        layers = [{s: saved[s] for s in ("model", "data", "train")}]
        if args.config:
            from ssmlab.config import read_yaml

            layers.append(read_yaml(args.config))
        layers.append(parse_overrides(args.overrides))
        config = build_config(saved["model_name"], layers)
    if args.data_dir:
        config.data.data_dir = args.data_dir
    return config, output


def main_train(args: argparse.Namespace) -> int:
    """``ssmlab train``: train, test the best weights, print one JSON line (rank 0)."""
    info = dist_utils.env_info()
    try:
        config, output = experiment_for(args)
        trainer = Trainer(config, output=output, device=args.device)
        if args.resume:
            trainer.resume()
        result = trainer.fit()
    except (UsageError, *USER_ERRORS) as err:
        return _fail("train", err, 2)
    except NonFiniteLossError as err:
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
    config = ExperimentConfig.from_dict(state["config"])
    if data_dir:
        config.data.data_dir = data_dir
    dev = dist_utils.resolve_device(device)
    if dataset is None:
        dataset = load_dataset(config.data.name, data_dir=config.data.data_dir)
    if dataset.n_items != state["n_items"]:
        raise UsageError(
            f"{path} was trained on {state['n_items']} items; {config.data.name} "
            f"now has {dataset.n_items}"
        )
    model = build_model(config.model_name, dataset.n_items, config=config.model)
    model.load_state_dict(state["model"])
    model.to(dev)
    split, tc = dataset.split(), config.train
    packed = data_objective(model, tc.objective) == "packed"
    result = {"model": config.model_name, "data": config.data.name}
    for stage in ("valid", "test"):
        batches = split.eval_batches(stage, tc.eval_batch_size, config.max_len, packed=packed)
        result[stage] = evaluate(model, batches, dev, tc.ks)
    return result


def main_eval(args: argparse.Namespace) -> int:
    """``ssmlab eval CKPT``: print the checkpoint's valid and test metrics as one JSON line."""
    try:
        with torch.inference_mode():
            result = evaluate_checkpoint(args.checkpoint, args.data_dir, args.device)
    except (UsageError, *USER_ERRORS) as err:
        return _fail("eval", err, 2)
    print(json.dumps(result), flush=True)
    return 0


def _fail(command: str, err: Exception, code: int) -> int:
    print(f"ssmlab {command}: error: {err}", file=sys.stderr, flush=True)
    return code


__all__ = [
    "UsageError",
    "check_names",
    "evaluate_checkpoint",
    "experiment_for",
    "main_eval",
    "main_train",
]
