"""Answer questions about stories with an end-to-end memory network (Sukhbaatar et al., 2015).

The stories are bAbI-style (Weston et al., 2015), written here, offline, by a small world
simulation: people move between places, pick up and drop objects. Task 1 (single supporting fact)
asks where a person is; task 2 (two supporting facts) asks where an object is, which needs the
sentence where someone took it and that person's last move. Each story's sentences are the
memories, most recent first, and the question attends over them for 3 hops
(`keras_seqattn.MemoryAttention`: adjacent weight tying, position and temporal encoding), then a
softmax over the places answers. One model is trained per task with model.fit on tf.data; the
script reports test accuracy, how often the first hop's highest weight is on a supporting fact,
and `--plot` draws the hops' weights over the facts of one task-2 story.

Run: python examples/memory_network.py [--tasks 1 2] [--epochs 40] [--train-size 5000] [--plot hops.png]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from progress import step

import keras_seqattn as ksa
from keras_seqattn.visualization import plot_memory_hops

PEOPLE = ["mary", "john", "sandra", "daniel"]
PLACES = ["kitchen", "garden", "office", "bathroom", "hallway", "bedroom"]
OBJECTS = ["football", "apple", "milk"]
MOVES = [
    ["moved", "to", "the"],
    ["went", "to", "the"],
    ["journeyed", "to", "the"],
    ["travelled", "to", "the"],
    ["went", "back", "to", "the"],
]
TAKES = [["got", "the"], ["picked", "up", "the"], ["grabbed", "the"], ["took", "the"]]
DROPS = [["dropped", "the"], ["discarded", "the"], ["put", "down", "the"], ["left", "the"]]
MAX_MEMORIES, MAX_WORDS, DIM, HOPS = 20, 6, 48, 3


def story_task1(rng):
    """Moves only; "where is <person> ?" -> their last place; the fact is that move."""
    facts, last = [], {}
    for _ in range(rng.integers(2, 11)):
        person, place = PEOPLE[rng.integers(4)], PLACES[rng.integers(6)]
        facts.append([person] + MOVES[rng.integers(len(MOVES))] + [place])
        last[person] = (place, len(facts) - 1)
    person = sorted(last)[rng.integers(len(last))]
    place, supporting = last[person]
    return facts, ["where", "is", person], place, [supporting]


def story_task2(rng):
    """Moves, takes and drops; "where is the <object> ?" -> where it is: its holder's last place,
    or where it was dropped. The facts are the take (or drop) and the holder's move before it, or
    the take and the holder's move after it."""
    while True:
        facts, place, move_fact, holder, where = [], {}, {}, {}, {}
        for _ in range(rng.integers(4, 17)):
            person = PEOPLE[rng.integers(4)]
            held = [o for o, p in holder.items() if p == person]
            free = [o for o in OBJECTS if o not in holder]
            action = rng.random()
            if action < 0.2 and free and person in place:
                thing = free[rng.integers(len(free))]
                facts.append([person] + TAKES[rng.integers(len(TAKES))] + [thing])
                holder[thing], where[thing] = person, ("held", len(facts) - 1)
            elif action < 0.35 and held:
                thing = held[rng.integers(len(held))]
                facts.append([person] + DROPS[rng.integers(len(DROPS))] + [thing])
                del holder[thing]
                where[thing] = ("dropped", place[person], [len(facts) - 1, move_fact[person]])
            else:
                destination = PLACES[rng.integers(6)]
                facts.append([person] + MOVES[rng.integers(len(MOVES))] + [destination])
                place[person], move_fact[person] = destination, len(facts) - 1
        known = [o for o in where if where[o][0] == "dropped" or holder.get(o) in place]
        if known and len(facts) <= MAX_MEMORIES:
            break
    thing = known[rng.integers(len(known))]
    if where[thing][0] == "dropped":
        answer, supporting = where[thing][1], where[thing][2]
    else:
        person = holder[thing]
        answer, supporting = place[person], [where[thing][1], move_fact[person]]
    return facts, ["where", "is", "the", thing], answer, supporting


def make_data(task, size, rng, vocabulary):
    """Memories (most recent first) `(size, MAX_MEMORIES, MAX_WORDS)`, questions `(size, MAX_WORDS)`,
    answers (place indices), supporting memory slots, and the stories' facts as strings."""
    story = {1: story_task1, 2: story_task2}[task]
    memories = np.zeros((size, MAX_MEMORIES, MAX_WORDS), "int32")
    questions = np.zeros((size, MAX_WORDS), "int32")
    answers, supporting, texts = np.zeros(size, "int32"), [], []
    for row in range(size):
        facts, question, answer, support = story(rng)
        for slot, fact in enumerate(reversed(facts)):  # slot 0: the most recent fact
            memories[row, slot, : len(fact)] = [vocabulary[w] for w in fact]
        questions[row, : len(question)] = [vocabulary[w] for w in question]
        answers[row] = PLACES.index(answer)
        supporting.append([len(facts) - 1 - i for i in support])
        texts.append([" ".join(f) for f in reversed(facts)])
    return memories, questions, answers, supporting, texts


def build_model(vocabulary_size):
    story = keras.Input((MAX_MEMORIES, MAX_WORDS), dtype="int32")
    question = keras.Input((MAX_WORDS,), dtype="int32")
    state, weights = ksa.MemoryAttention(vocabulary_size, DIM, hops=HOPS, max_memories=MAX_MEMORIES)(
        story, question, return_attention_scores=True
    )  # (batch, DIM), (batch, HOPS, MAX_MEMORIES)
    logits = keras.layers.Dense(len(PLACES))(state)  # the paper's W: softmax(W u^{K+1})
    return keras.Model([story, question], logits), keras.Model([story, question], [logits, weights])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--plot", default=None, help="where to save the hops' weights over a story's facts (PNG)")
    args = parser.parse_args()
    words = sorted(
        {w for group in (PEOPLE, PLACES, OBJECTS, ["where", "is", "the"]) for w in group}
        | {w for phrases in (MOVES, TAKES, DROPS) for phrase in phrases for w in phrase}
    )
    vocabulary = {w: i + 1 for i, w in enumerate(words)}  # 0 pads

    for task in args.tasks:
        keras.utils.set_random_seed(task)
        rng = np.random.default_rng(task)
        with step(f"task {task}: simulating {args.train_size} + {args.test_size} stories"):
            *train, _, _ = make_data(task, args.train_size, rng, vocabulary)
            memories, questions, answers, supporting, texts = make_data(task, args.test_size, rng, vocabulary)
        data = tf.data.Dataset.from_tensor_slices(((train[0], train[1]), train[2]))
        data = data.shuffle(args.train_size, seed=task).batch(args.batch_size).prefetch(tf.data.AUTOTUNE)

        model, explained = build_model(len(vocabulary) + 1)
        schedule = keras.optimizers.schedules.ExponentialDecay(5e-3, decay_steps=25 * len(data), decay_rate=0.5)
        model.compile(
            optimizer=keras.optimizers.Adam(schedule, clipnorm=40.0),
            metrics=["accuracy"],
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(data, epochs=args.epochs, verbose=0)

        logits, weights = explained.predict([memories, questions], verbose=0)
        accuracy = np.mean(np.argmax(logits, -1) == answers)
        first_hop = np.mean([np.argmax(w[0]) in s for w, s in zip(weights, supporting)])
        print(
            f"task {task}: test accuracy {accuracy:.4f} on {args.test_size} questions; "
            f"first hop's highest weight on a supporting fact: {first_hop:.4f}"
        )
        if args.plot and task == args.tasks[-1]:
            row = 0
            plot_memory_hops(
                weights[row],
                texts[row],
                path=args.plot,
                title=f"{' '.join(words[i - 1] for i in questions[row] if i)} ? {PLACES[answers[row]]}",
            )
            print(f"hops saved to {args.plot}")


if __name__ == "__main__":
    main()
