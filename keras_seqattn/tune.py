"""`python -m keras_seqattn.tune [--repeats 3] [--path FILE]`: tune the attention policy on this
machine and write it where `get_policy()` finds it (see `keras_seqattn.ops.tuning`). TensorFlow."""

from keras_seqattn.ops.tuning import main

if __name__ == "__main__":
    main()
