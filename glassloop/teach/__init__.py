"""Teaching engine: the same training loop as scalar autograd (`Value`), NumPy and PyTorch, with the same numbers."""

from glassloop.teach.nn import MLP, Layer, Module, Neuron
from glassloop.teach.value import Value, topological_order, zero_grad

__all__ = ["MLP", "Layer", "Module", "Neuron", "Value", "topological_order", "zero_grad"]
