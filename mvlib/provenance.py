"""How a shipped sweep was made, and whether this code made it.

Beside each sweep's CSV, ``CSV.provenance.json`` records the command, mvlib's version, the hash
of the code that computed its rows (:func:`source_hash`), the date and the machine. The hash is
the cache's (:mod:`mvlib.cache`): the code that ``reproduce`` and every unit run, so a refactor
that leaves that code alone keeps every record valid. Where the code changed but should not
have moved a number, :func:`recompute` recomputes one recorded cell (the canary) byte for byte
before a record is re-stamped.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
from pathlib import Path

from mvlib.cache import code_hash
from mvlib.units import UNITS, reproduce


def source_hash() -> str:
    """The hash of the code that computes a sweep's rows: :func:`mvlib.units.reproduce` and
    every unit of the table (:func:`mvlib.cache.code_hash`)."""
    return code_hash(reproduce, *(u.train.__wrapped__ for u in UNITS.values()))


def computed_here(record: dict) -> bool:
    """Whether a provenance record's results were computed by this code (a real-data sweep's
    by :func:`mvlib.images.source_hash`)."""
    if record.get("images"):
        from mvlib import images

        return record["source_hash"] == images.source_hash()
    return record["source_hash"] == source_hash()


def provenance_path(csv_path) -> Path:
    """Where the provenance of ``csv_path`` lives: ``CSV_PATH.provenance.json``."""
    return Path(str(csv_path) + ".provenance.json")


def write_provenance(csv_path, command: str, images: dict | None = None, **extra) -> Path:
    """Record how ``csv_path`` was made beside it: the command, mvlib's version and source hash
    (:func:`source_hash`: the code that computed the results), the date and the
    machine (platform, Python, CPU count, torch version, the GPU if any). For a real-data
    sweep, ``images`` is its :class:`mvlib.image_data.ImageConfig` as a dict, recorded, and the
    hash is :func:`mvlib.images.source_hash`; ``extra`` fields are recorded as given. Returns the
    JSON file's path."""
    import torch

    import mvlib

    if not Path(csv_path).exists():
        raise FileNotFoundError(f"no sweep CSV at {csv_path}: run the sweep first")
    if images is not None:
        from mvlib.images import source_hash as images_hash
    record = {
        "csv": Path(csv_path).name,
        "command": command,
        "mvlib_version": mvlib.__version__,
        "source_hash": source_hash() if images is None else images_hash(),
        **({"images": images} if images is not None else {}),
        **extra,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            **({"gpu": torch.cuda.get_device_name()} if torch.cuda.is_available() else {}),
        },
    }
    path = provenance_path(csv_path)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def read_provenance(csv_path) -> dict | None:
    """The record :func:`write_provenance` wrote for ``csv_path`` (None when there is none)."""
    path = provenance_path(csv_path)
    return json.loads(path.read_text()) if path.exists() else None


def provenance_line(csv_path) -> str:
    """How ``csv_path`` was made, in one line: the date, mvlib's version, the GPU where it ran on
    one, and whether this code computed it (:func:`computed_here`)."""
    name, record = Path(csv_path).name, read_provenance(csv_path)
    if record is None:
        return f"{name}: no provenance record"
    gpu = record["machine"].get("gpu")
    same = "this code" if computed_here(record) else "OTHER code"
    return (
        f"{name}: {record['date']}, mvlib {record['mvlib_version']}"
        + (f", on an {gpu}" if gpu else "")
        + f", computed by {same}"
    )


# What a parameter was before it existed, so a CSV that predates it is recomputed as it ran:
# the controls were matched in logits until ``controls`` made the choice (its default is now
# "probability").
PREDATES = {"controls": "logit"}


def recompute(csv_path, seed: int, **point) -> bool:
    """Whether this code computes the rows of ``csv_path`` at one grid point (``column=value``)
    and ``seed`` byte for byte, on one torch thread as a sweep runs each cell. Every parameter
    comes from the rows themselves."""
    from mvlib import sweep as sw
    from mvlib.config import parameter_names
    from mvlib.presets import get_preset

    def here(r) -> bool:
        return r["seed"] == str(seed) and all(
            r[c] == v if isinstance(v, str) else float(r[c]) == float(v) for c, v in point.items()
        )

    with open(csv_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if here(r)]
    if not rows:
        raise ValueError(f"{csv_path} has no rows at seed {seed}, {point}")
    first = rows[0]
    # a parameter the CSV predates takes the value it had then (PREDATES), else its default; a
    # metric it predates is not compared
    names = [n for n in parameter_names(get_preset(first["preset"])) if n in first]
    methods = tuple(r["method"] for r in rows)
    before = {n: v for n, v in PREDATES.items() if n not in first}
    p = sw.plan(first["preset"], {}, {**before, **{n: first[n] for n in names}}, 1, seed, methods)
    results = sw.run_cell(p.base, seed, p.methods)
    head = sw.header(p, sw.metric_names(results))
    mine = [dict(zip(head, r)) for r in sw.rows(p, p.cells[0], results)]
    return [[m.get(c) for c in first] for m in mine] == [list(r.values()) for r in rows]
