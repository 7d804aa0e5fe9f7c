"""What the attention decoder needs to know of Keras RNN cells: the top cell's hidden state and
the dropout masks of every cell."""

import keras
import tensorflow as tf


def top_hidden(cell, state):
    """The hidden state of the top cell: the first tensor of its state."""
    if isinstance(cell, keras.layers.StackedRNNCells):
        state = state[-1]
    return tf.nest.flatten(state)[0]


def cells(cell):
    return cell.cells if isinstance(cell, keras.layers.StackedRNNCells) else [cell]


def configure_dropout(cell, step_input, state):
    """Draw the cells' dropout masks once per sequence, outside the loop (as `keras.layers.RNN`)."""
    states = state if isinstance(cell, keras.layers.StackedRNNCells) else [state]
    for each, each_state in zip(cells(cell), states):
        if hasattr(each, "get_dropout_mask"):  # keras's DropoutRNNCell mixin
            each.get_dropout_mask(step_input)
            each.get_recurrent_dropout_mask(tf.nest.flatten(each_state)[0])
            step_input = tf.nest.flatten(each_state)[0]


def reset_dropout(cell):
    for each in cells(cell):
        if hasattr(each, "reset_dropout_mask"):
            each.reset_dropout_mask()
            each.reset_recurrent_dropout_mask()
