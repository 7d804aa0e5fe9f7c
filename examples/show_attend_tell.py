"""Caption images with soft or hard attention over a CNN's feature map (Show, Attend and Tell).

Each 36 x 36 image, drawn here offline, holds two coloured shapes (circles, squares, triangles in
red, green, blue or yellow) in two cells of a 3 x 3 grid; its caption names them in reading order
and says how they sit: "a red circle left of a blue square" when they are in different columns,
"a green triangle above a yellow circle" when they share one. A small CNN trained from scratch
turns an image into a 9 x 9 feature map; an LSTM `AttentionDecoder` with Bahdanau attention
writes the caption while attending over the 81 positions, softly (a weighted mean) or hardly (one
position drawn from the weights: `--attention hard`, trained with the straight-through
Gumbel-softmax estimator or, with `--estimator reinforce`, the paper's REINFORCE), with Xu et
al.'s doubly stochastic regularisation and its initial state from the mean of the features.
Trained with model.fit on tf.data; held-out images are captioned by beam search. It reports
exact-caption accuracy and attention localisation: the fraction of shape mentions ("red circle")
whose attention, summed over the mention's two words, peaks on that shape (and the same for the
shape words alone); `--plot` overlays each word's attention on one image, and
`--export-dir` exports an image-to-caption SavedModel, reloaded to caption a few images.

Run: python examples/show_attend_tell.py [--attention soft|hard] [--estimator straight_through|reinforce]
     [--epochs 20] [--train-size 6000] [--plot caption.png] [--export-dir DIR]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from progress import step

import keras_seqattn as ksa
from keras_seqattn.decoding import beam_search
from keras_seqattn.export import export_captioner
from keras_seqattn.seq2seq import AttentionDecoder
from keras_seqattn.text import StartEndPacker, Vocabulary
from keras_seqattn.visualization import plot_image_attention

SIZE, CELL, GRID = 36, 12, 3  # pixels; the grid of places
COLOURS = {"red": (1.0, 0.1, 0.1), "green": (0.1, 0.9, 0.1), "blue": (0.2, 0.3, 1.0), "yellow": (1.0, 0.9, 0.1)}
SHAPES = ["circle", "square", "triangle"]
MAX_CAPTION, BEAM_WIDTH = 9, 3  # "a red circle left of a blue square" and END


def draw_shape(image, shape, colour, cy, cx, radius):
    """Paint `shape` on `image` in place; return its pixel mask."""
    y, x = np.mgrid[:SIZE, :SIZE]
    if shape == "circle":
        mask = (y - cy) ** 2 + (x - cx) ** 2 <= radius**2
    elif shape == "square":
        mask = (np.abs(y - cy) <= 0.8 * radius) & (np.abs(x - cx) <= 0.8 * radius)
    else:  # a triangle pointing up
        mask = (y >= cy - radius) & (y <= cy + radius) & (np.abs(x - cx) <= (y - cy + radius) / 2)
    image[mask] = COLOURS[colour]
    return mask


def make_images(size, rng):
    """Images `(size, 36, 36, 3)`, captions (strings), and the two shapes' pixel masks in the
    order the caption names them `(size, 2, 36, 36)`."""
    images = rng.uniform(0.0, 0.08, size=(size, SIZE, SIZE, 3)).astype("float32")
    captions, masks = [], np.zeros((size, 2, SIZE, SIZE), bool)
    for row in range(size):
        cells = rng.choice(GRID * GRID, 2, replace=False)
        shapes = []
        for cell in cells:
            shape, colour = SHAPES[rng.integers(3)], list(COLOURS)[rng.integers(4)]
            cy, cx = divmod(int(cell), GRID)
            centre = (cy * CELL + CELL / 2 + rng.uniform(-1.5, 1.5), cx * CELL + CELL / 2 + rng.uniform(-1.5, 1.5))
            mask = draw_shape(images[row], shape, colour, *centre, rng.uniform(3.5, 5.0))
            shapes.append((cy, cx, colour, shape, mask))
        (y1, x1, *_), (y2, x2, *_) = shapes
        if x1 != x2:  # reading order: the left one first, "left of"; else the upper one, "above"
            (a, b), relation = ((0, 1) if x1 < x2 else (1, 0)), "left of"
        else:
            (a, b), relation = ((0, 1) if y1 < y2 else (1, 0)), "above"
        captions.append(f"a {shapes[a][2]} {shapes[a][3]} {relation} a {shapes[b][2]} {shapes[b][3]}")
        masks[row] = shapes[a][4], shapes[b][4]
    return images, captions, masks


class Captioner(keras.Model):
    """CNN -> 9 x 9 x 96 feature map -> LSTM AttentionDecoder. `call` is teacher forcing;
    `initial_state` and `step` the decoding of beam search (and of the exported SavedModel)."""

    def __init__(self, vocabulary_size, sampling, doubly_stochastic, **kwargs):
        super().__init__(**kwargs)
        self.cnn = keras.Sequential(
            [  # a receptive field of 9 pixels: each cell sees little beyond itself
                keras.layers.Conv2D(48, 5, strides=2, padding="same", activation="relu"),  # 18 x 18
                keras.layers.Conv2D(96, 3, strides=2, padding="same", activation="relu"),  # 9 x 9
                keras.layers.Conv2D(96, 1, activation="relu"),
            ]
        )
        self.decoder = AttentionDecoder(
            keras.layers.LSTMCell(128),
            ksa.BahdanauAttention(64, sampling=sampling),
            vocabulary_size=vocabulary_size,
            embedding_dim=32,
            doubly_stochastic=doubly_stochastic,
            initial_state_from_memory=True,
        )

    def features(self, images):
        """(batch, 9, 9, 96): the CNN over the image and two channels of pixel coordinates, so
        that each position knows where it is ("left of" and "above" need it)."""
        rows, columns = tf.meshgrid(tf.linspace(-1.0, 1.0, SIZE), tf.linspace(-1.0, 1.0, SIZE), indexing="ij")
        where = tf.tile(tf.stack([rows, columns], -1)[None], [tf.shape(images)[0], 1, 1, 1])
        return self.cnn(tf.concat([images, where], -1))

    def call(self, inputs, training=None):
        images, caption_in, caption_out = inputs  # (batch, 36, 36, 3), (batch, T), (batch, T)
        return self.decoder(caption_in, self.features(images), targets=caption_out, training=training)

    def initial_state(self, images):
        return self.decoder.initial_state(self.features(images))

    def step(self, token_ids, state, step):
        return self.decoder.step(token_ids, state, step)


def localised(alignments, captions, masks, words_of):
    """The fraction of shape mentions whose attention, summed over the mention's words
    `words_of(caption_length)` (position lists, one per shape, in caption order), peaks on a 4 x 4
    cell of the 9 x 9 map that covers a pixel of that shape."""
    hits, total = 0, 0
    for weights, caption, shape_masks in zip(alignments, captions, masks):
        for which, positions in enumerate(words_of(len(caption.split()))):
            attention = weights[positions].sum(0)
            cy, cx = np.unravel_index(np.argmax(attention), attention.shape)
            hits += bool(shape_masks[which][cy * 4 : (cy + 1) * 4, cx * 4 : (cx + 1) * 4].any())
            total += 1
    return hits / max(total, 1)


def mentions(length):  # "a red circle left of a blue square": [1, 2] and [6, 7]
    return [[1, 2], [length - 2, length - 1]]


def nouns(length):  # the shape words alone: [2] and [7]
    return [[2], [length - 1]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attention", choices=["soft", "hard"], default="soft")
    parser.add_argument("--estimator", choices=["straight_through", "reinforce"], default="straight_through")
    parser.add_argument(
        "--doubly-stochastic",
        type=float,
        default=0.0,
        help="λ of the doubly stochastic regularisation (Xu et al. use 1 over 196 positions)",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--plot", default=None, help="where to save a caption's attention over its image (PNG)")
    parser.add_argument("--export-dir", help="export an image-to-caption SavedModel there")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    rng = np.random.default_rng(0)
    with step(f"drawing {args.train_size} + {args.test_size} captioned images"):
        train_images, train_captions, _ = make_images(args.train_size, rng)
        test_images, test_captions, test_masks = make_images(args.test_size, rng)
    vocabulary = Vocabulary(sorted({w for c in train_captions for w in c.split()}), split="words")

    pack = StartEndPacker(MAX_CAPTION, start_value=Vocabulary.START, end_value=Vocabulary.END)

    def prepare(images, captions):  # teacher forcing: START + caption -> caption + END
        ids = vocabulary.encode(captions)
        caption_in, caption_out = pack(ids, add_end_value=False), pack(ids, add_start_value=False)
        return (images, caption_in, caption_out), caption_out

    train = tf.data.Dataset.from_tensor_slices((train_images, train_captions)).shuffle(args.train_size, seed=0)
    train = train.batch(args.batch_size, drop_remainder=True).map(prepare).prefetch(tf.data.AUTOTUNE)

    # With REINFORCE, half of the captions read the expectation instead of a draw, as Xu et al. do.
    mix = 0.5 if args.estimator == "reinforce" else 0.0
    sampling = (
        "soft"
        if args.attention == "soft"
        else ksa.HardAttention(estimator=args.estimator, expectation_probability=mix, seed=0)
    )
    model = Captioner(vocabulary.size, sampling, args.doubly_stochastic)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        jit_compile=True,
    )
    model.fit(train, epochs=args.epochs, verbose=2)

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)])
    def caption(images):  # beam search over the decoder's step, one XLA-compiled loop
        start = tf.fill([tf.shape(images)[0]], Vocabulary.START)
        sequences, _, alignments = beam_search(
            model.step,
            model.initial_state(images),
            start,
            end_id=Vocabulary.END,
            beam_width=BEAM_WIDTH,
            max_length=MAX_CAPTION,
            return_attention_scores=True,
        )
        return vocabulary.decode(sequences[:, 0]), alignments[:, 0]  # the best hypotheses

    captions, alignments = [], []
    progress = keras.utils.Progbar(args.test_size, unit_name="image")
    for start in range(0, args.test_size, 250):
        found, weights = caption(test_images[start : start + 250])
        captions += [c.decode() for c in found.numpy()]
        alignments.append(weights.numpy().reshape(-1, MAX_CAPTION, 9, 9))
        progress.add(len(found))
    alignments = np.concatenate(alignments)
    for found, expected in list(zip(captions, test_captions))[:4]:
        print(f"{found!r} (expected {expected!r})")
    accuracy = np.mean([c == e for c, e in zip(captions, test_captions)])
    words = np.mean(
        [f == w for c, e in zip(captions, test_captions) for f, w in zip(c.split(), e.split())]
        + [False] * sum(max(0, len(e.split()) - len(c.split())) for c, e in zip(captions, test_captions))
    )
    print(
        f"exact-caption accuracy: {accuracy:.4f} on {args.test_size} held-out images ({args.attention} attention); "
        f"word accuracy: {words:.4f}"
    )
    print(
        f"attention localisation: {localised(alignments, test_captions, test_masks, mentions):.4f} of shape "
        f"mentions (colour and shape word), {localised(alignments, test_captions, test_masks, nouns):.4f} "
        "of shape words alone"
    )

    if args.plot:
        words = captions[0].split()
        plot_image_attention(test_images[0], alignments[0][: len(words)], words, path=args.plot, title=captions[0])
        print(f"attention over the image saved to {args.plot}")

    if args.export_dir:
        with step(f"exporting to {args.export_dir}"):
            export_captioner(
                model,
                args.export_dir,
                vocabulary,
                image_shape=(SIZE, SIZE, 3),
                max_target_length=MAX_CAPTION,
                beam_width=BEAM_WIDTH,
            )
        serve = tf.saved_model.load(args.export_dir).signatures["serving_default"]
        for found, expected in zip(serve(image=tf.constant(test_images[:3]))["caption"].numpy(), test_captions):
            print(f"served: {found.decode()!r} (expected {expected!r})")


if __name__ == "__main__":
    main()
