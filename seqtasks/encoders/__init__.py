"""Encoders: the `encoders` registry's recurrent networks and the cells they are made of."""

from seqtasks.encoders.cells import ElmanCell, GRUCell, LSTMCell, RecurrentCell
from seqtasks.encoders.reference import ReferenceRNN
from seqtasks.encoders.rnn import GRUEncoder, LSTMEncoder, RecurrentEncoder, RNNEncoder

__all__ = [
    "ElmanCell",
    "GRUCell",
    "GRUEncoder",
    "LSTMCell",
    "LSTMEncoder",
    "RNNEncoder",
    "RecurrentCell",
    "RecurrentEncoder",
    "ReferenceRNN",
]
