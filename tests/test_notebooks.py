"""The two notebooks, FullyConnectedNets and ConvolutionalNetworks, run top to bottom.

Each notebook is executed in a fresh kernel in quick mode (``LAYERWISE_NOTEBOOK_QUICK=1``: the
embedded CIFAR-10 sample, shortened training runs); a cell that raises fails the test, and every
numeric check in the notebooks asserts its stated tolerance, so an error above it fails too.
Also checked: the saved notebooks hold, cell for cell, what ``notebooks/build_notebooks.py`` builds, without
outputs. Needs the ``test`` extra (nbformat, nbclient, ipykernel, matplotlib); skipped without it.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ["FullyConnectedNets.ipynb", "ConvolutionalNetworks.ipynb"]
CELL_TIMEOUT_S = 600


def _build_module():
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOK_DIR / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_saved_notebook_is_what_the_build_script_builds(name):
    build = _build_module()
    saved = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    built = build.build(build.NOTEBOOKS[name])
    # Compared cell by cell rather than byte by byte, so another nbformat version's layout passes.
    assert [(c.cell_type, c.source) for c in saved.cells] == [(c.cell_type, c.source) for c in built.cells], (
        f"notebooks/{name} is out of date: run python notebooks/build_notebooks.py"
    )
    assert saved.metadata.kernelspec == built.metadata.kernelspec


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_saved_notebook_has_no_outputs(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom_in_quick_mode(name, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    # The kernel inherits this process's environment.
    monkeypatch.setenv("LAYERWISE_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("LAYERWISE_DATA", raising=False)  # quick mode never needs the full data
    # A multithreaded BLAS on a machine busy with other jobs (parallel tests, CI neighbours) can be
    # ten times slower than one thread for the small matrices here; CI may still override this.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(variable, os.environ.get(variable, "1"))

    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        traceback = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # the kernel's traceback, without colour codes
        pytest.fail(f"{name}: a cell failed in quick mode:\n{traceback}", pytrace=False)

    executed = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in executed), f"{name}: not every code cell ran"
