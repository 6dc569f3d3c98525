"""environment.yml stays in step with pyproject.toml; notebooks are committed clean, end with a
check cell, and install mvlib from the repository _config.yml names."""

import ast
import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"scripts/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


set_repo_url = _load_script("set_repo_url")
build_book = _load_script("build_book")


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
    # every notebook is a chapter (pages such as the references are .md)
    assert {p.relative_to(ROOT).with_suffix("").as_posix() for p in _notebooks()} <= set(files)


def test_notebooks_committed_without_outputs_and_use_python3():
    assert _notebooks(), "no notebooks found"
    for path in _notebooks():
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", path.name
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{path.name} has outputs"
                assert cell.get("execution_count") is None, f"{path.name} has execution counts"


def test_widgets_are_made_only_when_a_reader_runs_the_notebook():
    """A cell that makes a widget is tagged ``skip-execution``, so the book build skips it: with
    a widget, nbclient 0.11 sometimes misses the cell's reply and waits the whole execution
    timeout (measured: 4 of 40 runs of a one-widget notebook; 0 of 40 without the widget)."""
    for path in _notebooks():
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code" and "widgets.interact" in "".join(cell["source"]):
                tags = cell["metadata"].get("tags", [])
                assert "skip-execution" in tags, f"{path.name}: a widget cell runs in the build"


def _cell_code(cell: dict) -> str:
    """A code cell's source as Python: IPython magics and shell escapes dropped."""
    lines = "".join(cell["source"]).splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def _names_bound(tree: ast.AST) -> set[str]:
    """Names a piece of code assigns, imports or defines."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return bound


def computed_asserts(last_cell: str, earlier_cells: str) -> list[ast.Assert]:
    """The ``assert`` statements of ``last_cell`` whose test reads a name the notebook computed
    (bound in an earlier cell or in the check cell itself), so the test is not a constant."""
    tree = ast.parse(last_cell)
    computed = _names_bound(ast.parse(earlier_cells)) | _names_bound(tree)
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert)
        and any(isinstance(n, ast.Name) and n.id in computed for n in ast.walk(node.test))
    ]


def test_computed_asserts_rejects_constant_and_accepts_computed():
    earlier = "acc = run()\nimport numpy as np"
    assert not computed_asserts("assert True\nassert 1 < 2", earlier)
    assert not computed_asserts("# assert acc > 0.9\nprint('assert')", earlier)
    assert not computed_asserts("assert len([1]) == 1", earlier)
    assert len(computed_asserts("assert acc > 0.9, acc", earlier)) == 1
    assert len(computed_asserts("gain = acc - 0.5\nassert gain > 0", earlier)) == 1


def test_every_chapter_ends_with_a_check_cell():
    """The last code cell asserts the chapter's claim on values computed in this run (at least one
    ``assert`` whose test reads a computed name), so nbval and the book build test the science."""
    for path in _notebooks():
        code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        earlier = "\n".join(_cell_code(c) for c in code[:-1])
        assert computed_asserts(_cell_code(code[-1]), earlier), (
            f"{path.name}: the last code cell has no assert on a computed value"
        )


def test_repository_url_is_one_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", set_repo_url.config_url())


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_install_cell_installs_from_config_url(path):
    """The Colab install cell pip-installs mvlib from _config.yml's repository.url
    (`python scripts/set_repo_url.py` rewrites it after a change)."""
    url = set_repo_url.config_url()
    source = "".join(set_repo_url.install_cell(json.loads(path.read_text()))["source"])
    assert f"@ git+{url}" in source, f"{path.name}: install cell does not install from {url}"
    assert set_repo_url.repo_urls(source) == {url}, path.name


@pytest.mark.parametrize("name", set_repo_url.TEXT_FILES)
def test_readme_and_intro_point_to_config_url(name):
    """README.md and the intro name the repository of _config.yml, and no other."""
    text = (ROOT / name).read_text()
    assert set_repo_url.repo_urls(text) == {set_repo_url.config_url()}, (
        f"{name} points to {set_repo_url.repo_urls(text) or 'no repository'}; "
        "run python scripts/set_repo_url.py"
    )


def test_set_repo_url_rewrites_only_the_install_cell(tmp_path):
    """The script moves every copy to a fork's URL and leaves the rest of a notebook as it was."""
    fork = "https://github.com/someone/fork"
    nb_path = _notebooks()[0]
    raw = nb_path.read_text()
    new = json.loads(set_repo_url.rewrite_notebook(raw, fork))
    old = json.loads(raw)
    index = old["cells"].index(set_repo_url.install_cell(old))
    assert f"@ git+{fork}" in "".join(new["cells"][index]["source"])
    new["cells"][index] = old["cells"][index]
    assert new == old
    assert set_repo_url.rewrite_notebook(raw, set_repo_url.config_url()) == raw
    text = "git clone https://github.com/a/b.git x && see https://a.github.io/b"
    assert set_repo_url.repo_urls(set_repo_url.rewrite_text(text, fork)) == {fork}


def test_build_book_executes_every_notebook_of_the_toc_in_order():
    """scripts/build_book.py executes each notebook of _toc.yml and the MyST text notebooks
    (the intro), and no page without code (the references); it starts them last first."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    docs = [toc["root"], *(c["file"] for c in toc["chapters"])]
    found = [p.relative_to(ROOT).with_suffix("").as_posix() for p in build_book.notebooks()]
    assert found == [d for d in docs if d != "book/references"]
    assert (ROOT / "book/references.md").exists()
    order = build_book.schedule(build_book.notebooks())
    assert [p.stem for p in order[:2]] == ["09_real_data", "08_regimes"], "heavy chapters first"
    assert sorted(order) == sorted(build_book.notebooks())
    with pytest.raises(SystemExit):
        build_book.main(["--workers", "0"])
