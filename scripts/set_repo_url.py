"""Write the repository URL from _config.yml into every place a reader copies it from.

The URL lives in one place, ``repository.url`` in ``_config.yml`` (Jupyter Book derives the
launch buttons from it). Copies that Jupyter Book cannot fill in are rewritten here:

- each notebook's Colab install cell (the pip line ``mvlib[notebook] @ git+URL``), touching only
  that cell's source;
- ``book/intro.md`` (its install cell and ``git clone`` line) and ``README.md``: every
  ``git+URL``, ``git clone URL``, Colab ``/github/OWNER/REPO`` link and Pages address.

Usage, after editing ``repository.url`` (e.g. for a fork)::

    python scripts/set_repo_url.py          # rewrite
    python scripts/set_repo_url.py --check  # exit 1, listing the files that disagree
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEXT_FILES = ("README.md", "book/intro.md")
_GITHUB = r"https://github\.com/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?"
# Each pattern captures an old owner/repo; the replacement puts in the configured one.
_PATTERNS = (
    (re.compile(r"git\+" + _GITHUB + r"(?=[\"'\s)@#]|$)"), "git+https://github.com/{o}/{r}"),
    (re.compile(r"git clone " + _GITHUB + r"(?=[\s)]|$)"), "git clone https://github.com/{o}/{r}"),
    (
        re.compile(r"colab\.research\.google\.com/github/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)"),
        "colab.research.google.com/github/{o}/{r}",
    ),
    (
        re.compile(r"https://(?P<owner>[\w-]+)\.github\.io/(?P<repo>[\w.-]+)"),
        "https://{o}.github.io/{r}",
    ),
)


def config_url(root: Path = ROOT) -> str:
    """``repository.url`` of ``_config.yml``, without a trailing slash or ``.git``."""
    url = yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]
    url = url.rstrip("/").removesuffix(".git")
    if not re.fullmatch(_GITHUB, url):
        raise ValueError(f"repository.url must be https://github.com/OWNER/REPO, got {url!r}")
    return url


def owner_repo(url: str) -> tuple[str, str]:
    m = re.fullmatch(_GITHUB, url)
    return m["owner"], m["repo"]


def repo_urls(text: str) -> set[str]:
    """Every repository this text points readers to, as ``https://github.com/OWNER/REPO``."""
    return {
        f"https://github.com/{m['owner']}/{m['repo']}"
        for pattern, _ in _PATTERNS
        for m in pattern.finditer(text)
    }


def rewrite_text(text: str, url: str) -> str:
    """``text`` with every repository reference of ``_PATTERNS`` pointing at ``url``."""
    o, r = owner_repo(url)
    for pattern, template in _PATTERNS:
        text = pattern.sub(template.format(o=o, r=r), text)
    return text


def install_cell(nb: dict) -> dict:
    """The notebook's Colab install cell: its first code cell, which must pip-install mvlib."""
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    if "pip" not in "".join(cell["source"]):
        raise ValueError("the first code cell is not the install cell")
    return cell


def _split_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def rewrite_notebook(raw: str, url: str) -> str:
    """The notebook JSON ``raw`` with only its install cell's source rewritten."""
    nb = json.loads(raw)
    cell = install_cell(nb)
    source = "".join(cell["source"])
    new = rewrite_text(source, url)
    if new == source:
        return raw
    cell["source"] = _split_lines(new) if isinstance(cell["source"], list) else new
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def targets(root: Path = ROOT) -> list[Path]:
    return sorted((root / "book").glob("*.ipynb")) + [
        root / f for f in TEXT_FILES if (root / f).exists()
    ]


def updated(path: Path, url: str) -> str:
    """The contents ``path`` should have for ``url``."""
    raw = path.read_text(encoding="utf-8")
    return rewrite_notebook(raw, url) if path.suffix == ".ipynb" else rewrite_text(raw, url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="list the files that disagree; write nothing"
    )
    args = parser.parse_args(argv)
    url = config_url()
    stale = []
    for path in targets():
        new = updated(path, url)
        if new != path.read_text(encoding="utf-8"):
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    verb = "disagree with" if args.check else "rewritten to"
    for p in stale:
        print(f"{p}: {verb} {url}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
