import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn.decoding import beam_search, greedy_search
from keras_seqattn.export import export_translator
from keras_seqattn.text import Vocabulary
from tests.export.translator_model import MAX_SOURCE, MAX_TARGET, make_translator

TEXTS = ["hello world", "guten Tag", "", "bonjour", "hola mundo, 12 - 05 - 2026 and much more text", "hello 世界 Tag"]
BAD_UTF8 = b"\xff\xfehello"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model, source_vocabulary, target_vocabulary = make_translator()
    path = str(tmp_path_factory.mktemp("served") / "translator")
    module = export_translator(
        model,
        path,
        source_vocabulary,
        target_vocabulary,
        MAX_SOURCE,
        MAX_TARGET,
        beam_width=3,
        length_penalty=0.6,
        return_attention_scores=True,
    )
    return model, source_vocabulary, target_vocabulary, path, module


def _in_memory(model, source_vocabulary, target_vocabulary, texts, beam_width):
    """The translations computed outside the exported graph: Python padding and truncation,
    eager search, Python detokenization."""
    rows = [ids[:MAX_SOURCE] for ids in source_vocabulary.encode(tf.constant(texts)).to_list()]
    source = np.zeros((len(texts), MAX_SOURCE), "int32")
    for row, ids in enumerate(rows):
        source[row, : len(ids)] = ids
    state = model.initial_state(tf.constant(source))
    start = tf.fill([len(texts)], Vocabulary.START)
    if beam_width == 1:
        sequences, scores = greedy_search(model.step, state, start, end_id=Vocabulary.END, max_length=MAX_TARGET)
    else:
        sequences, scores = beam_search(
            model.step,
            state,
            start,
            end_id=Vocabulary.END,
            beam_width=beam_width,
            max_length=MAX_TARGET,
            length_penalty=0.6,
        )
        sequences, scores = sequences[:, 0], scores[:, 0]
    translations = []
    for ids in sequences.numpy().tolist():
        ids = ids[: ids.index(Vocabulary.END)] if Vocabulary.END in ids else ids
        translations.append(
            "".join(target_vocabulary.tokens[i - Vocabulary.RESERVED] for i in ids if i >= Vocabulary.RESERVED)
        )
    return translations, scores.numpy()


def test_served_translations_equal_the_in_memory_model(exported):
    model, source_vocabulary, target_vocabulary, _, module = exported
    outputs = module.translate(tf.constant(TEXTS))
    translations, scores = _in_memory(model, source_vocabulary, target_vocabulary, TEXTS, beam_width=3)
    assert [t.decode() for t in outputs["translation"].numpy()] == translations
    assert any(translations)  # not all empty: the comparison compares something
    np.testing.assert_allclose(outputs["score"], scores, rtol=1e-5)
    assert outputs["attention"].shape == (len(TEXTS), MAX_TARGET, MAX_SOURCE)


def test_greedy_export(tmp_path):
    model, source_vocabulary, target_vocabulary = make_translator()
    module = export_translator(
        model, str(tmp_path / "greedy"), source_vocabulary, target_vocabulary, MAX_SOURCE, MAX_TARGET, beam_width=1
    )
    outputs = module.translate(tf.constant(TEXTS))
    assert sorted(outputs) == ["score", "translation"]
    translations, scores = _in_memory(model, source_vocabulary, target_vocabulary, TEXTS, beam_width=1)
    assert [t.decode() for t in outputs["translation"].numpy()] == translations
    np.testing.assert_allclose(outputs["score"], scores, rtol=1e-5)


def test_any_batch_size_runs_without_retracing(exported):
    module = exported[4]
    module.translate(tf.constant(TEXTS))
    traced = module.translate.experimental_get_tracing_count()
    for batch in (0, 1, 2, 17, 64):
        outputs = module.translate(tf.constant((TEXTS * 11)[:batch], tf.string))
        assert outputs["translation"].shape == (batch,) and outputs["score"].shape == (batch,)
    assert module.translate.experimental_get_tracing_count() == traced


_COUNT_COMPILES = textwrap.dedent(
    """
    import glob, os, sys
    import tensorflow as tf
    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    for size in map(int, sys.argv[3:]):
        assert serve(text=tf.constant(["guten Tag"] * size))["translation"].shape == (size,)
        print(len(glob.glob(os.path.join(sys.argv[2], "*before_optimizations.txt"))))  # programs so far
    """
)


@pytest.mark.parametrize("batch_buckets", [True, False])
def test_a_server_compiles_once_per_power_of_two_bucket(tmp_path, batch_buckets):
    model, source_vocabulary, target_vocabulary = make_translator()
    module = export_translator(
        model,
        str(tmp_path / "served"),
        source_vocabulary,
        target_vocabulary,
        MAX_SOURCE,
        MAX_TARGET,
        beam_width=2,
        batch_buckets=batch_buckets,
    )
    texts = (TEXTS * 4)[:17]
    outputs = module.translate(tf.constant(texts))
    for row, text in enumerate(texts[: len(TEXTS)]):  # each row is what it is alone: padding changes nothing
        alone = module.translate(tf.constant([text]))
        assert alone["translation"].numpy()[0] == outputs["translation"].numpy()[row]
        np.testing.assert_allclose(alone["score"].numpy()[0], outputs["score"].numpy()[row], rtol=1e-5)

    # Served in a fresh process, XLA's programs counted as they are compiled (dumped).
    sizes = [3, 5, 6, 7, 9, 12, 16, 17]
    dump = str(tmp_path / "xla")
    result = subprocess.run(
        [sys.executable, "-c", _COUNT_COMPILES, str(tmp_path / "served"), dump, *map(str, sizes)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "XLA_FLAGS": f"--xla_dump_to={dump} --xla_dump_hlo_as_text"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    programs = [int(line) for line in result.stdout.split()]
    new = [b > a for a, b in zip([0] + programs, programs)]
    if batch_buckets:  # buckets 4, 8, 8, 8, 16, 16, 16, 32
        assert new == [True, True, False, False, True, False, False, True], programs
    else:
        assert all(new), programs


def test_edge_inputs(exported):
    module = exported[4]
    texts = tf.constant(
        [
            b"",
            BAD_UTF8,
            "\ufffd\ufffdhello".encode(),
            TEXTS[4].encode(),
            TEXTS[4][:MAX_SOURCE].encode(),
            "hello 世界 Tag".encode(),
        ]
    )
    outputs = module.translate(texts)
    translation, score, attention = (outputs[k].numpy() for k in ("translation", "score", "attention"))
    assert np.all(np.isfinite(score))
    assert translation[1] == translation[2] and score[1] == score[2]  # bad bytes read as U+FFFD
    assert translation[3] == translation[4] and score[3] == score[4]  # truncated to MAX_SOURCE tokens
    for translated in translation:
        translated.decode("utf-8")  # valid UTF-8 out
    # The empty input attends to nothing; the others only to their tokens.
    assert np.all(attention[0] == 0)
    lengths = [0, 7, 7, MAX_SOURCE, MAX_SOURCE, 12]
    for row, length in enumerate(lengths):
        assert np.all(attention[row, :, length:] == 0)
    single = module.translate(tf.constant(["guten Tag"]))
    assert single["translation"].numpy()[0] == module.translate(tf.constant(TEXTS))["translation"].numpy()[1]


_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    sys.modules["keras_seqattn"] = None  # importing either now raises ImportError
    sys.modules["keras"] = None
    sys.modules["tensorflow_text"] = None  # the graph holds core TensorFlow ops only
    import numpy as np
    import tensorflow as tf
    expected = np.load(sys.argv[2])
    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    outputs = serve(text=tf.constant(expected["text"]))
    assert sorted(outputs) == ["attention", "score", "translation"], sorted(outputs)
    assert outputs["translation"].dtype == tf.string and outputs["score"].dtype == tf.float32
    np.testing.assert_array_equal(outputs["translation"].numpy(), expected["translation"])
    np.testing.assert_allclose(outputs["score"].numpy(), expected["score"], rtol=1e-5)
    for batch in (1, 64):
        assert serve(text=tf.constant([b"bonjour"] * batch))["translation"].shape == (batch,)
    print("served translations match")
    """
)


def test_served_in_a_fresh_process_without_keras(exported, tmp_path):
    model, source_vocabulary, target_vocabulary, path, module = exported
    texts = np.array([t.encode() for t in TEXTS] + [BAD_UTF8], dtype=object)
    outputs = module.translate(tf.constant(texts))
    np.savez(
        tmp_path / "expected.npz",
        text=texts.astype(bytes),
        translation=outputs["translation"].numpy().astype(bytes),
        score=outputs["score"].numpy(),
    )
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, path, str(tmp_path / "expected.npz")],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "served translations match" in result.stdout


def test_saved_model_cli_prints_the_translations(exported):
    path, module = exported[3], exported[4]
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    command = [cli] if os.path.exists(cli) else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(
        command
        + [
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            "text=[b'bonjour', b'hello world']",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = module.translate(tf.constant(["bonjour", "hello world"]))["translation"].numpy()
    printed = result.stdout.split("Result for output key translation:")[1]
    assert all(repr(t) in printed for t in expected), result.stdout


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(source_vocabulary=["a"]), "source_vocabulary"),
        (dict(target_vocabulary=None), "target_vocabulary"),
        (dict(model=object()), "model"),
        (dict(max_source_length=0), "max_source_length"),
        (dict(max_target_length=None), "max_target_length"),
        (dict(beam_width=0), "beam_width"),
    ],
)
def test_bad_arguments(kwargs, argument, tmp_path):
    model, source_vocabulary, target_vocabulary = make_translator()
    arguments = dict(
        model=model,
        export_dir=str(tmp_path),
        source_vocabulary=source_vocabulary,
        target_vocabulary=target_vocabulary,
        max_source_length=4,
        max_target_length=4,
    )
    with pytest.raises(ValueError, match=argument):
        export_translator(**{**arguments, **kwargs})
    assert not os.listdir(tmp_path)  # nothing written
