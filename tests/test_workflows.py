"""The pull-request CI and the scheduled link check, parsed as GitHub reads them (the Pages
workflow's own test is in test_site.py)."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _on(wf: dict) -> dict:
    return wf.get("on", wf.get(True))  # YAML 1.1 reads the bare key `on` as True


def _step(job: dict, uses: str) -> dict:
    return next(s for s in job["steps"] if s.get("uses", "").split("@")[0] == uses)


def _runs(job: dict) -> list[str]:
    return [s.get("run", "") for s in job["steps"]]


def _cache_key(job: dict) -> str:
    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == "${{ env.MVLIB_CACHE }}" and "MVLIB_CACHE" in job["env"]
    return cache["with"]["key"]


def test_ci_runs_the_test_command_on_pull_requests_and_pushes_to_main():
    wf = _load("ci.yml")
    trigger = _on(wf)
    assert "pull_request" in trigger and trigger["push"]["branches"] == ["main"]
    assert wf["concurrency"]["cancel-in-progress"] is True
    assert "github.ref" in wf["concurrency"]["group"], "one group per branch / pull request"
    assert "pages" not in wf["concurrency"]["group"], "separate from the Pages deploy"
    assert set(wf.get("permissions", {}).values()) <= {"read"}, "CI deploys nothing"
    (job,) = wf["jobs"].values()
    assert 0 < job["timeout-minutes"] <= 30
    assert job["env"]["MVLIB_PRESET"] == "ci"
    assert str(_step(job, "actions/setup-python")["with"]["python-version"]) == "3.11"
    runs = _runs(job)
    install = next(r for r in runs if "pip install" in r)
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in install
    assert 'pip install -e ".[book,test]"' in install
    # the README's test command, last, after the install
    test_at = next(i for i, r in enumerate(runs) if r.strip() == "bash scripts/test.sh")
    assert runs.index(install) < test_at
    assert "bash scripts/test.sh" in (ROOT / "README.md").read_text()


def test_ci_keys_the_result_cache_as_the_pages_workflow_does():
    """On mvlib's source (a code change misses, so a restored cache is never stale), with its own
    prefix: ci and book preset results are not one cache entry."""
    ci = _cache_key(next(iter(_load("ci.yml")["jobs"].values())))
    pages = _cache_key(_load("pages.yml")["jobs"]["build"])
    source = "${{ hashFiles('mvlib/**/*.py') }}"
    assert ci.endswith(source) and pages.endswith(source) and ci != pages


def test_ci_follows_dot_ci_run():
    """The workflow installs what .ci/run installs and runs the same command."""
    dot_ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[book,test]"' in dot_ci and "bash scripts/test.sh" in dot_ci
    assert "scripts/colab.py" in (ROOT / "scripts" / "test.sh").read_text()


def test_link_check_is_scheduled_and_never_blocks_a_merge():
    wf = _load("linkcheck.yml")
    trigger = _on(wf)
    assert "pull_request" not in trigger and "push" not in trigger
    (cron,) = [s["cron"] for s in trigger["schedule"]]
    assert re.fullmatch(r"\d+ \d+ \* \* \d", cron), "weekly"
    (job,) = wf["jobs"].values()
    assert 0 < job["timeout-minutes"] <= 60
    assert "python scripts/build_book.py" in _runs(job), "checks the built site"
    lychee = _step(job, "lycheeverse/lychee-action")
    assert lychee["with"]["fail"] is False and "_build/html" in lychee["with"]["args"]
    issue = _step(job, "peter-evans/create-issue-from-file")
    assert issue["if"] == f"steps.{lychee['id']}.outputs.exit_code != 0"
    assert wf["permissions"]["issues"] == "write"
