"""Distributed evaluation: examples spread over Ray actors, records written by the driver.

Why this shape: an example is the unit of work of :meth:`Runner.process` (compress with every
pending method, score with the reader, optionally generate), and examples are independent, so
they are embarrassingly parallel.  Each actor builds one :class:`Runner` (its reader and method
resources load once, lazily, as in a serial run) and processes the examples Ray's
``ActorPool`` hands it.  Everything else is the serial runner's own code on the driver: the
example list, ``--resume`` (keys already in ``examples.jsonl`` are skipped before any work is
sent), the contexts (so ``rag`` mode retrieves from the same pool), the summary, report and
plots.  The driver appends each record to ``examples.jsonl`` as its example's result arrives,
so a killed run resumes exactly like a serial one.

Nothing here schedules: ``ray.util.ActorPool.map_unordered`` hands the next example to the
next free actor, and Ray restarts a crashed actor and retries its example.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from semtoken_lab.eval.data import Example
from semtoken_lab.eval.records import ExampleRecord, RecordWriter
from semtoken_lab.eval.run_config import RunConfig, RunResult
from semtoken_lab.eval.runner import Runner, example_key

logger = logging.getLogger(__name__)

#: Restarts of a crashed actor (and retries of its example) before the run fails.
MAX_RESTARTS = 2


class EvalWorker:
    """Ray actor body: one :class:`Runner` per actor, loaded once, processing examples.

    Args:
        cfg: The run (the same :class:`RunConfig` as the driver's).
        documents: The run's documents as the driver prepared them
            (:attr:`~semtoken_lab.eval.method_env.MethodEnv.documents`, for ``semtoken-docs``).
    """

    def __init__(self, cfg: RunConfig, documents: tuple[str, ...] | None = None) -> None:
        self.runner = Runner(cfg)
        self.runner.env.documents = documents

    def process(
        self, ex: Example, chunks: list[str], pending: Sequence[tuple[str, float]]
    ) -> list[ExampleRecord]:
        """:meth:`Runner.process` of one example."""
        return self.runner.process(ex, chunks, pending)


class _ReadersOnWorkers:
    """Stands in for the driver's reader: in a distributed run only the actors read."""

    model = None

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"the reader lives in the Ray actors, not the driver ({name})")


class RayRunner(Runner):
    """A :class:`Runner` whose examples are processed by Ray actors.

    Args:
        cfg: The run.
        address: Ray address (``None``: ``RAY_ADDRESS``, the ``ray start`` cluster of this
            machine, or a new local instance); see :func:`semtoken_rag.distributed.ray_session`.
        actors: Actors (each holds a reader); default as many as the cluster's CPUs hold.
        cpus_per_actor: CPUs reserved per actor (Ray caps its torch threads to this).
        gpus_per_actor: GPUs reserved per actor (0: CPU readers).
        connect_timeout: Seconds to wait for an explicit address to answer.
    """

    def __init__(
        self,
        cfg: RunConfig,
        *,
        address: str | None = None,
        actors: int | None = None,
        cpus_per_actor: float = 1.0,
        gpus_per_actor: float = 0.0,
        connect_timeout: float = 10.0,
    ) -> None:
        from semtoken_rag.errors import InvalidInputError

        if actors is not None and actors < 1:
            raise InvalidInputError(f"actors must be a positive integer, got {actors!r}")
        if cpus_per_actor <= 0 or gpus_per_actor < 0:
            raise InvalidInputError(
                f"cpus_per_actor must be > 0 and gpus_per_actor >= 0, got {cpus_per_actor!r} "
                f"and {gpus_per_actor!r}"
            )
        super().__init__(cfg, reader=_ReadersOnWorkers())
        self.address = address
        self.actors = actors
        self.cpus_per_actor = cpus_per_actor
        self.gpus_per_actor = gpus_per_actor
        self.connect_timeout = connect_timeout
        self._ray: Any = None

    def run(self, examples: Sequence[Example] | None = None) -> RunResult:
        """:meth:`Runner.run` inside a Ray session (connected or started for the run)."""
        from semtoken_rag.distributed import ray_session

        with ray_session(self.address, connect_timeout=self.connect_timeout) as ray:
            self._ray = ray
            try:
                return super().run(examples)
            finally:
                self._ray = None

    def _loop(
        self,
        work: list[tuple[Example, list[tuple[str, float]]]],
        all_chunks: dict[tuple[str, str], list[str]],
        path: Any,
    ) -> int:
        from semtoken_rag.distributed.cluster import fit_actors
        from tqdm.auto import tqdm

        ray = self._ray
        cfg = self.cfg
        wanted = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = fit_actors(ray, min(wanted, len(work)), self.cpus_per_actor, self.gpus_per_actor)
        worker = ray.remote(
            num_cpus=self.cpus_per_actor,
            num_gpus=self.gpus_per_actor,
            max_restarts=MAX_RESTARTS,
            max_task_retries=MAX_RESTARTS,
        )(EvalWorker)
        docs = ray.put(self.env.documents)  # set by contexts(): shipped once, not per actor
        pool = ray.util.ActorPool([worker.remote(cfg, docs) for _ in range(n)])
        logger.info("eval on ray: %d examples over %d actors", len(work), n)

        def submit(actor: Any, item: tuple[Example, list[tuple[str, float]]]) -> Any:
            ex, pending = item
            return actor.process.remote(ex, all_chunks[example_key(ex)], pending)

        new = 0
        bar = tqdm(total=len(work), desc="eval (ray)", unit="ex", disable=not cfg.progress)
        with RecordWriter(path, append=bool(cfg.resume)) as writer:
            for records in pool.map_unordered(submit, work):
                for r in records:
                    writer.write(r)
                new += len(records)
                bar.update(1)
        bar.close()
        return new


def run_eval_on_ray(cfg: RunConfig, **kwargs: Any) -> RunResult:
    """Convenience: ``RayRunner(cfg, **kwargs).run()``."""
    return RayRunner(cfg, **kwargs).run()


__all__ = ["EvalWorker", "RayRunner", "run_eval_on_ray"]
