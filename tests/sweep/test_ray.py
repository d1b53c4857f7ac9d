"""Sweeps on Ray, on a two-node cluster simulated on this machine: the same ranking as the local
back-end, failures recorded, bad trials stopped early as locally, and a node lost while trials run.
Skipped where Ray is not installed."""

import json

import pytest
from tests.sweep.helpers import MIXED, RANDOM, STOPPING, TINY, assert_the_bad_trial_stopped, outcome, spec

from layerwise.sweep import run_sweep
from layerwise.sweep.results import LOG

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node of one CPU each; Ray connected to it."""
    # A lost node is noticed after 3 missed health checks 0.5 s apart (Ray's default takes much longer).
    checks = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "_system_config": checks})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    yield cluster, worker
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.parametrize("document", [MIXED, RANDOM], ids=["mixed", "random"])
def test_ray_ranks_the_trials_as_the_local_back_end(cluster, tmp_path, document):
    on_ray = run_sweep(spec(document), tmp_path / "ray", backend="ray", progress=None)
    local = run_sweep(spec(document), tmp_path / "local", workers=2, threads=1, progress=None)
    assert outcome(on_ray) == outcome(local)
    assert [record["status"] for record in on_ray.records].count("ok") >= 1
    if document is MIXED:
        assert {record["status"] for record in on_ray.records} == {"ok", "diverged", "failed"}


def test_ray_stops_the_bad_trial_early_as_the_local_back_end(cluster, tmp_path):
    on_ray = run_sweep(spec(STOPPING), tmp_path / "ray", backend="ray", progress=None)
    assert_the_bad_trial_stopped(on_ray)
    local = run_sweep(spec(STOPPING), tmp_path / "local", workers=2, threads=1, progress=None)
    assert outcome(on_ray) == outcome(local)


def test_a_node_lost_while_trials_run_costs_no_trial(cluster, tmp_path):
    """The worker node goes away after the first trial ends, while others run on it; Ray reruns them."""
    head_and_worker, worker = cluster
    document = {"base": {**TINY, "epochs": 6, "num_training": 200}, "space": {"learning_rate": {"loguniform": [1e-5, 1e-3]}},
                "trials": 6, "seed": 2}  # fmt: skip
    removed = []

    def remove_worker_node(record):
        if not removed:
            head_and_worker.remove_node(worker, allow_graceful=False)
            removed.append(record["trial"])

    result = run_sweep(spec(document), tmp_path / "s", backend="ray", progress=None, on_result=remove_worker_node)
    assert removed
    assert sorted(record["trial"] for record in result.records) == list(range(6))
    assert all(record["status"] == "ok" and record["best_val_acc"] is not None for record in result.records), result.records
    lines = (tmp_path / "s" / LOG).read_text().splitlines()
    assert sorted(json.loads(line)["trial"] for line in lines) == list(range(6))  # each recorded once
    local = run_sweep(spec(document), tmp_path / "local", workers=2, threads=1, progress=None)
    assert outcome(result) == outcome(local)  # a rerun trial gives the same results
