"""The ``layerwise`` command line: ``train``, ``evaluate``, ``gradcheck`` and ``demo``."""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..checkpoint import CheckpointError
from ..data_utils import CIFAR10FormatError, CIFAR10UnavailableError
from . import demo, evaluate, gradcheck, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerwise",
        description="Train, evaluate and inspect layerwise models on CIFAR-10.",
        epilog="Run 'layerwise COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"layerwise {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train.add_parser(commands)
    evaluate.add_parser(commands)
    gradcheck.add_parser(commands)
    demo.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed checks, 2 bad input, 130 interrupted)."""
    options = vars(build_parser().parse_args(argv))
    try:
        return options["handler"](options)
    except (train.CommandError, CheckpointError, CIFAR10UnavailableError, CIFAR10FormatError, ValueError, TypeError) as error:
        if os.environ.get("LAYERWISE_DEBUG"):
            raise
        print(f"layerwise: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
