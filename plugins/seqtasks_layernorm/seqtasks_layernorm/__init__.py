"""seqtasks plugin: a layer-normalised LSTM encoder, `encoder=layernorm_lstm`.

seqtasks imports this package through its `seqtasks.plugins` entry point; importing it registers
the encoder. The config group option lives in `conf/encoder/layernorm_lstm.yaml` inside this
package, which seqtasks' Hydra search-path plugin finds from the same entry point.
"""

from seqtasks_layernorm.cell import LayerNormLSTMCell
from seqtasks_layernorm.encoder import LayerNormLSTMEncoder

__all__ = ["LayerNormLSTMCell", "LayerNormLSTMEncoder"]
