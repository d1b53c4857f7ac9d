"""Early stopping of a sweep's bad trials: the median stopping rule, made deterministic.

After each epoch a trial reports its accuracy curve (the accuracy at the end of every epoch so
far; validation accuracy, or training accuracy when the sweep ranks by a training metric) to a
:class:`Board` that the sweep's driver hosts. After epoch ``k``, ``grace_epochs <= k <`` its last
epoch, trial ``i`` stops when its best accuracy up to epoch ``k`` is below the median of the best
accuracies up to epoch ``k`` of the trials *before it* (indices below ``i``) that reached epoch
``k``, provided at least ``min_trials`` of them did. A stopped trial is recorded with status
``stopped``, its metrics so far and the reason.

Trial ``i`` waits, where need be, until every earlier trial has reported epoch ``k`` or ended.
What it decides therefore depends on the trials' seeds and settings alone, never on timing, the
back-end or the number of workers: it is what a sweep running its trials one at a time would
decide, and a resumed sweep (which gives the board the recorded trials' curves) decides as the
uninterrupted one would. Trials start in index order, so every earlier trial has either ended or
is running, and the wait ends.
"""

from __future__ import annotations

import statistics
import threading
from typing import Any, NamedTuple

from .space import SweepError

RULES = ("median",)
DEFAULTS = {"rule": "median", "grace_epochs": 1, "min_trials": 3}

# The record key of the accuracy curve each metric's early stopping compares.
CURVES = {"best_val_acc": "val_acc_curve", "final_val_acc": "val_acc_curve",
          "best_train_acc": "train_acc_curve", "final_train_acc": "train_acc_curve"}  # fmt: skip


class EarlyStopping(NamedTuple):
    """A sweep's early-stopping rule.

    Attributes
    ----------
    rule : str
        One of ``RULES``.
    grace_epochs : int >= 1
        No trial stops before the end of this epoch.
    min_trials : int >= 1
        Earlier trials that must have reached an epoch before a trial can stop there.
    """

    rule: str
    grace_epochs: int
    min_trials: int

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


def parse_early_stopping(value: Any, rule: str | None = None) -> EarlyStopping | None:
    """Check a sweep's ``"early_stopping"`` (None, a rule's name, or ``{"rule", "grace_epochs", "min_trials"}``).

    Parameters
    ----------
    value : None, str or dict
        As written in ``SWEEP.json``; missing keys take ``DEFAULTS``.
    rule : str, optional
        The command line's ``--early-stopping``: a rule (the file's other keys kept) or ``"none"``.

    Raises
    ------
    SweepError
        Naming the key, what was expected and what came.
    """
    if rule == "none":
        return None
    if value is None and rule is None:
        return None
    if isinstance(value, str) or value is None:
        value = {"rule": value} if isinstance(value, str) else {}
    if not isinstance(value, dict):
        raise SweepError(f"early_stopping must be null, a rule's name or a JSON object, got {value!r}")
    unknown = sorted(set(value) - set(DEFAULTS))
    if unknown:
        raise SweepError(f"early_stopping: unknown keys {unknown}; valid ones are {list(DEFAULTS)}")
    settings = {**DEFAULTS, **value, **({"rule": rule} if rule is not None else {})}
    if settings["rule"] not in RULES:
        raise SweepError(f"early_stopping.rule must be one of {list(RULES)} (or none), got {settings['rule']!r}")
    for key in ("grace_epochs", "min_trials"):
        if type(settings[key]) is not int or settings[key] < 1:
            raise SweepError(f"early_stopping.{key} must be a positive integer, got {settings[key]!r}")
    return EarlyStopping(settings["rule"], settings["grace_epochs"], settings["min_trials"])


def epoch_curve(history: list[float], epochs: int) -> list[float]:
    """The accuracies at the end of each of ``epochs`` completed epochs, from a Solver's history.

    The history holds one entry per completed epoch, preceded by one after the first iteration
    unless that iteration ended an epoch (one iteration per epoch).
    """
    return [float(value) for value in history[len(history) - epochs :]] if epochs else []


def stop_reason(curve: list[float], earlier: list[list[float]], epoch: int, stopping: EarlyStopping, accuracy: str) -> str:
    """Why the trial with ``curve`` stops after ``epoch``, or "" when it goes on.

    Parameters
    ----------
    curve : list of float
        The trial's accuracy at the end of epochs 1, 2, ... (at least ``epoch`` of them).
    earlier : list of list of float
        The curves of every trial before it, each as long as that trial got.
    epoch : int >= 1
    stopping : EarlyStopping
    accuracy : str
        What the curves measure, for the reason's wording.
    """
    if epoch < stopping.grace_epochs:
        return ""
    reached = [max(other[:epoch]) for other in earlier if len(other) >= epoch]
    if len(reached) < stopping.min_trials:
        return ""
    best, median = max(curve[:epoch]), statistics.median(reached)
    if best >= median:
        return ""
    return (f"stopped after epoch {epoch}: best {accuracy} {best:.4f} is below the median {median:.4f} "
            f"of the {len(reached)} earlier trials that reached it")  # fmt: skip


class TrialStopped(Exception):
    """Raised by :class:`StopCheck` inside a trial's training to end it early; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Board:
    """The accuracy curves of a sweep's trials, and the stopping decisions; safe to share between threads.

    Hosted by the sweep's driver (a multiprocessing manager locally, a threaded actor on Ray);
    trials call :meth:`report` and :meth:`decide` through it.

    Parameters
    ----------
    stopping : EarlyStopping
    accuracy : str
        What the curves measure (for the reasons' wording).
    """

    def __init__(self, stopping: EarlyStopping, accuracy: str):
        self.stopping, self.accuracy = stopping, accuracy
        self._curves: dict[int, list[float]] = {}
        self._ended: set[int] = set()
        self._changed = threading.Condition()

    def report(self, trial: int, curve: list[float], ended: bool = False) -> None:
        """Trial ``trial``'s curve so far; ``ended``: it will report no more (finished, stopped, failed).

        A shorter curve than the one known is ignored: a trial that Ray runs again after its worker
        died reports the same accuracies again from the start.
        """
        with self._changed:
            if len(curve) > len(self._curves.get(trial, ())):
                self._curves[trial] = [float(value) for value in curve]
            if ended:
                self._ended.add(trial)
            self._changed.notify_all()

    def decide(self, trial: int, epoch: int, timeout: float) -> str | None:
        """Whether trial ``trial`` stops after ``epoch`` (its curve reported up to there): the reason, or "" to go on.

        Returns None when some earlier trial has neither reached ``epoch`` nor ended within
        ``timeout`` seconds; the caller asks again.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: self._ready(trial, epoch), timeout):
                return None
            earlier = [self._curves.get(index, []) for index in range(trial)]
            return stop_reason(self._curves[trial], earlier, epoch, self.stopping, self.accuracy)

    def _ready(self, trial: int, epoch: int) -> bool:
        return all(index in self._ended or len(self._curves.get(index, ())) >= epoch for index in range(trial))


class Stopper(NamedTuple):
    """What a trial needs to take part in early stopping (picklable: it travels to the workers).

    Attributes
    ----------
    board : Board, or a proxy with its ``report`` and ``decide`` methods
    stopping : EarlyStopping
    curve : str
        ``"val_acc_curve"`` or ``"train_acc_curve"``: which accuracy the board compares.
    """

    board: Any
    stopping: EarlyStopping
    curve: str

    def callback(self, trial: int, epochs: int) -> StopCheck:
        """The Solver callback for trial ``trial`` of ``epochs`` epochs."""
        return StopCheck(self, trial, epochs)

    def ended(self, record: dict[str, Any]) -> None:
        """Tell the board that the trial of ``record`` ended (its curve as recorded)."""
        self.board.report(record["trial"], record.get(self.curve) or [], True)


class StoppingPlan(NamedTuple):
    """Early stopping for one run of a sweep, as the runner gives it to a back-end.

    Attributes
    ----------
    stopping : EarlyStopping
    metric : str
        The sweep's metric: it says which accuracy the board compares.
    recorded : list of dict
        The records of the trials finished before (on a resume): the board learns their curves.
    """

    stopping: EarlyStopping
    metric: str
    recorded: list[dict[str, Any]]

    def board_args(self) -> tuple[EarlyStopping, str]:
        """The arguments of the :class:`Board` to host."""
        return self.stopping, accuracy_name(self.metric)

    def open(self, board) -> Stopper:
        """A Stopper on the hosted ``board`` (or a proxy of it), which has learned the recorded trials' curves."""
        stopper = Stopper(board, self.stopping, CURVES[self.metric])
        for record in self.recorded:
            stopper.ended(record)
        return stopper


def accuracy_name(metric: str) -> str:
    """``validation accuracy`` or ``training accuracy``: what the curves of ``metric``'s early stopping measure."""
    return "training accuracy" if CURVES[metric] == "train_acc_curve" else "validation accuracy"


class StopCheck:
    """Solver callback: after each epoch, report the trial's curve and raise TrialStopped when the board says so.

    The last epoch is never checked: the trial has run to its end.
    """

    POLL_SECONDS = 1.0  # how long one ``decide`` call waits for the earlier trials before it is asked again

    def __init__(self, stopper: Stopper, trial: int, epochs: int):
        self.stopper, self.trial, self.epochs = stopper, trial, epochs

    def on_epoch_end(self, solver) -> None:
        epoch = solver.epoch
        if epoch < 1:
            return  # the check after the first iteration: no epoch has ended
        history = solver.train_acc_history if self.stopper.curve == "train_acc_curve" else solver.val_acc_history
        board = self.stopper.board
        board.report(self.trial, epoch_curve(history, epoch), False)
        if epoch < self.stopper.stopping.grace_epochs or epoch >= self.epochs:
            return
        reason = None
        while reason is None:
            reason = board.decide(self.trial, epoch, self.POLL_SECONDS)
        if reason:
            raise TrialStopped(reason)
