"""Training and evaluation: the Trainer, checkpoints, torchrun/DDP, and the CLI commands.

>>> from ssmlab.train import train
>>> result = train("gru4rec", "toy", overrides=["train.epochs=2"])  # doctest: +SKIP
>>> result["test"]["ndcg@10"]  # doctest: +SKIP

Modules: :mod:`~ssmlab.train.trainer` (Trainer, train), :mod:`~ssmlab.train.evaluation`
(batched evaluation, the pieces of one step), :mod:`~ssmlab.train.checkpoint` (atomic files,
RNG states), :mod:`~ssmlab.train.distributed` (torchrun), :mod:`~ssmlab.train.commands`
(``ssmlab train``, ``ssmlab eval``).
"""

from ssmlab.train.checkpoint import load_checkpoint
from ssmlab.train.commands import evaluate_checkpoint, main_eval, main_train
from ssmlab.train.evaluation import NonFiniteLossError, evaluate
from ssmlab.train.trainer import Trainer, train

__all__ = [
    "NonFiniteLossError",
    "Trainer",
    "evaluate",
    "evaluate_checkpoint",
    "load_checkpoint",
    "main_eval",
    "main_train",
    "train",
]
