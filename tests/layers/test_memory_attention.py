import numpy as np
import pytest

from keras_seqattn import MemoryAttention
from tests import reference
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
VOCAB, DIM = 12, 6
# 3 stories of up to 4 memories of up to 5 words; 0 pads words and whole memories.
STORY = np.array(
    [
        [[1, 2, 3, 0, 0], [4, 5, 0, 0, 0], [6, 7, 8, 9, 10], [0, 0, 0, 0, 0]],
        [[11, 2, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
        [[0, 0, 0, 0, 0]] * 4,  # no memory at all
    ],
    "int32",
)
QUERY = np.array([[3, 4, 0], [5, 0, 0], [1, 1, 2]], "int32")


def test_harness(tmp_path):
    # The harness trains through Dense layers on float inputs; ids are not trainable inputs, so
    # the model's own embeddings must change.
    run_layer_test(
        MemoryAttention,
        dict(vocabulary_size=VOCAB, embedding_dim=DIM, hops=2, max_memories=4),
        dict(story=STORY, query=QUERY),
        tmp_path=str(tmp_path),
        expected_output_shape=(3, DIM),
    )


def _position_encoding(ids, d):
    """The paper's l_kj = (1 - j/J) - (k/d)(1 - 2j/J), J the number of words of the sentence."""
    out = np.zeros(ids.shape + (d,))
    for index in np.ndindex(ids.shape[:-1]):
        words = ids[index]
        length = max(1, int((words > 0).sum()))
        for j in range(1, len(words) + 1):
            if words[j - 1] > 0:
                k = np.arange(1, d + 1)
                out[index + (j - 1,)] = (1 - j / length) - (k / d) * (1 - 2 * j / length)
    return out


def _reference(layer, story, query):
    """MemN2N, equation by equation (section 2 and 4.1 of the paper), in float64."""
    w = {v.path.split("/")[-1]: v.numpy().astype(np.float64) for v in layer.weights}
    hops, tying = layer.hops, layer.weight_tying
    if tying == "adjacent":
        a = [w[f"memory_embedding_{k}"] for k in range(hops)]
        c = [w[f"memory_embedding_{k + 1}"] for k in range(hops)]
        b = w["memory_embedding_0"]
        ta = [w.get(f"temporal_encoding_{k}") for k in range(hops)]
        tc = [w.get(f"temporal_encoding_{k + 1}") for k in range(hops)]
    else:
        a, c = [w["memory_embedding_0"]] * hops, [w["memory_embedding_1"]] * hops
        b = w["query_embedding"]
        ta, tc = [w.get("temporal_encoding_0")] * hops, [w.get("temporal_encoding_1")] * hops
    weigh = (
        (lambda ids: _position_encoding(ids, DIM))
        if layer.position_encoding
        else (lambda ids: np.repeat((ids > 0)[..., None], DIM, -1).astype(np.float64))
    )
    story_l, query_l = weigh(story), weigh(query)
    u = (b[query] * query_l).sum(-2)
    present = (story > 0).any(-1)
    all_p = []
    for k in range(hops):
        m = (a[k][story] * story_l).sum(-2)
        out = (c[k][story] * story_l).sum(-2)
        if ta[k] is not None:
            m, out = m + ta[k][: story.shape[1]], out + tc[k][: story.shape[1]]
        p = reference.softmax(np.einsum("bd,bmd->bm", u, m), present)
        o = np.einsum("bm,bmd->bd", p, out)
        u = (u @ w["query_kernel"] if layer.query_mapping else u) + o
        all_p.append(p)
    return u, np.stack(all_p, 1)


@pytest.mark.parametrize("hops", [1, 3])
@pytest.mark.parametrize(
    "init",
    [
        dict(),
        dict(weight_tying="layer_wise"),
        dict(position_encoding=False),
        dict(max_memories=4),
        dict(weight_tying="layer_wise", max_memories=6, query_mapping=False),
    ],
)
def test_against_the_papers_equations(hops, init):
    layer = MemoryAttention(VOCAB, DIM, hops=hops, **init)
    layer(STORY, QUERY)
    for weight in layer.weights:
        weight.assign(RNG.normal(size=weight.shape).astype("float32") * 0.5)
    state, weights = layer(STORY, QUERY, return_attention_scores=True)
    expected, expected_weights = _reference(layer, STORY, QUERY)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-5)
    np.testing.assert_allclose(state, expected, rtol=1e-4, atol=1e-4)
    assert weights.shape == (3, hops, 4)
    assert np.all(np.asarray(weights)[0, :, 3] == 0) and np.all(np.asarray(weights)[1, :, 1:] == 0)
    assert np.all(np.asarray(weights)[2] == 0)  # no memory: nothing attended, no NaN


def test_weight_tying_counts():
    def names(**init):
        layer = MemoryAttention(VOCAB, DIM, hops=3, max_memories=4, **init)
        layer(STORY, QUERY)
        return sorted(v.path.split("/")[-1] for v in layer.weights)

    assert names() == [f"memory_embedding_{k}" for k in range(4)] + [f"temporal_encoding_{k}" for k in range(4)]
    assert names(weight_tying="layer_wise") == [
        "memory_embedding_0",
        "memory_embedding_1",
        "query_embedding",
        "query_kernel",
        "temporal_encoding_0",
        "temporal_encoding_1",
    ]


@pytest.mark.parametrize(
    "init, call, argument",
    [
        (dict(hops=0), None, "hops"),
        (dict(weight_tying="none"), None, "weight_tying"),
        (dict(query_mapping="yes"), None, "query_mapping"),
        (dict(max_memories=0), None, "max_memories"),
        (dict(max_memories=3), dict(story=STORY, query=QUERY), "max_memories"),
        (dict(), dict(story=STORY[0], query=QUERY), "story"),
        (dict(), dict(story=STORY, query=QUERY[:2]), "batch size"),
    ],
)
def test_bad_input(init, call, argument):
    with pytest.raises(ValueError, match=argument):
        MemoryAttention(**{"vocabulary_size": VOCAB, "embedding_dim": DIM, **init})(**call)
