"""Classify reviews with a hierarchical attention network whose verdict hides in one sentence.

Each review is 4 to 8 sentences about a restaurant. Most sentences praise or criticise one thing
("the soup was cold", "i liked the garden"), with positive and negative words in every review; one
sentence, anywhere, gives the verdict ("overall the evening was wonderful", "all in all it was a
disappointing visit"), and the label is its polarity. So a model must find that sentence, then the
word that decides it: what the two attention levels of a HAN (Yang et al., 2016) do. The reviews
are generated here, offline, from a small grammar.

The model: word embeddings, a bidirectional GRU and `AttentionPooling` over each sentence's words,
a bidirectional GRU and `AttentionPooling` over the sentence vectors (`HierarchicalAttention`), a
softmax over the classes; trained with model.fit on tf.data. It reports test accuracy and the
fraction of test reviews whose highest-weighted sentence is the verdict, and `--plot` draws both
levels of weights for one review.

Run: python examples/hierarchical_attention.py [--epochs 14] [--train-size 6000] [--plot han.png]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from progress import step

import keras_seqattn as ksa
from keras_seqattn.visualization import plot_hierarchical_attention

EMBED, UNITS, MAX_SENTENCES, MAX_WORDS = 32, 32, 8, 9
THINGS = ["soup", "bread", "wine", "service", "waiter", "garden", "music", "dessert", "pasta", "menu"]
GOOD = ["good", "great", "lovely", "superb", "excellent", "tasty", "friendly", "wonderful"]
BAD = ["bad", "awful", "cold", "rude", "bland", "poor", "terrible", "disappointing"]
OPINIONS = [  # what a distractor says of one thing
    lambda t, w: ["the", t, "was", w],
    lambda t, w: ["i", "thought", "the", t, "was", w],
    lambda t, w: ["honestly", "the", t, "was", "quite", w],
    lambda t, w: ["we", "found", "the", t, w],
]
VERDICTS = [  # the sentence that decides the label
    lambda w: ["overall", "the", "evening", "was", w],
    lambda w: ["all", "in", "all", "it", "was", "a", w, "visit"],
    lambda w: ["in", "the", "end", "we", "had", "a", w, "time"],
    lambda w: ["to", "sum", "up", "it", "was", w],
]


def make_reviews(size, rng):
    """(reviews as lists of sentences of words, labels 0/1, the verdict's sentence index)."""
    reviews, labels, verdicts = [], [], []
    for _ in range(size):
        label = int(rng.integers(2))
        sentences = [
            OPINIONS[rng.integers(len(OPINIONS))](
                THINGS[rng.integers(len(THINGS))], (GOOD, BAD)[rng.integers(2)][rng.integers(8)]
            )
            for _ in range(rng.integers(3, MAX_SENTENCES))
        ]
        verdict = int(rng.integers(len(sentences) + 1))
        word = (BAD, GOOD)[label][rng.integers(8)]
        sentences.insert(verdict, VERDICTS[rng.integers(len(VERDICTS))](word))
        reviews.append(sentences)
        labels.append(label)
        verdicts.append(verdict)
    return reviews, np.array(labels), np.array(verdicts)


def to_ids(reviews, vocabulary):
    """(size, MAX_SENTENCES, MAX_WORDS) int32 word ids, 0 padding words and sentences."""
    ids = np.zeros((len(reviews), MAX_SENTENCES, MAX_WORDS), "int32")
    for r, sentences in enumerate(reviews):
        for s, words in enumerate(sentences):
            ids[r, s, : len(words)] = [vocabulary[w] for w in words]
    return ids


def build_model(vocabulary_size):
    words = keras.Input((MAX_SENTENCES, MAX_WORDS), dtype="int32")  # (batch, sentences, words)
    x = keras.layers.Embedding(vocabulary_size, EMBED, mask_zero=True)(words)  # (batch, S, W, EMBED), masked
    review, sentence_weights, word_weights = ksa.HierarchicalAttention(
        keras.layers.Bidirectional(keras.layers.GRU(UNITS // 2, return_sequences=True)),
        keras.layers.Bidirectional(keras.layers.GRU(UNITS // 2, return_sequences=True)),
        word_units=UNITS,
        sentence_units=UNITS,
    )(x, return_attention_scores=True)  # (batch, UNITS), (b, S), (b, S, W)
    logits = keras.layers.Dense(2)(review)
    return keras.Model(words, logits), keras.Model(words, [logits, sentence_weights, word_weights])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--plot", default=None, help="where to save the two levels of weights of a review (PNG)")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    rng = np.random.default_rng(0)
    with step(f"writing {args.train_size} + {args.test_size} reviews"):
        train_reviews, train_labels, _ = make_reviews(args.train_size, rng)
        test_reviews, test_labels, test_verdicts = make_reviews(args.test_size, rng)
    words = sorted({w for review in train_reviews + test_reviews for sentence in review for w in sentence})
    vocabulary = {w: i + 1 for i, w in enumerate(words)}  # 0 pads
    train = tf.data.Dataset.from_tensor_slices((to_ids(train_reviews, vocabulary), train_labels))
    train = train.shuffle(args.train_size, seed=0).batch(args.batch_size).prefetch(tf.data.AUTOTUNE)

    model, explained = build_model(len(vocabulary) + 1)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        metrics=["accuracy"],
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(train, epochs=args.epochs, verbose=2)

    logits, sentence_weights, word_weights = explained.predict(to_ids(test_reviews, vocabulary), verbose=0)
    accuracy = np.mean(np.argmax(logits, -1) == test_labels)
    found = np.mean(np.argmax(sentence_weights, -1) == test_verdicts)
    print(f"test accuracy: {accuracy:.4f} on {args.test_size} reviews")
    print(f"verdict sentence weighted highest: {found:.4f} of test reviews")

    if args.plot:
        row = 0
        plot_hierarchical_attention(
            sentence_weights[row],
            word_weights[row],
            test_reviews[row],
            path=args.plot,
            title=f"label {'positive' if test_labels[row] else 'negative'}",
        )
        print(f"attention weights saved to {args.plot}")


if __name__ == "__main__":
    main()
