"""Draw docs/img/architecture.png: the packages in their layers, and the imports between them.

    .venv/bin/python tools/architecture.py [--out docs/img/architecture.png]

The layers are read from the contract `make lint` enforces (pyproject.toml, [tool.importlinter],
contract `packages`), and every arrow is an import the code has today, counted in module pairs
(grimp, import-linter's own graph), so the picture cannot drift from the code: run it again after
a change. The import the contract lets pass (`ignore_imports`) is drawn red and dashed. Dotted
arrows are not imports: the demo runs each step as a child process (`python -m ...`).
Where each box stands and where an arrow runs is laid out by hand (PLACE, ROUTES) so that no
arrow crosses a box; which boxes and arrows there are is the code's.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import grimp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# What each package owns (docs/architecture.md says it at length).
OWNS = {
    "demo": "the closed loop, step by step\n(python -m demo)",
    "trainer": "exported logs -> liked chains ->\nCORE -> top-100 -> deploy",
    "ops": "runs the service: the local stack,\nRedis, gunicorn, the keeper, the journal",
    "sim": "the world, the listener, the batched\nengine and its agents, calibration",
    "script": "logs -> Parquet (export), the A/B\nreport (script.ab)",
    "botify": "the recommender service, and the contracts the parts share: settings,\nthe "
    "event, lists in Redis (toplists, deploy), the arm hash, log files, seeds",
    "measure": "what the loop measures: the course's\nmetrics, the statistics, the ceiling file",
}
RUNS = ("sim", "script", "trainer")  # the demo's child processes besides the stack (ops)


def contract() -> tuple[list[list[str]], list[tuple[str, str]]]:
    """(layers top first, each a list of sibling packages; ignored imports as (from, to))."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (packages,) = [c for c in config["contracts"] if c["id"] == "packages"]
    layers = [[name.strip() for name in layer.split("|")] for layer in packages["layers"]]
    ignored = set()
    for rule in packages.get("ignore_imports", []):
        importer, imported = (part.strip().split(".")[0] for part in rule.split("->"))
        ignored.add((importer, imported))
    return layers, sorted(ignored)


def package_imports(packages: list[str]) -> dict[tuple[str, str], int]:
    """(importer package, imported package) -> module pairs, from the code."""
    graph = grimp.build_graph(*packages)
    counts = {}
    for a in packages:
        for b in packages:
            if a != b:
                found = graph.find_matching_direct_imports(import_expression=f"{a}.** -> {b}.**")
                pairs = {(i["importer"], i["imported"]) for i in found}
                if pairs:
                    counts[(a, b)] = len(pairs)
    return counts


# Where each package stands: (x of its centre, width); its layer (row) comes from the contract.
PLACE = {"demo": (6.3, 3.0), "trainer": (2.3, 3.0), "script": (10.2, 3.0), "ops": (2.3, 3.0),
         "sim": (6.0, 2.8), "botify": (4.5, 7.4), "measure": (10.2, 3.0)}  # fmt: skip
# Where an arrow leaves its box and enters the other (x at the bottom, x at the top), chosen so
# that no arrow runs through a box; any other arrow goes straight down from the box's centre.
ROUTES = {("demo", "ops"): (5.1, 3.5), ("demo", "botify"): (7.65, 7.7),
          ("demo", "trainer"): (5.0, 3.0), ("demo", "script"): (7.6, 9.3),
          ("trainer", "botify"): (3.7, 4.3), ("script", "sim"): (8.9, 7.1),
          ("script", "botify"): (9.1, 8.05), ("script", "measure"): (10.6, 10.6),
          ("sim", "measure"): (7.2, 9.0)}  # fmt: skip
BOX_H = 1.05


def draw(out: Path) -> None:
    layers, ignored = contract()
    packages = [p for layer in layers for p in layer]
    imports = package_imports(packages)
    fig, ax = plt.subplots(figsize=(12.5, 8.4))
    ax.set_xlim(-0.4, 12.2)
    ax.set_ylim(-0.1, 8.7)
    ax.axis("off")

    centre: dict[str, tuple[float, float]] = {}
    top, bottom = 7.55, 1.55
    step = (top - bottom) / max(1, len(layers) - 1)
    for row, layer in enumerate(layers):
        y = top - row * step
        label = f"layer {len(layers) - row}" + (
            "\nsiblings:\nnone imports\nanother" if len(layer) > 1 else ""
        )
        ax.text(-0.35, y, label, fontsize=8, color="#888", va="center")
        for i, name in enumerate(layer):
            x, w = PLACE.get(name, (2.3 + 3.9 * i, 3.0))
            centre[name] = (x, y)
            shared = name in ("botify", "measure")
            ax.add_patch(FancyBboxPatch((x - w / 2, y - BOX_H / 2), w, BOX_H,
                                        boxstyle="round,pad=0.02,rounding_size=0.12",
                                        facecolor="#e8f4ea" if shared else "#eef3fb",
                                        edgecolor="#4a6fa5", linewidth=1.4))  # fmt: skip
            ax.text(x, y + 0.28, name + "/", ha="center", va="center", fontsize=12,
                    fontweight="bold", family="monospace")  # fmt: skip
            ax.text(x, y - 0.14, OWNS.get(name, ""), ha="center", va="center", fontsize=7.6)

    def edge(a: str, b: str) -> tuple[tuple[float, float], tuple[float, float]]:
        (xa, ya), (xb, yb) = centre[a], centre[b]
        if abs(ya - yb) < 0.1:  # siblings: side to side
            sign = 1 if xb > xa else -1
            wa, wb = PLACE.get(a, (0, 3.0))[1], PLACE.get(b, (0, 3.0))[1]
            return (xa + sign * wa / 2, ya), (xb - sign * wb / 2, yb)
        wb = PLACE.get(b, (0, 3.0))[1]
        straight = min(max(xa, xb - wb / 2 + 0.3), xb + wb / 2 - 0.3)  # down, where it can
        xs, xe = ROUTES.get((a, b), (xa, straight))
        return (xs, ya - BOX_H / 2), (xe, yb + BOX_H / 2)

    for (a, b), count in sorted(imports.items()):
        known = (a, b) in ignored
        start, end = edge(a, b)
        colour = "#c0392b" if known else "#34495e"
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14,
                                     color=colour, linestyle="--" if known else "-",
                                     linewidth=1.7 if known else 1.2))  # fmt: skip
        text = str(count) + (" (let pass: ignore_imports)" if known else "")
        ax.text((start[0] + end[0]) / 2 + 0.08, (start[1] + end[1]) / 2, text, fontsize=8,
                color=colour, va="center")  # fmt: skip

    for name in RUNS:
        if name in centre and "demo" in centre and ("demo", name) not in imports:
            start, end = edge("demo", name)
            ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10,
                                         color="#aaa", linestyle=":", linewidth=1.1))  # fmt: skip

    ax.text(5.9, 8.55, "Botify: packages, their layers, and the imports between them",
            ha="center", fontsize=13, fontweight="bold")  # fmt: skip
    ax.text(5.9, 0.35,
            "A package may import only the layers below its own (make lint: import-linter, "
            "pyproject's [tool.importlinter]).\nSolid: imports today, labelled with the number of "
            "importing module pairs. Dotted: the demo runs these as child processes, no import.",
            ha="center", va="center", fontsize=8, color="#555")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"{out}: {len(packages)} packages in {len(layers)} layers, "
          f"{len(imports)} package-level imports ({len(ignored)} let pass by the contract)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "architecture.png")
    draw(parser.parse_args().out)
