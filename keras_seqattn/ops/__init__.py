"""The functional core: functions over `keras.ops`, no weights, and the attention policy that says
how they run. Everything here runs on every Keras backend except the flash path (`ops/flash/`,
`flash_attention=True`, or chosen by the policy for long sequences), which is TensorFlow's."""

from keras_seqattn.ops.attention import dropout_multiplier as dropout_multiplier
from keras_seqattn.ops.attention import masked_softmax as masked_softmax
from keras_seqattn.ops.attention import scaled_dot_product_attention as scaled_dot_product_attention
from keras_seqattn.ops.axes import flatten_feature_map as flatten_feature_map
from keras_seqattn.ops.hard import argmax_positions as argmax_positions
from keras_seqattn.ops.hard import attention_entropy as attention_entropy
from keras_seqattn.ops.hard import position_log_prob as position_log_prob
from keras_seqattn.ops.hard import sample_positions as sample_positions
from keras_seqattn.ops.hard import straight_through_positions as straight_through_positions
from keras_seqattn.ops.masks import attention_mask as attention_mask
from keras_seqattn.ops.masks import causal_mask as causal_mask
from keras_seqattn.ops.masks import combine_masks as combine_masks
from keras_seqattn.ops.masks import local_window_mask as local_window_mask
from keras_seqattn.ops.masks import padding_mask as padding_mask
from keras_seqattn.ops.monotonic import monotonic_alignment as monotonic_alignment
from keras_seqattn.ops.policy import AttentionPlan as AttentionPlan
from keras_seqattn.ops.policy import AttentionPolicy as AttentionPolicy
from keras_seqattn.ops.policy import get_policy as get_policy
from keras_seqattn.ops.policy import policy_scope as policy_scope
from keras_seqattn.ops.policy import set_policy as set_policy
from keras_seqattn.ops.positions import alibi_slopes as alibi_slopes
from keras_seqattn.ops.positions import rotate as rotate
from keras_seqattn.ops.rnn_attention import additive_attention as additive_attention
from keras_seqattn.ops.rnn_attention import dot_attention as dot_attention
from keras_seqattn.ops.scores import additive_score as additive_score
from keras_seqattn.ops.scores import dot_score as dot_score
from keras_seqattn.ops.tuning import cpu_flags as cpu_flags
from keras_seqattn.ops.tuning import cpu_model as cpu_model
from keras_seqattn.ops.tuning import load_policy as load_policy
from keras_seqattn.ops.tuning import onednn_advice as onednn_advice
from keras_seqattn.ops.tuning import onednn_enabled as onednn_enabled
from keras_seqattn.ops.tuning import save_policy as save_policy
