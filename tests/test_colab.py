"""The install a Colab reader gets: the ``notebook`` extra accepts Colab's runtime as it is, the
chapters' first cell installs it (hidden on the page, says what it did, fails with a hand
command), and the pieces of ``scripts/colab.py``, which runs every chapter in a Colab-like
environment after the book build (``scripts/test.sh``)."""

import ast
import builtins
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("colab", ROOT / "scripts" / "colab.py")
colab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(colab)

# What Colab ships, in the brief's list; the pin file must carry each (and may carry more).
COLAB = {
    "numpy": "2.1.3",
    "ipywidgets": "7.7.1",
    "ipykernel": "6.17.1",
    "nbclient": "0.10.4",
    "matplotlib": "3.10.0",
    "pandas": "2.2.3",
    "seaborn": "0.13.2",
    "plotly": "5.24.1",
    "scikit-learn": "1.6.1",
    "joblib": "1.5.3",
    "tqdm": "4.67.3",
    "sphinx": "8.2.3",
    "dask": "2026.1.1",
}


def _meta() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _first_code_cell(path: Path) -> dict:
    return next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")


def _first_cells() -> dict[str, dict]:
    return {path.name: _first_code_cell(path) for path in sorted((ROOT / "book").glob("*.ipynb"))}


def test_pin_file_is_dated_and_holds_colabs_versions():
    text = colab.PINS.read_text()
    assert "as of 2026-08" in text, "the pin file says when Colab shipped these versions"
    pins = colab.pins()
    assert {n: pins.get(n) for n in COLAB} == COLAB
    assert colab.base_version(pins["torch"]) == "2.13.0", "the torch the Colab-like run uses"


def test_notebook_extra_accepts_colabs_runtime_and_ipywidgets_8():
    """Installing mvlib[notebook] in Colab replaces nothing: each requirement of the library and
    of the extra is met by the version Colab ships (torch aside: Colab's 2.11 is >= 2.1)."""
    meta = _meta()
    pins = colab.pins()
    for raw in [*meta["dependencies"], *meta["optional-dependencies"]["notebook"]]:
        req = Requirement(raw)
        name = colab.canonical(req.name)
        colab_version = "2.11.0" if name == "torch" else pins.get(name)
        assert colab_version, f"{name}: not in the pin file; what does Colab ship?"
        assert req.specifier.contains(colab_version), f"{raw} refuses Colab's {colab_version}"
    widgets = next(
        Requirement(r) for r in meta["optional-dependencies"]["notebook"] if "ipywidgets" in r
    )
    assert widgets.specifier.contains("7.7.1") and widgets.specifier.contains("8.1.9")


def test_book_extra_holds_the_notebook_extra():
    """The site is built with what readers run, at the same ranges."""
    extras = _meta()["optional-dependencies"]
    assert set(extras["notebook"]) <= set(extras["book"])
    assert not any("jupyter-book" in r or "sphinx" in r.lower() for r in extras["notebook"])


def test_first_cell_is_one_hidden_install_cell_of_the_notebook_extra():
    cells = _first_cells()
    sources = {"".join(c["source"]) for c in cells.values()}
    assert len(sources) == 1, "every chapter's first cell is the same install cell"
    source = sources.pop()
    assert '"mvlib[notebook] @ git+' in source
    assert 'find_spec("mvlib") is None' in source, "installs only when mvlib is missing"
    for name, cell in cells.items():
        assert "remove-cell" in cell["metadata"].get("tags", []), f"{name}: shown on the page"


def _run_first_cell(source: str, hide_mvlib: bool) -> subprocess.CompletedProcess:
    """The first cell run as a script by this Python, optionally as if mvlib were missing."""
    hide = (
        "import importlib.util as u\n"
        "_find = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'mvlib' else _find(name, *a)\n"
    )
    code = (hide if hide_mvlib else "") + source
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_first_cell_says_the_device_first_and_what_it_did():
    cell = "".join(next(iter(_first_cells().values()))["source"])
    done = _run_first_cell(cell, hide_mvlib=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("device: cpu") or lines[0].startswith("device: cuda (")
    assert lines[1].startswith("mvlib ") and "found in" in lines[1]


def test_first_cell_failing_install_says_what_to_run_by_hand():
    """A repository URL that does not resolve (the placeholder before publishing, a typo) fails
    at once, without a credentials prompt, and the message gives the command to run by hand."""
    cell = "".join(next(iter(_first_cells().values()))["source"])
    bogus = "https://github.com/multiview-no-such-owner/no-such-repository"
    source = colab._INSTALL.sub(f"mvlib[notebook] @ git+{bogus}", cell)
    assert bogus in source
    done = _run_first_cell(source, hide_mvlib=True)
    assert done.returncode != 0
    assert "RuntimeError: could not install mvlib" in done.stderr
    assert f'%pip install "mvlib[notebook] @ git+{bogus}"' in done.stderr
    assert "git clone" in done.stderr, "pip's own lines name the failing step"


def test_install_cell_for_the_colab_like_run_points_at_this_checkout():
    source = colab.install_cell()
    assert f'"mvlib[notebook] @ {ROOT.as_uri()}"' in source
    assert "git+" not in source


def test_replaced_and_unmet_name_every_change():
    before = {"ipywidgets": "7.7.1", "numpy": "2.1.3", "six": "1.17.0"}
    after = {"ipywidgets": "8.1.9", "numpy": "2.1.3", "mvlib": "0.1.0"}
    assert colab.replaced(before, after) == ["ipywidgets 7.7.1 -> 8.1.9", "six 1.17.0 -> removed"]
    assert colab.replaced(before, {**before, "mvlib": "0.1.0"}) == []
    assert colab.unmet({"torch": "2.13.0", "numpy": "2.1.3"}, {"torch": "2.13.0+cpu"}) == [
        "numpy==2.1.3 (installed: none)"
    ]
    assert colab.canonical("Scikit_Learn") == "scikit-learn"


def test_colab_like_run_rejects_a_warning_a_reader_would_see():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x"), nbformat.v4.new_code_cell("y")]
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="ok\n")]
    warned = "cbook.py:1709: FutureWarning: Calling float on a single element Series\n"
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stderr", text=warned)]
    assert colab.warnings(nb) == [f"cell 1: {warned.strip()}"]


def test_colab_like_run_reports_a_widget_cells_stall():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    widget = nbformat.v4.new_code_cell("widgets.interact(f, x=1)")
    widget.metadata = {"tags": ["skip-execution"]}
    nb.cells = [nbformat.v4.new_code_cell("a"), widget, nbformat.v4.new_code_cell("b")]
    times = [("00:00:00", "00:00:01"), ("00:00:01", "00:00:02"), ("00:20:01", "00:20:02")]
    for cell, (start, done) in zip(nb.cells, times):
        cell.metadata["execution"] = {
            "iopub.execute_input": f"2026-12-07T17:{start[3:]}Z",
            "shell.execute_reply": f"2026-12-07T17:{done[3:]}Z",
        }
    assert colab.stalls(nb) == [(1, 1199.0)]
    assert colab.WIDGET_TIMEOUT <= 60


def test_colab_like_run_covers_every_chapter():
    names = [Path(p).name for p in colab.chapters()]
    assert sorted(names) == sorted(p.name for p in (ROOT / "book").glob("*.ipynb"))


# --- widgets: ipywidgets 8 here; scripts/colab.py runs the same cells under Colab's 7.7.1 ------

# What the widget cells read besides ipywidgets and their callbacks, at the ci preset.
WIDGET_INPUTS = {
    "cfg": lambda cfg: cfg,
    "SEEDS": lambda cfg: list(range(cfg.seeds)),
    "K": lambda cfg: cfg.K,
    "splits": lambda cfg: dict.fromkeys(["train", "test (multi-view)", "test (single-view)"]),
}


def _widget_cells() -> list[tuple[str, str, str]]:
    """(notebook, widget cell, the whole notebook's code) for each cell that makes a widget."""
    out = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        code = [
            "".join(c["source"])
            for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code"
        ]
        out += [(path.name, c, "\n".join(code)) for c in code if "widgets.interact" in c]
    return out


def _stub(name: str, notebook_code: str, calls: list) -> object:
    """A function with the signature of the notebook's ``name`` that records its calls."""
    tree = ast.parse("\n".join(x for x in notebook_code.splitlines() if not x.startswith("%")))
    (fn,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
    args = [a.arg for a in fn.args.args]
    namespace = {"calls": calls}
    body = ", ".join(f"{a}={a}" for a in args)
    exec(f"def {name}({', '.join(args)}):\n    calls.append(dict({body}))", namespace)
    return namespace[name]


def test_every_widget_chapter_is_checked():
    assert {name for name, _, _ in _widget_cells()} == {
        "01_setup.ipynb",
        "02_single_model.ipynb",
        "03_ensemble.ipynb",
        "07_ntk.ipynb",
    }


@pytest.mark.parametrize("name, cell, code", _widget_cells(), ids=[w[0] for w in _widget_cells()])
@pytest.mark.filterwarnings("error")  # a deprecated argument fails here before it breaks
def test_widget_cell_builds_its_widgets_with_this_ipywidgets(name, cell, code):
    """The widget cell, run as written with the installed ipywidgets (8 in the test extra's
    environment), its callback replaced by a stub of the same signature: the widgets are made
    and the callback gets one value for each parameter, the first of each widget's range."""
    import ipywidgets

    from mvlib.presets import get_preset

    cfg = get_preset("ci")
    tree = ast.parse(cell)
    (call,) = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "widgets.interact"
    ]
    callback = call.args[0].id
    calls: list[dict] = []
    namespace = {"widgets": ipywidgets, callback: _stub(callback, code, calls)}
    free = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(namespace)
    missing = free - set(WIDGET_INPUTS) - set(dir(builtins))
    assert not missing, f"{name}: give the widget test a value for {missing} (WIDGET_INPUTS)"
    namespace.update({n: WIDGET_INPUTS[n](cfg) for n in free & set(WIDGET_INPUTS)})
    exec(compile(cell, name, "exec"), namespace)
    assert len(calls) == 1, f"{name}: interact did not call {callback} once"
    (params,) = calls
    assert None not in params.values(), params
