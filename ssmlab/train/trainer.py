"""The Trainer: CE over all items, early stopping on valid NDCG@10, best checkpoint, then test.

One epoch = one pass over the training batches of the configured objective (``"last"``: RecBole
prefix augmentation, the papers' protocol; ``"all"``: every position predicts its next item).
After each evaluation the run folder gets ``last.pt`` (always), ``best.pt`` (on improvement)
and one line of ``log.jsonl``; ``metrics.json`` holds the final valid/test numbers. A killed run
resumes from ``last.pt`` exactly: model, optimizer, counters and every RNG (python, numpy, torch,
the data-order generator) are restored, so the next steps see the same batches and the same
dropout masks as an uninterrupted run.

>>> from ssmlab.config import load_config
>>> trainer = Trainer(load_config("gru4rec", "toy"), output="runs/demo")  # doctest: +SKIP
>>> result = trainer.fit()  # {"model", "data", "valid": {...}, "test": {...}}  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ssmlab.config import ExperimentConfig
from ssmlab.models import build_model
from ssmlab.train import checkpoint as ckpt
from ssmlab.train import distributed as dist_utils
from ssmlab.train.evaluation import (
    LossModule,
    NonFiniteLossError,
    batch_layout,
    eval_batch_rows,
    evaluate,
    make_optimizer,
    to_device,
)

EVENTS = ("on_step_end", "on_epoch_end")


class DivergenceError(FloatingPointError):
    """Training diverged: a finite loss far above chance, or weights that are not finite."""


class Trainer:
    """Train ``config.model_name`` on ``config.data.name`` (see the module docstring).

    Args:
        config: the experiment (``ssmlab.config.load_config``).
        dataset: an already loaded ``ssmlab.data.Dataset`` (else ``config.data.load()``).
        output: run folder for checkpoints and logs; ``None`` keeps the best weights in memory.
        device: overrides ``config.train.device``; default cuda when available, else cpu.
        progress: tqdm bars; ``None`` follows ``config.train.progress`` and whether stderr is a TTY.
        verbose: one summary line per epoch on stderr (rank 0 only).
    """

    def __init__(
        self,
        config: ExperimentConfig,
        dataset=None,
        output: str | Path | None = None,
        device: str | None = None,
        progress: bool | None = None,
        verbose: bool = True,
    ):
        self.config = config
        tc = config.train
        self.info, self.device = dist_utils.init_distributed(device or tc.device)
        dist_utils.flush_denormals(self.device)
        self.output = Path(output) if output is not None else None
        self.verbose = verbose and self.info.is_main
        if progress is None:
            progress = tc.progress and sys.stderr.isatty()
        self.progress = bool(progress) and self.info.is_main
        self.dataset = dataset if dataset is not None else config.data.load()
        self.split = self.dataset.split()

        ckpt.seed_everything(tc.seed)  # same initial weights on every rank
        users = self.dataset.n_users
        self.model = build_model(
            config.model_name, self.dataset.n_items, config=config.model, dataset_users=users
        )
        config.model = self.model.config  # with the sizes taken from the data (checkpoints)
        self.model.to(self.device)
        if self.info.rank:  # independent dropout streams per rank
            torch.manual_seed(tc.seed + self.info.rank)
        loss_module = LossModule(self.model, tc.objective)
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            loss_module = DistributedDataParallel(
                loss_module, device_ids=ids, find_unused_parameters=tc.find_unused_parameters
            )
        self.loss_module = loss_module
        self.optimizer = make_optimizer(self.model, tc.lr, tc.weight_decay)
        self.data_generator = torch.Generator().manual_seed(tc.seed)  # same order on all ranks
        self.train_batches = self.split.train_batches(
            batch_layout(self.model, tc.objective),
            batch_size=tc.batch_size,
            max_len=config.max_len,
            shuffle=True,
            generator=self.data_generator,
            num_replicas=self.info.world_size,
            rank=self.info.rank,
            bucket=tc.bucket,
        )
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimizer steps
        self.best = {"metric": tc.metric, "value": -math.inf, "epoch": 0}
        self.best_valid: dict[str, float] = {}
        self.bad_epochs = 0
        self.stopped = False
        self.history: list[dict[str, Any]] = []
        self._best_state: dict[str, torch.Tensor] | None = None
        self.callbacks: dict[str, list[Callable]] = defaultdict(list)
        self._saved_epoch: int | None = None  # epoch of the last.pt written or resumed from

    # -- callbacks (minGPT style) -------------------------------------------------------------
    def add_callback(self, event: str, fn: Callable[..., None]) -> None:
        """Call ``fn(trainer, **info)`` on ``"on_step_end"`` (``loss``, ``epoch``, ``step``) or
        ``"on_epoch_end"`` (``record``, the log line)."""
        if event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
        self.callbacks[event].append(fn)

    def _trigger(self, event: str, **info) -> None:
        for fn in self.callbacks[event]:
            fn(self, **info)

    # -- training -----------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train until ``epochs`` or early stop, then test the best weights.

        Returns ``{"model", "data", "valid": best valid metrics, "test": test metrics}``.
        """
        tc = self.config.train
        if self.output is not None and self.info.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            (self.output / "config.yaml").write_text(self.config.to_yaml())
        while not self.stopped and self.epoch < tc.epochs:
            start, cpu_start = time.perf_counter(), time.process_time()
            train_loss = self.train_epoch()
            self.epoch += 1
            train_seconds = time.perf_counter() - start
            train_cpu_seconds = time.process_time() - cpu_start  # all threads of this process
            valid = None
            if self.epoch % tc.eval_every == 0 or self.epoch == tc.epochs:
                valid = self.evaluate("valid")
                self._update_best(valid)
            eval_seconds = time.perf_counter() - start - train_seconds
            best = self.best["value"] if self.best["epoch"] else None  # JSON has no -inf
            record = {
                "epoch": self.epoch,
                "step": self.step,
                "train_loss": train_loss,
                "valid": valid,
                "best_epoch": self.best["epoch"],
                f"best_{tc.metric}": best,
                "seconds": round(time.perf_counter() - start, 3),
                "train_seconds": round(train_seconds, 3),
                "train_cpu_seconds": round(train_cpu_seconds, 3),
                "eval_seconds": round(eval_seconds, 3),
            }
            self.history.append(record)
            self.save(self._ckpt_path("last.pt"))
            self._log(record)
            self._trigger("on_epoch_end", record=record)
        return self.finish()

    def train_epoch(self) -> float:
        """One pass over this rank's training batches; returns the mean loss (over ranks)."""
        tc = self.config.train
        self.model.train()
        total = len(self.train_batches)
        if tc.steps_per_epoch is not None:
            total = min(total, tc.steps_per_epoch)
        bar = tqdm(
            total=total,
            desc=f"epoch {self.epoch + 1}",
            file=sys.stderr,
            leave=False,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        amp = tc.amp and self.device.type == "cuda"
        loss_sum, steps = 0.0, 0
        for i, batch in enumerate(self.train_batches):
            if i >= total:
                break
            batch = to_device(batch, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
                loss = self.loss_module(batch)
            value = dist_utils.all_reduce_sum(loss.detach().float().clone()) / self.info.world_size
            value = float(value)
            self._check_loss(value, i + 1, total)  # the reduced value: all ranks stop together
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
            self.optimizer.step()
            self.step += 1
            loss_sum, steps = loss_sum + value, steps + 1
            bar.update(1)
            if tc.log_every and steps % tc.log_every == 0:
                bar.set_postfix(loss=f"{loss_sum / steps:.4f}")
            self._trigger("on_step_end", loss=value, epoch=self.epoch + 1, step=self.step)
        bar.close()
        self._check_finite_weights(f"after epoch {self.epoch + 1}")
        return loss_sum / max(steps, 1)

    def evaluate(self, stage: str = "valid") -> dict[str, float]:
        """Full-ranking hr/ndcg/mrr@K on ``"valid"`` or ``"test"`` with the current weights."""
        tc = self.config.train
        rows = eval_batch_rows(tc.eval_batch_size, self.device)
        batches = self.split.eval_batches(stage, rows, self.config.max_len, bucket=tc.bucket)
        bar = tqdm(
            total=len(batches),
            desc=stage,
            file=sys.stderr,
            leave=False,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        metrics = evaluate(self.model, batches, self.device, tc.ks, self.info, progress=bar)
        bar.close()
        return metrics

    def finish(self) -> dict[str, Any]:
        """Load the best weights (if any epoch was evaluated), test them, write metrics.json."""
        if self.best["epoch"] > 0:
            self.load_best_weights()
            valid = self.best_valid
        else:
            valid = self.evaluate("valid")
        result = {
            "model": self.config.model_name,
            "data": self.config.data.name,
            "valid": valid,
            "test": self.evaluate("test"),
        }
        if self.output is not None and self.info.is_main:
            path = self.output / "metrics.json"
            tmp = path.with_name(".metrics.json.tmp")
            tmp.write_text(json.dumps(result, indent=2) + "\n")
            tmp.replace(path)
        return result

    def _update_best(self, valid: dict[str, float]) -> None:
        """Early stopping. ``"strict"``: a better value must be larger; stop after
        ``patience`` evaluations without one. ``"recbole"`` (RecBole 1.2
        ``utils.early_stopping`` on metrics rounded to 4 decimals, ``evaluator/base_metric.py``):
        an equal value counts as better (the later epoch is kept); stop after ``patience + 1``
        evaluations without one (RecBole's ``stopping_step`` = ``patience``)."""
        tc = self.config.train
        value = valid[tc.metric]
        if tc.early_stop == "recbole":
            value = round(value, 4)
            better = value >= self.best["value"]
        else:
            better = value > self.best["value"]
        if better:
            self.best = {"metric": self.config.train.metric, "value": value, "epoch": self.epoch}
            self.best_valid = dict(valid)
            self.bad_epochs = 0
            if self.output is None:
                self._best_state = {
                    k: v.detach().clone() for k, v in self.model.state_dict().items()
                }
            else:
                self.save(self._ckpt_path("best.pt"), valid=valid)
        else:
            self.bad_epochs += 1
            limit = tc.patience if tc.early_stop == "strict" else (tc.patience or 0) + 1
            if tc.patience is not None and self.bad_epochs >= limit:
                self.stopped = True
                if self.verbose:
                    tqdm.write(
                        f"early stop after epoch {self.epoch}: no better valid "
                        f"{self.best['metric']} for {self.bad_epochs} evaluation(s)",
                        file=sys.stderr,
                    )

    def load_best_weights(self) -> None:
        """Put the best weights back into the model (from memory, or rank 0 reads ``best.pt``
        and broadcasts it, so other nodes need not see the run folder)."""
        if self._best_state is not None:
            self.model.load_state_dict(self._best_state)
            return
        if self.info.is_main:
            path = self._ckpt_path("best.pt")
            if path is None or not path.is_file():
                raise FileNotFoundError(f"no best weights: {path} is missing")
            self.model.load_state_dict(ckpt.load_checkpoint(path)["model"])
        dist_utils.broadcast_tensors(list(self.model.state_dict().values()))

    # -- checkpoints --------------------------------------------------------------------------
    def state(self, valid: dict[str, float] | None = None) -> dict[str, Any]:
        """Everything :meth:`resume` needs, as plain values (see ``checkpoint.py``)."""
        rng = dist_utils.gather_objects(ckpt.rng_state(self.data_generator))
        return {
            "format": ckpt.FORMAT,
            "config": self.config.to_dict(),
            "n_items": self.dataset.n_items,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best": dict(self.best),
            "best_valid": dict(self.best_valid),
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "valid": dict(valid or {}),
            "history": list(self.history),
            "rng": rng,
            "data": ckpt.data_record(self.dataset),
        }

    def save(self, path: Path | None, valid: dict[str, float] | None = None) -> None:
        """Write a checkpoint atomically (rank 0; the RNG gather involves every rank)."""
        if path is None:
            return
        self._check_finite_weights(f"before writing {path}")
        state = self.state(valid)
        if self.info.is_main:
            ckpt.atomic_save(state, path)
        if path.name == "last.pt":
            self._saved_epoch = self.epoch
        dist_utils.barrier()

    def resume(self, path: str | Path | None = None) -> None:
        """Continue from ``path`` (default ``<output>/last.pt``) exactly where it stopped."""
        path = Path(path) if path is not None else self._ckpt_path("last.pt")
        if path is None:
            raise ValueError("resume needs a checkpoint path or an output folder")
        state = ckpt.load_checkpoint(path)
        saved_data = state.get("data")  # absent before the dataset fingerprint was recorded
        changes = ckpt.data_changes(saved_data, self.dataset) if saved_data else []
        if state["n_items"] != self.dataset.n_items and not changes:
            changes = [f"items {state['n_items']} -> {self.dataset.n_items}"]
        if changes:
            raise ckpt.CheckpointError(
                f"{path} was trained on other data than {self.dataset.name} holds now: "
                + "; ".join(changes)
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ckpt.CheckpointError(
                f"{path} does not fit the {self.config.model_name} model of this config: {err}"
            ) from None
        for group in self.optimizer.param_groups:  # a changed train.lr applies from here on
            group["lr"] = self.config.train.lr
        self.epoch, self.step = state["epoch"], state["step"]
        self.best, self.best_valid = dict(state["best"]), dict(state["best_valid"])
        self.bad_epochs, self.stopped = state["bad_epochs"], state["stopped"]
        self.history = list(state["history"])
        self._saved_epoch = self.epoch
        rng = state["rng"]
        ckpt.set_rng_state(
            rng[self.info.rank] if len(rng) == self.info.world_size else rng[0], self.data_generator
        )

    def _ckpt_path(self, name: str) -> Path | None:
        return None if self.output is None else self.output / name

    def _last_good_message(self) -> str:
        path = self._ckpt_path("last.pt")
        if path is not None and self._saved_epoch is not None and path.is_file():
            return (
                f"The last good checkpoint is {path} (epoch {self._saved_epoch}); it is "
                f"unchanged, and `ssmlab train --resume --output {self.output}` continues from "
                "it (lower train.lr with --set)."
            )
        return "No checkpoint was written before the failure."

    # -- guards: a failed run stops with a clear error and never writes bad weights ------------
    def _check_loss(self, value: float, step: int, total: int) -> None:
        """Stop on a non-finite or a diverging training loss (``step`` of ``total`` this epoch).

        Divergence rule: a model that scores every item alike has the cross-entropy of chance,
        ln(n_items); every registered model starts there (1.00-1.05 x ln(n_items) on toy) and
        only goes down while it learns. A step loss above ``train.divergence_factor`` (default
        10) times ``max(ln n_items, 1)`` is far worse than chance and does not come back (GRU4Rec
        with lr=1e6 jumps to ~1e13 at step 2): training stops with :class:`DivergenceError`.
        The rule holds from the first step (no warm-up needed); ``divergence_factor=None`` keeps
        only the NaN/inf check.
        """
        where = (
            f"at epoch {self.epoch + 1}, step {step} of {total} (global step {self.step + 1}); "
            "stopped. "
        )
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"training loss is {value} {where}" + self._last_good_message()
            )
        factor = self.config.train.divergence_factor
        chance = max(math.log(self.dataset.n_items), 1.0)
        if factor is not None and value > factor * chance:
            raise DivergenceError(
                f"training diverged: loss {value:.4g} > {factor:g} x chance level "
                f"max(ln n_items, 1) = {chance:.3f} (train.divergence_factor) {where}"
                + self._last_good_message()
            )

    def _check_finite_weights(self, when: str) -> None:
        """Raise :class:`DivergenceError` when a weight is NaN or inf (checked after every epoch
        and before writing any checkpoint); ``when`` says where, for the message."""
        bad = ckpt.nonfinite_tensors(self.model.state_dict())
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise DivergenceError(
                f"the weights are not finite {when} (NaN or inf in {shown}); stopped, "
                "nothing was saved. " + self._last_good_message()
            )

    def _log(self, record: dict[str, Any]) -> None:
        if not self.info.is_main:
            return
        if self.output is not None:
            with open(self.output / "log.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")
        if self.verbose:
            metric = self.config.train.metric
            valid = record["valid"]
            shown = f", valid {metric} {valid[metric]:.4f}" if valid else ""
            tqdm.write(
                f"epoch {record['epoch']}: loss {record['train_loss']:.4f}{shown} "
                f"(best {self.best['value']:.4f} @ {self.best['epoch']}), "
                f"{record['seconds']:.1f} s",
                file=sys.stderr,
            )


__all__ = ["EVENTS", "DivergenceError", "NonFiniteLossError", "Trainer"]
