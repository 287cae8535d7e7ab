"""The loss-curve PNG every Python template writes: training and validation loss per step.

Uses matplotlib's Agg backend (no display needed) and reports the file with an artifact line,
its path given relative to the working directory (the workspace) as the protocol asks.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from . import rwproto  # noqa: E402


def loss_curve(
    path: str, train: list, val: list, title: str, xlabel: str = "epoch", xticks: list | None = None
) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    steps = list(range(1, len(train) + 1))
    ax.plot(steps, train, marker="o", ms=3, label="train_loss")
    ax.plot(steps, val, marker="o", ms=3, label="val_loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if xticks:
        ax.set_xticks(steps, xticks, rotation=30, ha="right")
    ax.set(title=title, xlabel=xlabel, ylabel="MSE (standardised cases)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def report_loss_curve(path: str, train: list, val: list, title: str, **kwargs) -> None:
    loss_curve(path, train, val, title, **kwargs)
    rwproto.artifact(os.path.relpath(path), dest="plots")
