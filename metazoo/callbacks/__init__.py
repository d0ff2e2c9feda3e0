"""Callbacks for watching meta-learning in TensorBoard."""

from metazoo.callbacks.embeddings import TaskEmbeddingProjector
from metazoo.callbacks.learning_rates import InnerLearningRates

__all__ = ["InnerLearningRates", "TaskEmbeddingProjector"]
