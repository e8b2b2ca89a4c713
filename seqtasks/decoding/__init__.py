"""Decoding strategies (registry `decoding`), all driven by one step function."""

from seqtasks.decoding.base import DecodingStrategy, StepFunction, TokenByToken
from seqtasks.decoding.beam import BeamSearch
from seqtasks.decoding.greedy import Greedy
from seqtasks.decoding.sampling import Sampling

__all__ = ["BeamSearch", "DecodingStrategy", "Greedy", "Sampling", "StepFunction", "TokenByToken"]
