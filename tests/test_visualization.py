import numpy as np
import pytest

from keras_seqattn.visualization import plot_attention

ALIGNMENTS = np.random.default_rng(0).dirichlet(np.ones(6), size=5).astype("float32")  # (5, 6)


def test_heat_map_holds_the_alignments_and_the_tokens(tmp_path):
    path = tmp_path / "attention.png"
    figure = plot_attention(ALIGNMENTS, list("2 nov"), list("2026"), path=path, title="a date")
    axes = figure.axes[0]
    np.testing.assert_array_equal(axes.images[0].get_array(), ALIGNMENTS[:4, :5])  # padding cut off
    assert [t.get_text() for t in axes.get_xticklabels()] == ["2", "␣", "n", "o", "v"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["2", "0", "2", "6"]
    assert axes.get_title() == "a date"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("alignments, source, target, argument", [
    (ALIGNMENTS[0], "ab", "c", "alignments"),
    (ALIGNMENTS, "abcdefg", "c", "source_tokens"),
    (ALIGNMENTS, "ab", "", "target_tokens"),
])
def test_bad_input(alignments, source, target, argument):
    with pytest.raises(ValueError, match=argument):
        plot_attention(alignments, source, target)
