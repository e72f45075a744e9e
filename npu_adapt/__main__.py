"""Command line: ``python -m npu_adapt inspect ...`` (installed as ``npu-adapt``); ``bench
MODEL`` benchmarks one configured model without the workflow (npu_adapt.bench_cli). The
commands live in npu_adapt.inspect_cli and npu_adapt.bench_cli; this module parses and
dispatches.
"""

from __future__ import annotations

import argparse
import sys

from npu_adapt import bench_cli, inspect_cli
from npu_adapt.inspect_cli import EXIT_CODES


class _Parser(argparse.ArgumentParser):
    """A bad command line exits 3 (error), not argparse's 2, which means fail here."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_CODES["error"], f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    cli = _Parser(
        prog="npu-adapt", description="npu-adapt: inspect the evidence a workflow run wrote; benchmark one model."
    )
    commands = cli.add_subparsers(dest="command", required=True, parser_class=_Parser)
    inspect_cli.add_parser(commands)
    bench_cli.add_parser(commands)
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "bench":
        return bench_cli.bench(args)
    if len(args.paths) > 2:
        parser().error("inspect takes one or two paths")
    return inspect_cli.inspect(args)


if __name__ == "__main__":
    sys.exit(main())
