"""The report's pictures: ab_test.png (each arm's effect with its interval), ceiling.png (each arm
between random and the oracle) and sequential.png (the always-valid intervals look by look).

matplotlib's Agg backend, imported only when a picture is drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from measure.metrics import LOWER_IS_BETTER, METRICS
from script.ab.ceiling import CeilingResult
from script.ab.compare import Effect
from script.ab.report import SequentialInfo


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _method_words(effects: list[Effect]) -> str:
    cuped = any(e.method == "cuped" for e in effects)
    sequential = any(e.sequential for e in effects)
    words = "always-valid interval" if sequential else "interval"
    return ("CUPED, " if cuped else "Welch, ") + words


def plot(effects: list[Effect], path: Path, experiment: str, control: str, alpha: float) -> None:
    plt = pyplot()
    metrics = list(dict.fromkeys(e.metric for e in effects)) or list(METRICS)
    arms = list(dict.fromkeys(e.arm for e in effects))
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.6 * ncols, (1.4 + 0.6 * max(len(arms), 1)) * nrows), squeeze=False
    )
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        ax.axvline(0, color="black", linewidth=1)
        ax.annotate(
            control,
            (0, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -10),
            textcoords="offset points",
            fontsize=8,
        )
        for y, arm in enumerate(arms):
            e = next(x for x in effects if x.metric == metric and x.arm == arm)
            if e.effect_pct is None or e.lower_pct is None or e.upper_pct is None:
                ax.text(0, y, f"  {e.status}", va="center", fontsize=8, color="gray")
                continue
            if e.significant:
                better = (e.effect_pct < 0) if metric in LOWER_IS_BETTER else (e.effect_pct > 0)
                color = "tab:green" if better else "tab:red"
            else:
                color = "tab:gray"
            ax.errorbar(
                e.effect_pct,
                y,
                xerr=[[e.effect_pct - e.lower_pct], [e.upper_pct - e.effect_pct]],
                fmt="o",
                color=color,
                capsize=4,
                markersize=6,
            )
            star = "*" if e.significant_holm else ""
            ax.annotate(
                f"{e.effect_pct:+.1f}%{star}",
                (e.effect_pct, y),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color=color,
            )
        ax.set_yticks(range(len(arms)), arms)
        ax.set_ylim(-0.7, len(arms) - 0.3)
        ax.invert_yaxis()
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(f"effect, % of {control}")
        ax.grid(axis="x", alpha=0.3)
    kind = _method_words(effects)
    fig.suptitle(
        f"{experiment}: each arm vs {control} ({100 * (1 - alpha):.0f}% {kind}); "
        "green = significantly better, red = significantly worse, * = significant after Holm",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ceiling(ceiling: CeilingResult, path: Path, experiment: str, control: str) -> None:
    """Per metric, one bar per arm from random (0 %) to where the arm sits; the oracle is 100 %."""
    plt = pyplot()
    metrics = list(dict.fromkeys(r.metric for r in ceiling.rows))
    fig, axes = plt.subplots(len(metrics) or 1, 1, figsize=(8, 0.5 + 1.9 * max(len(metrics), 1)))
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics, strict=False):
        rows = [r for r in ceiling.rows if r.metric == metric and r.arm not in ("random", "oracle")]
        refs = {r.arm: r.value for r in ceiling.rows if r.metric == metric}
        positions = [r.position_pct for r in rows if r.position_pct is not None]
        low, high = min([0.0, *positions]), max([100.0, *positions])
        for y, r in enumerate(rows):
            if r.position_pct is None:
                ax.text(0, y, "  random = oracle", va="center", fontsize=8, color="gray")
                continue
            color = "tab:gray" if r.arm == control else "tab:blue"
            ax.barh(y, r.position_pct, left=0, height=0.6, color=color)
            ax.annotate(
                f"{r.position_pct:.1f} % ({r.value:.3g})",
                (max(r.position_pct, 0), y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        for x in (0, 100):
            ax.axvline(x, color="black", linewidth=1, linestyle="--")
        ax.set_yticks(range(len(rows)), [r.arm for r in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.invert_yaxis()
        ax.set_xlim(low - 0.05 * (high - low), high + 0.2 * (high - low))
        ax.set_title(
            f"{metric} (random {refs['random']:.3g}, oracle {refs['oracle']:.3g})", fontsize=10
        )
        ax.set_xlabel("position between random (0 %) and the oracle (100 %)")
        ax.grid(axis="x", alpha=0.3)
    sessions = f", {ceiling.sessions:,} simulated sessions" if ceiling.sessions else ""
    fig.suptitle(f"{experiment}: each arm against the ceiling{sessions}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sequential(info: SequentialInfo, path: Path, decision: str, alpha: float) -> None:
    """Per arm, the decision metric's effect and always-valid interval at every look."""
    plt = pyplot()
    arms = list(info.stops)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, arm in enumerate(arms):
        points = [
            (look.look, look.effects[arm])
            for look in info.looks
            if arm in look.effects and look.effects[arm].get("lower_pct") is not None
        ]
        if not points:
            continue
        x = np.array([p for p, _ in points]) + (i - (len(arms) - 1) / 2) * 0.08
        mid = np.array([e["effect_pct"] for _, e in points], dtype=float)
        low = np.array([e["lower_pct"] for _, e in points], dtype=float)
        high = np.array([e["upper_pct"] for _, e in points], dtype=float)
        color = f"C{i % 10}"
        ax.errorbar(x, mid, yerr=[mid - low, high - mid], fmt="o-", color=color, capsize=3,
                    markersize=4, label=arm)  # fmt: skip
        stop = info.stops[arm]
        if stop is not None:
            ax.axvline(stop["look"], color=color, linestyle=":", linewidth=1)
    ax.axhline(0, color="black", linewidth=1)
    ax.set_xlabel("look")
    ax.set_ylabel(f"{decision}, effect in %")
    ax.set_title(
        f"{100 * (1 - alpha):.0f}% always-valid intervals at each look (N* = {info.tuning:g}); "
        "dotted: where the arm would have stopped",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
