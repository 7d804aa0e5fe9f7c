"""Attention heat maps (needs matplotlib: `pip install keras-seqattn[examples]`): alignments of a
translation, pooling weights over tokens, the two levels of a hierarchical attention network, the
hops of a memory network, and a caption's attention over an image. Runs on any Keras backend (it
reads arrays)."""

import textwrap

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

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "attention.png")
    >>> figure = ksa.visualization.plot_attention(np.eye(3), ["a", "b", "c"], ["x", "y", "z"], path=path)
    >>> os.path.getsize(path) > 0
    True
    """
    alignments = np.asarray(alignments, "float32")
    if alignments.ndim != 2:
        raise ValueError(
            "`alignments` must have rank 2, (target_length, source_length). "
            f"Received: alignments.shape={alignments.shape}"
        )
    source_tokens = _tokens("source_tokens", source_tokens, alignments.shape[1])
    target_tokens = _tokens("target_tokens", target_tokens, alignments.shape[0])
    return _heat_map(alignments, source_tokens, target_tokens, "source", "target", path, title)


def plot_pooling(weights, tokens, path=None, title=None):
    """Draw `AttentionPooling` weights over a sequence's tokens as one row of cells (a row per
    head for `(heads, T)` weights), and return the figure.

    Args:
        weights: `(T,)` or `(heads, T)`; steps beyond the tokens (padding) are cut off.
        tokens: the token labels, at most T of them.
        path: as in `plot_attention`.
        title: as in `plot_attention`.

    Example:
    >>> figure = ksa.visualization.plot_pooling(np.array([0.1, 0.7, 0.2]), ["not", "bad", "!"])
    """
    weights = np.asarray(weights, "float32")
    if weights.ndim not in (1, 2):
        raise ValueError(
            f"`weights` must have rank 1 or 2, (T,) or (heads, T). Received: weights.shape={weights.shape}"
        )
    weights = weights.reshape(-1, weights.shape[-1])
    tokens = _tokens("tokens", tokens, weights.shape[1])
    heads = [f"head {i}" for i in range(len(weights))] if len(weights) > 1 else ["α"]
    return _heat_map(weights, tokens, heads, "token", "", path, title)


def plot_hierarchical_attention(sentence_weights, word_weights, sentences, path=None, title=None):
    """Draw the two levels of `HierarchicalAttention` for one document: a row per sentence, its
    words' weights in the cells, and the sentence's weight beside it (as the figures of Yang et
    al., 2016). Return the figure.

    Args:
        sentence_weights: `(sentences,)`.
        word_weights: `(sentences, words)`.
        sentences: the document's sentences, each a list of its words (at most `sentences` lists,
            each of at most `words` words); padding beyond them is cut off.
        path: as in `plot_attention`.
        title: as in `plot_attention`.

    Example (two sentences of two words):
    >>> figure = ksa.visualization.plot_hierarchical_attention(
    ...     np.array([0.9, 0.1]), np.array([[0.5, 0.5], [0.2, 0.8]]), [["great", "film"], ["the", "end"]])
    """
    Figure = _figure_class("plot_hierarchical_attention")
    sentence_weights, word_weights = np.asarray(sentence_weights, "float32"), np.asarray(word_weights, "float32")
    if sentence_weights.ndim != 1 or word_weights.ndim != 2 or len(sentence_weights) != len(word_weights):
        raise ValueError(
            "`sentence_weights` must be (sentences,) and `word_weights` (sentences, words). "
            f"Received: sentence_weights.shape={sentence_weights.shape}, "
            f"word_weights.shape={word_weights.shape}"
        )
    sentences = [list(words) for words in sentences]
    if (
        not sentences
        or len(sentences) > len(word_weights)
        or any(not words or len(words) > word_weights.shape[1] for words in sentences)
    ):
        raise ValueError(
            f"`sentences` must hold 1 to {len(word_weights)} sentences of 1 to {word_weights.shape[1]} "
            f"words each. Received: {[len(words) for words in sentences]} words"
        )
    width = max(len(words) for words in sentences)
    title, size = _fit_title(title, 0.9 * width + 2.5, 0.45 * len(sentences) + 1.2, 12)
    figure = Figure(figsize=size)
    sentence_axes, word_axes = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, width]})
    sentence_axes.imshow(sentence_weights[: len(sentences), None], cmap="Reds", vmin=0.0, vmax=1.0, aspect="auto")
    sentence_axes.set_xticks([0], ["sentence"])
    sentence_axes.set_yticks(range(len(sentences)), [f"{w:.2f}" for w in sentence_weights[: len(sentences)]])
    shown = np.where(
        np.arange(width)[None, :] < np.array([len(w) for w in sentences])[:, None],
        word_weights[: len(sentences), :width],
        np.nan,
    )
    word_axes.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for row, words in enumerate(sentences):
        for column, word in enumerate(words):
            word_axes.text(column, row, _visible(str(word)), ha="center", va="center", fontsize=8)
    word_axes.set_xticks([])
    word_axes.set_yticks([])
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


def plot_memory_hops(weights, memories, path=None, title=None):
    """Draw `MemoryAttention`'s weights of every hop over the memories of one story: memories
    down (labelled with their sentences), hops across. Return the figure.

    Args:
        weights: `(hops, memories)`; memories beyond the labels (padding) are cut off.
        memories: the memory sentences (strings), at most `memories` of them.
        path: as in `plot_attention`.
        title: as in `plot_attention`.

    Example (two hops over three memories):
    >>> figure = ksa.visualization.plot_memory_hops(
    ...     np.array([[0.1, 0.8, 0.1], [0.6, 0.2, 0.2]]), ["mary went home", "john left", "mary slept"])
    """
    weights = np.asarray(weights, "float32")
    if weights.ndim != 2:
        raise ValueError(f"`weights` must have rank 2, (hops, memories). Received: weights.shape={weights.shape}")
    memories = _tokens("memories", memories, weights.shape[1])
    return _heat_map(weights.T, [f"hop {k + 1}" for k in range(len(weights))], memories, "hop", "memory", path, title)


def plot_image_attention(image, alignments, words, path=None, title=None):
    """Draw an image once, then once per caption word with that word's attention over the
    feature map laid over it (as the figures of Xu et al., 2015), and return the figure.

    Args:
        image: `(height, width, 3)` RGB (floats in [0, 1] or uint8) or `(height, width)` grey.
        alignments: `(T, H, W)`, each word's weights over the H × W feature map (e.g. one caption
            of `AttentionDecoder`'s alignments); each cell covers an equal patch of the image.
        words: the caption's words, at most T of them (steps after the end are cut off).
        path: as in `plot_attention`.
        title: as in `plot_attention`.

    Example (a 2 × 2 feature map under an 8 × 8 image, two words):
    >>> figure = ksa.visualization.plot_image_attention(
    ...     np.zeros((8, 8, 3)), np.array([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]]), ["red", "circle"])
    """
    Figure = _figure_class("plot_image_attention")
    image, alignments = np.asarray(image), np.asarray(alignments, "float32")
    if image.ndim not in (2, 3):
        raise ValueError(f"`image` must be (height, width[, channels]). Received: image.shape={image.shape}")
    if alignments.ndim != 3:
        raise ValueError(f"`alignments` must have rank 3, (T, H, W). Received: alignments.shape={alignments.shape}")
    words = _tokens("words", words, alignments.shape[0])
    columns = len(words) + 1
    title, size = _fit_title(title, 1.6 * columns, 2.0, 9)
    figure = Figure(figsize=size)
    axes = figure.subplots(1, columns, squeeze=False)[0]
    extent = (0, image.shape[1], image.shape[0], 0)  # the weights' cells stretched over the image
    for index, ax in enumerate(axes):
        ax.imshow(image, cmap=None if image.ndim == 3 else "gray", extent=extent)
        if index:
            weights = alignments[index - 1]
            ax.imshow(weights, cmap="magma", alpha=0.6, extent=extent, vmin=0.0, vmax=max(1e-6, float(weights.max())))
            ax.set_title(_visible(str(words[index - 1])), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


def _heat_map(matrix, columns, rows, xlabel, ylabel, path, title):
    """`matrix` cut to the labels, drawn with its colour bar; saved when `path` is given."""
    Figure = _figure_class("plotting attention")
    matrix = matrix[: len(rows), : len(columns)]
    title, size = _fit_title(
        title, 0.3 * len(columns) + 2 + 0.06 * max(len(str(r)) for r in rows), 0.3 * len(rows) + 1.5, 12
    )
    figure = Figure(figsize=size)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="gray_r", vmin=0.0, vmax=max(1e-6, float(matrix.max())))
    axes.set_xticks(range(len(columns)), [_visible(str(c)) for c in columns], rotation=90)
    axes.set_yticks(range(len(rows)), [_visible(str(r)) for r in rows])
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if title:
        figure.suptitle(title)
    figure.colorbar(image, ax=axes, fraction=0.03)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


def _tokens(name, tokens, available):
    tokens = list(tokens)
    if not tokens or len(tokens) > available:
        raise ValueError(f"`{name}` must hold 1 to {available} items (the weights' size). Received: {len(tokens)}")
    return tokens


def _fit_title(title, width, height, fontsize):
    """The title wrapped to lines that fit a figure at least 4 inches wide (short inputs make
    narrow figures), and the figure size grown by its lines: `(title, (width, height))`."""
    width = max(width, 4.0)
    if not title:
        return title, (width, height)
    lines = textwrap.wrap(str(title), max(10, int((width - 0.6) / (0.0085 * fontsize)))) or [""]
    return "\n".join(lines), (width, height + len(lines) * 1.4 * fontsize / 72)


def _figure_class(caller):
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # an optional dependency
        raise ImportError(f"{caller} needs matplotlib: pip install matplotlib") from error
    return Figure


def _visible(token):
    return "␣" if token == " " else token
