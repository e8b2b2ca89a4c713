"""Image encoders (registry `image_encoders`): an image, or another model's features, -> a grid of feature vectors."""

from seqtasks.image_encoders.base import ImageEncoder
from seqtasks.image_encoders.cnn import ConvEncoder
from seqtasks.image_encoders.factored_cnn import FactoredConvEncoder
from seqtasks.image_encoders.precomputed import PrecomputedFeatures

__all__ = ["ConvEncoder", "FactoredConvEncoder", "ImageEncoder", "PrecomputedFeatures"]
