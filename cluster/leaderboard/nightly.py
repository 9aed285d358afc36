"""The nightly job: run the specs whose inputs changed, then publish the leaderboard.

``nightly(specs, store_url)`` runs each spec whose inputs changed (new spec hash, data
fingerprint or code versions give a new deterministic run id, see
:func:`routerbench.sweeps.resume.default_run_id`) with :func:`routerbench.sweeps.run.run`, skips
those already complete, then refreshes ``<store_url>/leaderboard`` from ``<store_url>/runs``. On
unchanged inputs it evaluates nothing and the published files are byte-identical to the previous
ones apart from the generation time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from routerbench.cluster.leaderboard.publish import KEEP, refresh
from routerbench.engine import storage
from routerbench.engine.errors import RunFailed
from routerbench.sweeps.execute import Executor, local_executor
from routerbench.sweeps.run import run
from routerbench.sweeps.spec import load


@dataclass(frozen=True)
class Nightly:
    """What a nightly job did: runs evaluated, runs already complete, the version published."""

    ran: list[str]
    skipped: list[str]
    published: str


def nightly(
    specs: Sequence[str],
    store_url: str,
    *,
    storage_options: dict[str, Any] | None = None,
    executor: Executor = local_executor,
    workers: int | None = None,
    plots: bool = True,
    keep: int = KEEP,
    progress: Callable[[str], Any] | None = None,
) -> Nightly:
    """Run each spec whose inputs changed into ``<store_url>/runs/<run id>`` (resuming a run left
    incomplete), skip the complete ones, then refresh ``<store_url>/leaderboard`` from the runs of
    these specs. ``executor``, ``workers`` and ``plots`` go to each run; ``progress`` receives
    progress lines, among them each run's results URL and seconds (None: silent). A run with
    failed cells raises :class:`RunFailed` and the published leaderboard stays as it was (the
    next night resumes the run)."""
    so, say = storage_options, progress or (lambda msg: None)
    runs_url = storage.join(store_url, "runs")
    ran, skipped = [], []
    for path in specs:
        say(f"{path}: running")
        outcome = run(  # a complete run of these inputs is read back, not evaluated again
            load(path),
            out=runs_url,
            executor=executor,
            workers=workers,
            plots=plots,
            storage_options=so,
            progress=progress,
        )
        run_id = outcome.manifest["run_id"]
        if not outcome.evaluated:
            skipped.append(run_id)
            say(f"{path}: unchanged, run {run_id} is complete")
            continue
        say(outcome.summary())
        failure = outcome.failure()
        if failure:
            raise RunFailed(f"{path}: run {run_id}: {failure}; the leaderboard was not refreshed")
        ran.append(run_id)
    published = refresh(
        runs_url, storage.join(store_url, "leaderboard"), so, include=ran + skipped, keep=keep
    )
    say(f"published {published}")
    return Nightly(ran, skipped, published)
