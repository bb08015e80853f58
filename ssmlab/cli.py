"""The ``ssmlab`` command line: train, eval, data info, bench.

Each subcommand imports its module lazily, so ``ssmlab --help`` stays fast. One error path:
:func:`main` turns every expected failure (``ssmlab.train.commands.USER_ERRORS``: bad data,
config, checkpoint or device) into one ``ssmlab <cmd>: error: ...`` line on stderr and exit
code 2; only a bug shows a traceback.
"""

from __future__ import annotations

import argparse
import sys


def _data_info(args: argparse.Namespace) -> int:
    from ssmlab.data import info_table
    from ssmlab.train.commands import UsageError, check_names

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
    from ssmlab.train.commands import UsageError

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
    from ssmlab import train

    return train.main_train(args)


def _eval(args: argparse.Namespace) -> int:
    from ssmlab import train

    return train.main_eval(args)


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
        from ssmlab.train.commands import USER_ERRORS

        if not isinstance(err, USER_ERRORS):
            raise  # a bug: keep the traceback
        print(f"ssmlab {command}: error: {one_line(err)}", file=sys.stderr, flush=True)
        return 2


def one_line(err: BaseException | str) -> str:
    """An error message on one line (torch and pandas messages span several)."""
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
