"""The report's pictures, drawn with matplotlib from figures' plain data: the learning curves of every run on
shared axes, and one run's confusion matrix. Each comes back as PNG bytes; no pyplot, no display, no file."""

from __future__ import annotations

import io

from toolkit.reports.figures import Confusion, Curve

DPI = 80


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # no pyplot: no global state between pictures

    return Figure(figsize=(width, height), dpi=DPI)


def _png(fig, tight: bool = True) -> bytes:
    """`tight`: trimmed to what is drawn, which costs a second drawing (the matrices place their own margins)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight" if tight else None)
    return buffer.getvalue()


def learning_curves(curves: list[Curve]) -> bytes:
    """Training and validation loss, and validation error rate, per epoch: one colour per run, shared axes."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(11, 4)
    loss, error = fig.subplots(1, 2)
    for number, c in enumerate(curves):
        colour = f"C{number % 10}"
        loss.plot(c.epochs, c.train_loss, color=colour, linestyle="--", linewidth=1)
        loss.plot(c.epochs, c.valid_loss, color=colour, marker="o", markersize=3, label=c.slug)
        error.plot(c.epochs, c.error_rate, color=colour, marker="o", markersize=3, label=c.slug)
    for ax, title in ((loss, "loss (dashed: training, solid: validation)"), (error, "validation error rate")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch (0 = frozen epoch of a fine-tune)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    error.legend(fontsize="x-small", loc="upper right", ncol=1 + len(curves) // 12)
    return _png(fig)


def confusion_matrix(matrix: Confusion) -> bytes:
    """Counts of true class (rows) against predicted class (columns), for the classes the figure keeps."""
    keep = [matrix.classes.index(label) for label in matrix.shown]
    counts = [[matrix.counts[i][j] for j in keep] for i in keep]
    side = min(9.0, 1.6 + 0.35 * len(keep))
    fig = _figure(side + 1.2, side + 1.2)  # room for the class names along both axes
    ax = fig.add_axes((1.2 / (side + 1.2), 1.2 / (side + 1.2), side / (side + 1.2) * 0.97, side / (side + 1.2) * 0.97))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(keep)), matrix.shown, rotation=90, fontsize=8)
    ax.set_yticks(range(len(keep)), matrix.shown, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    top = max((max(row) for row in counts), default=0)
    for i, row in enumerate(counts):  # numbers where there are some: zeros would only be noise (and slow)
        for j, value in enumerate(row):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                        color="white" if value > top / 2 else "black")
    return _png(fig, tight=False)
