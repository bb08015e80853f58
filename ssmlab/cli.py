"""The ``ssmlab`` command line: train, eval, data info, bench.

Each subcommand imports its module lazily, so ``ssmlab --help`` stays fast. The handlers turn
the options into plain arguments of library functions (``ssmlab.train.train``,
``ssmlab.train.evaluate_checkpoint``, ``ssmlab.data.info_table``, ``ssmlab.bench.main``).

``ssmlab train`` and ``ssmlab eval`` print exactly one line on stdout, ``{"model", "data",
"valid": {...}, "test": {...}}``; progress bars, epoch summaries and warnings go to stderr.
``--resume`` continues the run in ``--output`` with its saved config; ``--set``/``--config``
may change only ``ssmlab.train.runs.RESUMABLE`` keys.

Exit codes (one error path, :func:`main`): every expected failure prints one line
``ssmlab <cmd>: error: ...`` on stderr, without a traceback, and

* 2: bad input (:func:`user_errors`): unknown model or dataset, bad ``--set`` or ``--config``,
  missing, corrupt or malformed data files, a bad or mismatched checkpoint (other weights
  shape, other data, non-finite weights or scores), a bad ``--device``, a run folder that
  already holds a run or that another process is using, an override ``--resume`` cannot apply;
* 1: training failed (:data:`TRAINING_ERRORS`): a NaN/inf or diverging loss or non-finite
  weights (the last good checkpoint is left in place);
* 130: interrupted (``--resume`` continues).

Only a bug shows a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

# "ssmlab train: error: ..." and exit 1: the run failed, the last good checkpoint is kept.
TRAINING_ERRORS = (FloatingPointError,)  # NonFiniteLossError, DivergenceError, NonFiniteScores


def user_errors() -> tuple[type[Exception], ...]:
    """The failures that are bad input: ``ssmlab <cmd>: error: ...`` and exit 2 (``OSError``
    covers missing files and failed downloads)."""
    from ssmlab.config import ConfigError
    from ssmlab.data import ChecksumError, DataFormatError
    from ssmlab.train import CheckpointError, UsageError

    return (UsageError, ConfigError, OSError, ChecksumError, DataFormatError, CheckpointError)


def _data_info(args: argparse.Namespace) -> int:
    from ssmlab.data import info_table
    from ssmlab.train.runs import UsageError, check_names

    check_names(None, args.name)
    csv = {}
    if args.columns is not None or args.sep != "," or args.no_header or args.time_unit != "s":
        if not args.name.startswith("csv:"):
            raise UsageError("--columns, --sep, --no-header and --time-unit are for csv:PATH")
        csv = {"sep": args.sep, "header": not args.no_header, "time_unit": args.time_unit}
        if args.columns is not None:
            csv["columns"] = _csv_columns(args.columns, header=not args.no_header)
    print(info_table(args.name, data_dir=args.data_dir, **csv))
    return 0


def _csv_columns(text: str, header: bool) -> tuple:
    from ssmlab.train.runs import UsageError

    columns = tuple(c.strip() for c in text.split(","))
    if len(columns) != 3 or not all(columns):
        raise UsageError(f"--columns needs USER,ITEM,TIME (3 names), got {text!r}")
    if header:
        return columns
    if not all(c.isdigit() for c in columns):
        raise UsageError(f"with --no-header, --columns are 0-based positions like 0,1,3: {text!r}")
    return tuple(int(c) for c in columns)


def _bench(args: argparse.Namespace) -> int:
    from ssmlab import bench

    return bench.main(args.what, args.rest)


def _train(args: argparse.Namespace) -> int:
    """``ssmlab train``: train, test the best weights, print one JSON line (rank 0)."""
    from ssmlab.train import distributed, train

    info = distributed.env_info()
    try:
        result = train(
            args.model,
            args.data,
            args.config,
            args.overrides,
            args.output,
            resume=args.resume,
            data_dir=args.data_dir,
            device=args.device,
        )
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
        distributed.cleanup()
    if info.is_main:
        print(json.dumps(result), flush=True)
    return 0


def _eval(args: argparse.Namespace) -> int:
    """``ssmlab eval CKPT``: print the checkpoint's valid and test metrics as one JSON line."""
    import torch

    from ssmlab.metrics import NonFiniteScoresError
    from ssmlab.train import CheckpointError, evaluate_checkpoint

    try:
        with torch.inference_mode():
            result = evaluate_checkpoint(args.checkpoint, args.data_dir, args.device)
    except NonFiniteScoresError as err:  # finite weights, broken forward pass: a bad checkpoint
        raise CheckpointError(f"{args.checkpoint}: {err}") from None
    print(json.dumps(result), flush=True)
    return 0


def _fail(command: str, err: Exception | str, code: int) -> int:
    print(f"ssmlab {command}: error: {one_line(err)}", file=sys.stderr, flush=True)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssmlab",
        description="State space models for sequential recommendation: train, evaluate, inspect.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model (default: tim4rec on the toy dataset)")
    p.add_argument("--model", default=None, help="registry name, e.g. tim4rec (default), sasrec")
    p.add_argument(
        "--data", default=None, help="dataset name, e.g. toy (default), ml-100k, amazon-beauty"
    )
    p.add_argument("--config", default=None, help="YAML file with overrides")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dotted override, e.g. --set train.epochs=5 (repeatable)",
    )
    p.add_argument("--output", default=None, help="run folder: checkpoints, logs, metrics.json")
    p.add_argument("--data-dir", default=None, help="local raw-data folder (else SSMLAB_DATA_DIR)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument(
        "--resume", action="store_true", help="resume from the run folder's last checkpoint"
    )
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on valid and test")
    p.add_argument("checkpoint")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default=None)
    p.set_defaults(func=_eval)

    p = sub.add_parser("data", help="dataset tools")
    dsub = p.add_subparsers(dest="data_command", required=True)
    q = dsub.add_parser("info", help="print raw and 5-core statistics of a dataset")
    q.add_argument("name", help="toy, ml-100k, amazon-beauty, ml-1m, kuairand or csv:PATH")
    q.add_argument("--data-dir", default=None)
    q.add_argument(
        "--columns",
        default=None,
        metavar="USER,ITEM,TIME",
        help="csv:PATH: the user, item and time column names (default user_id,item_id,"
        "timestamp), or 0-based positions with --no-header",
    )
    q.add_argument("--sep", default=",", help="csv:PATH: field separator (default ,)")
    q.add_argument("--no-header", action="store_true", help="csv:PATH: no header line")
    q.add_argument(
        "--time-unit", default="s", choices=["s", "ms"], help="csv:PATH: seconds or milliseconds"
    )
    q.set_defaults(func=_data_info)

    p = sub.add_parser("bench", help="benchmarks (results go to benchmarks/results/)")
    p.add_argument("what", choices=["kernels", "train"])
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command + (f" {args.data_command}" if args.command == "data" else "")
    try:
        return int(args.func(args) or 0)
    except Exception as err:
        if not isinstance(err, user_errors()):
            raise  # a bug: keep the traceback
        print(f"ssmlab {command}: error: {one_line(err)}", file=sys.stderr, flush=True)
        return 2


def one_line(err: BaseException | str) -> str:
    """An error message on one line (torch and pandas messages span several)."""
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
