"""``crmtier calibrate``: data-assisted tiering thresholds, proposed for human review.

A monotone gradient-boosting model (scikit-learn, the optional ``ml`` extra) is fitted on
the bank's history; the proposed AUM floors, value-score weights and needs cut-offs are
read off it and written as an ordinary policy file, with a report of lift, stability and
fairness. Nothing here applies a policy: a person reviews the proposal, runs
``crmtier policy validate`` and ``crmtier simulate`` on it, and decides (docs/calibrate.md).

Modules: ``history`` reads the history file, ``features`` builds the model inputs (never a
sensitive attribute), ``fit`` fits the model and derives the proposal, ``measures`` computes
lift, PSI and disparate impact, ``proposal`` writes the policy file.
"""


class UnusableInput(Exception):
    """The history, or a ``--sensitive`` name, cannot be calibrated on at all: the command
    stops with this one line (exit 2). Raised where the input is judged, so that any other
    error of the fit (a ``ValueError`` of numpy or scikit-learn included) is a bug with its
    traceback, not a line blaming the history file."""
