"""environment.yml stays in step with pyproject.toml; notebooks are committed clean."""
import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;@]", req, maxsplit=1)[0].strip().lower()


def _pyproject_requirements() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs += extra
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-e")}


def test_environment_matches_pyproject():
    """Every requirement (with its version range) appears in both files, and nothing else."""
    assert _environment_requirements() == _pyproject_requirements()


def test_environment_installs_mvlib_and_python_range():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"python{meta['requires-python']}" in env["dependencies"]


def _notebooks():
    return sorted((ROOT / "book").glob("*.ipynb"))


def test_every_chapter_in_toc_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc["chapters"]]
    for f in files:
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb")), f
    assert len(_notebooks()) == len(toc["chapters"])


def test_notebooks_committed_without_outputs_and_use_python3():
    assert _notebooks(), "no notebooks found"
    for path in _notebooks():
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", path.name
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{path.name} has outputs"
                assert cell.get("execution_count") is None, f"{path.name} has execution counts"


def test_every_chapter_ends_with_a_check_cell():
    """The last code cell asserts the chapter's claim, so nbval tests the science."""
    for path in _notebooks():
        code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert "assert" in "".join(code[-1]["source"]), path.name
