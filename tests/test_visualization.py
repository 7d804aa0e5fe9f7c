import numpy as np
import pytest

from keras_seqattn.visualization import (
    plot_attention,
    plot_hierarchical_attention,
    plot_image_attention,
    plot_memory_hops,
    plot_pooling,
)

ALIGNMENTS = np.random.default_rng(0).dirichlet(np.ones(6), size=5).astype("float32")  # (5, 6)


def test_heat_map_holds_the_alignments_and_the_tokens(tmp_path):
    path = tmp_path / "attention.png"
    figure = plot_attention(ALIGNMENTS, list("2 nov"), list("2026"), path=path, title="a date")
    axes = figure.axes[0]
    np.testing.assert_array_equal(axes.images[0].get_array(), ALIGNMENTS[:4, :5])  # padding cut off
    assert [t.get_text() for t in axes.get_xticklabels()] == ["2", "␣", "n", "o", "v"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["2", "0", "2", "6"]
    assert figure.get_suptitle() == "a date"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "alignments, source, target, argument",
    [
        (ALIGNMENTS[0], "ab", "c", "alignments"),
        (ALIGNMENTS, "abcdefg", "c", "source_tokens"),
        (ALIGNMENTS, "ab", "", "target_tokens"),
    ],
)
def test_bad_input(alignments, source, target, argument):
    with pytest.raises(ValueError, match=argument):
        plot_attention(alignments, source, target)


PNG = b"\x89PNG\r\n\x1a\n"


def test_pooling_weights_over_tokens(tmp_path):
    weights = np.array([0.1, 0.6, 0.3, 0.0], "float32")
    figure = plot_pooling(weights, ["not", "bad", "at"], path=tmp_path / "pooling.png")
    axes = figure.axes[0]
    np.testing.assert_array_equal(axes.images[0].get_array(), weights[None, :3])
    assert [t.get_text() for t in axes.get_xticklabels()] == ["not", "bad", "at"]
    assert (tmp_path / "pooling.png").read_bytes()[:8] == PNG
    heads = plot_pooling(np.ones((2, 3)) / 3, list("abc")).axes[0]
    assert [t.get_text() for t in heads.get_yticklabels()] == ["head 0", "head 1"]
    with pytest.raises(ValueError, match="weights"):
        plot_pooling(np.ones((1, 2, 3)), list("abc"))
    with pytest.raises(ValueError, match="tokens"):
        plot_pooling(weights, list("abcde"))


def test_hierarchical_attention_levels(tmp_path):
    sentence_weights = np.array([0.2, 0.8, 0.0], "float32")
    word_weights = np.array([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0.0, 0.0, 0.0]], "float32")
    figure = plot_hierarchical_attention(
        sentence_weights,
        word_weights,
        [["it", "rained"], ["overall", "it", "was"]],
        path=tmp_path / "han.png",
        title="a review",
    )
    sentence_axes, word_axes = figure.axes[:2]
    np.testing.assert_array_equal(sentence_axes.images[0].get_array()[:, 0], sentence_weights[:2])
    shown = np.asarray(word_axes.images[0].get_array())
    np.testing.assert_array_equal(shown[1], word_weights[1])
    assert np.isnan(shown[0, 2])  # the first sentence has two words
    assert [t.get_text() for t in word_axes.texts] == ["it", "rained", "overall", "it", "was"]
    assert (tmp_path / "han.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="word_weights"):
        plot_hierarchical_attention(sentence_weights, word_weights[:2], [["a"]])
    with pytest.raises(ValueError, match="sentences"):
        plot_hierarchical_attention(sentence_weights, word_weights, [["a", "b", "c", "d"]])


def test_memory_hops(tmp_path):
    weights = np.array([[0.7, 0.3, 0.0], [0.1, 0.9, 0.0]], "float32")  # (hops, memories)
    figure = plot_memory_hops(weights, ["mary went to the kitchen", "mary got the apple"], path=tmp_path / "hops.png")
    axes = figure.axes[0]
    np.testing.assert_array_equal(axes.images[0].get_array(), weights[:, :2].T)
    assert [t.get_text() for t in axes.get_xticklabels()] == ["hop 1", "hop 2"]
    assert (tmp_path / "hops.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="memories"):
        plot_memory_hops(weights, ["a", "b", "c", "d"])


def test_image_attention_overlays(tmp_path):
    image = np.zeros((12, 12, 3), "float32")
    image[:6, :6, 0] = 1.0  # a red patch, top left
    alignments = np.zeros((4, 3, 3), "float32")
    alignments[:, 0, 0] = 1.0
    figure = plot_image_attention(
        image, alignments, ["a", "red", "square"], path=tmp_path / "image.png", title="a red square"
    )
    axes = figure.axes
    assert len(axes) == 4  # the image, then one panel per word
    assert [ax.get_title() for ax in axes] == ["", "a", "red", "square"]
    np.testing.assert_array_equal(axes[2].images[1].get_array(), alignments[1])
    assert axes[2].images[1].get_extent() == [0, 12, 12, 0]  # the 3 x 3 cells cover the whole image
    assert (tmp_path / "image.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="alignments"):
        plot_image_attention(image, alignments[0], ["a"])
    with pytest.raises(ValueError, match="words"):
        plot_image_attention(image, alignments, list("abcde"))
    with pytest.raises(ValueError, match="image"):
        plot_image_attention(np.zeros(5), alignments, ["a"])


TITLE = "Attention of a model trained for six epochs on two thousand dates, beam width four"


@pytest.mark.parametrize(
    "plot",
    [
        lambda title: plot_attention(np.eye(2), ["a", "b"], ["x", "y"], title=title),
        lambda title: plot_pooling(np.array([0.3, 0.7]), ["a", "b"], title=title),
        lambda title: plot_hierarchical_attention(np.array([1.0]), np.array([[0.5, 0.5]]), [["a", "b"]], title=title),
        lambda title: plot_memory_hops(np.array([[0.5, 0.5]]), ["a", "b"], title=title),
        lambda title: plot_image_attention(np.zeros((4, 4)), np.ones((1, 2, 2)) / 4, ["a"], title=title),
    ],
    ids=["alignments", "pooling", "hierarchical", "memory", "image"],
)
def test_long_titles_fit_short_inputs(plot):
    figure = plot(TITLE)
    figure.canvas.draw()
    texts = [t for t in figure.findobj(lambda o: hasattr(o, "get_text") and o.get_text()) if "beam" in t.get_text()]
    assert texts, "no title drawn"
    box, inside = texts[0].get_window_extent(), figure.bbox
    assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, (box, inside)
    assert " ".join(texts[0].get_text().split()) == TITLE  # wrapped, every word kept
