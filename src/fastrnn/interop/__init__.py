"""Moving models between fastrnn and other frameworks.

PyTorch (torch is imported only when one of these is called; it is never a
fastrnn dependency):

- :func:`to_torch` / :func:`from_torch`: a fastrnn Sequential as a
  ``torch.nn.Sequential`` (``nn.RNN`` with ``batch_first=True``, a
  bidirectional ``nn.RNN`` for a Bidirectional, ``nn.Embedding``,
  ``nn.Linear``, ``nn.Dropout``, activations) and back, with the same
  predictions;
- :func:`to_torch_state_dict` / :func:`from_torch_state_dict`: weights only,
  for a torch module of your own with ``nn.RNN``/``nn.Linear`` inside.

See :mod:`fastrnn.interop.torch` for how the weights map.
"""

__all__ = ["to_torch", "from_torch", "to_torch_state_dict", "from_torch_state_dict"]


def to_torch(model):
    """See :func:`fastrnn.interop.torch.to_torch`."""
    from .torch import to_torch as convert
    return convert(model)


def from_torch(module):
    """See :func:`fastrnn.interop.torch.from_torch`."""
    from .torch import from_torch as convert
    return convert(module)


def to_torch_state_dict(model):
    """See :func:`fastrnn.interop.torch.to_torch_state_dict`."""
    from .torch import to_torch_state_dict as convert
    return convert(model)


def from_torch_state_dict(model, state_dict):
    """See :func:`fastrnn.interop.torch.from_torch_state_dict`."""
    from .torch import from_torch_state_dict as convert
    return convert(model, state_dict)
