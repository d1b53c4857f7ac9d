"""The ``layerwise`` command line: ``train``, ``sweep``, ``evaluate``, ``predict``, ``gradcheck`` and ``demo``."""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from .._layers import kernels
from ..checkpoint import CheckpointError
from ..data_utils import CIFAR10FormatError, CIFAR10UnavailableError
from . import demo, evaluate, gradcheck, predict, settings, sweep, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerwise",
        description="Train, evaluate, use and inspect layerwise models on CIFAR-10.",
        epilog="Run 'layerwise COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"layerwise {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train.add_parser(commands)
    sweep.add_parser(commands)
    evaluate.add_parser(commands)
    predict.add_parser(commands)
    gradcheck.add_parser(commands)
    demo.add_parser(commands)
    return parser


COMPUTING_COMMANDS = ("train", "sweep", "evaluate", "predict", "gradcheck")
_told_about_numba = False


def _say_if_numba_is_missing() -> None:
    """One line on stderr, once a process, when the compiled kernels cannot run."""
    global _told_about_numba
    problem = kernels.numba_problem()
    if problem and not _told_about_numba:
        _told_about_numba = True
        print(f"layerwise: {problem}; the NumPy path runs (slower)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Returns
    -------
    int
        The exit status: 0 success; 1 ``gradcheck`` found a gradient outside its tolerance; 2 bad
        input, an option, setting, path, data set, checkpoint or model that cannot be used (printed
        as one ``layerwise: error: ...`` line; ``LAYERWISE_DEBUG=1`` shows the traceback); 3
        ``train``'s loss became NaN or infinite (the best parameters so far are kept in the run
        folder when an accuracy check had run); ``sweep``: 1 when no trial ended ok; 130 interrupted by Ctrl-C or SIGTERM (``train
        --resume RUN`` continues a run).
    """
    options = vars(build_parser().parse_args(argv))
    if options["command"] in COMPUTING_COMMANDS:
        _say_if_numba_is_missing()
    try:
        return options["handler"](options)
    except (settings.CommandError, CheckpointError, CIFAR10UnavailableError, CIFAR10FormatError, ValueError, TypeError) as error:
        if os.environ.get("LAYERWISE_DEBUG"):
            raise
        print(f"layerwise: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
