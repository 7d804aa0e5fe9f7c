"""Attention heat maps (needs matplotlib: `pip install keras-seqattn[examples]`)."""

import numpy as np


def plot_attention(alignments, source_tokens, target_tokens, path=None, title=None):
    """Draw an alignment matrix as a heat map, source tokens across and target tokens down (as the
    alignment figures of Bahdanau et al., 2015), and return the matplotlib `Figure`.

    Args:
        alignments: `(target_length, source_length)` weights, e.g. one sequence of the alignments
            that `AttentionDecoder` or the searches return; rows and columns beyond the token
            lists (padding, steps after the end) are cut off.
        source_tokens: the source tokens (column labels), at most `source_length` of them.
        target_tokens: the target tokens (row labels), at most `target_length` of them.
        path: when given, the figure is also saved there (the format from the extension, e.g. PNG).
        title: an optional title.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # an optional dependency
        raise ImportError("plot_attention needs matplotlib: pip install matplotlib") from error
    alignments = np.asarray(alignments, "float32")
    if alignments.ndim != 2:
        raise ValueError("`alignments` must have rank 2, (target_length, source_length). "
                         f"Received: alignments.shape={alignments.shape}")
    source_tokens, target_tokens = list(source_tokens), list(target_tokens)
    for name, tokens, available in (("source_tokens", source_tokens, alignments.shape[1]),
                                    ("target_tokens", target_tokens, alignments.shape[0])):
        if not tokens or len(tokens) > available:
            raise ValueError(f"`{name}` must hold 1 to {available} tokens (the alignments' size). "
                             f"Received: {len(tokens)} tokens")
    alignments = alignments[:len(target_tokens), :len(source_tokens)]
    figure = Figure(figsize=(0.3 * len(source_tokens) + 2, 0.3 * len(target_tokens) + 1.5))
    axes = figure.add_subplot()
    image = axes.imshow(alignments, cmap="gray_r", vmin=0.0, vmax=max(1e-6, float(alignments.max())))
    axes.set_xticks(range(len(source_tokens)), [_visible(t) for t in source_tokens], rotation=90)
    axes.set_yticks(range(len(target_tokens)), [_visible(t) for t in target_tokens])
    axes.set_xlabel("source")
    axes.set_ylabel("target")
    if title:
        axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.03)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


def _visible(token):
    return "␣" if token == " " else token
