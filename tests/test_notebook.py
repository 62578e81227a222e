"""notebooks/analysis.ipynb runs end to end on a small run, in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import generated_run, run_cli

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "analysis.ipynb"


def outputs(cell: nbformat.NotebookNode) -> str:
    """A code cell's printed text and the plain-text form of what it displayed."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_analysis_notebook_runs_on_a_small_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = generated_run(tmp_path / "run", "python=4,rust=2")
    run_cli("clean", run, "--min-problem", "0", check=True)
    run_cli("decontaminate", run, "--benchmarks", "humaneval", check=True)
    run_cli("lintseq", run, "-s", "1", "--workers", "1", check=True)
    monkeypatch.setenv("MAGICODER_RUN", str(run))

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), (
        "commit the notebook without outputs"
    )
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()

    text = "\n".join(outputs(cell) for cell in code)
    assert f"{run}: sample complete, generate complete, clean complete" in text
    funnel = next(outputs(cell) for cell in code if "decontaminated" in outputs(cell))
    assert "python" in funnel and "rust" in funnel and "total" in funnel
    assert "of 6 parsed samples at or above 0.45" in text
    assert "HumanEval/" in text
    displayed = [output.get("data", {}) for cell in code for output in cell.outputs]
    assert sum("image/png" in data for data in displayed) == 3  # funnel, lengths, similarity
    markdown = "\n".join(data.get("text/markdown", "") for data in displayed)
    assert markdown.count("### Sample") == 3 and "### LintSeq edits of sample" in markdown
