"""The ``ssmlab`` command line: train, eval, data info, bench.

Each subcommand imports its module lazily, so ``ssmlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys


def _data_info(args: argparse.Namespace) -> int:
    from ssmlab.data import info_table

    print(info_table(args.name, data_dir=args.data_dir))
    return 0


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
    p.add_argument("--model", default="tim4rec", help="registry name, e.g. tim4rec, sasrec")
    p.add_argument("--data", default="toy", help="dataset name, e.g. toy, ml-100k, amazon-beauty")
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
    q.set_defaults(func=_data_info)

    p = sub.add_parser("bench", help="benchmarks (results go to benchmarks/results/)")
    p.add_argument("what", choices=["kernels", "train"])
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
