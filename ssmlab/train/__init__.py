"""Training and evaluation: the Trainer and its pieces, checkpoints, torchrun/DDP, runs by name.

>>> from ssmlab.train import train
>>> result = train("gru4rec", "toy", overrides=["train.epochs=2"])  # doctest: +SKIP
>>> result["test"]["ndcg@10"]  # doctest: +SKIP

Modules: :mod:`~ssmlab.train.trainer` (the Trainer: the loop, early stopping, checkpoints of a
run), :mod:`~ssmlab.train.evaluation` (batched evaluation, the pieces of one step),
:mod:`~ssmlab.train.checkpoint` (atomic files, RNG states), :mod:`~ssmlab.train.distributed`
(torchrun), :mod:`~ssmlab.train.runs` (``train`` and ``evaluate_checkpoint`` by name and run
folder, what ``ssmlab train`` / ``ssmlab eval`` call). The command line itself is
:mod:`ssmlab.cli`.
"""

from ssmlab.train.checkpoint import CheckpointError, load_checkpoint, seed_everything
from ssmlab.train.evaluation import (
    LossModule,
    NonFiniteLossError,
    batch_layout,
    eval_batch_rows,
    evaluate,
    evaluate_tie_groups,
    make_optimizer,
    to_device,
)
from ssmlab.train.runs import UsageError, evaluate_checkpoint, train
from ssmlab.train.trainer import DivergenceError, Trainer

__all__ = [
    "CheckpointError",
    "DivergenceError",
    "LossModule",
    "NonFiniteLossError",
    "Trainer",
    "UsageError",
    "batch_layout",
    "eval_batch_rows",
    "evaluate",
    "evaluate_checkpoint",
    "evaluate_tie_groups",
    "load_checkpoint",
    "make_optimizer",
    "seed_everything",
    "to_device",
    "train",
]
