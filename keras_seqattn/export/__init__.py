"""Serving: string-producing SavedModels (text to text, image to text, prompt to continuation),
written by one builder (`serving.py`). TensorFlow only: the export functions raise a ValueError
naming any other Keras backend."""

from keras_seqattn import deprecation
from keras_seqattn.export.captioner import export_captioner as export_captioner
from keras_seqattn.export.generator import export_generator as export_generator
from keras_seqattn.export.translator import export_translator as export_translator


def _vocabulary():
    from keras_seqattn.text import Vocabulary

    return Vocabulary


__getattr__ = deprecation.deprecated_names(__name__, {"Vocabulary": ("keras_seqattn.text.Vocabulary", _vocabulary)})
