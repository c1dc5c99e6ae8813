"""Exceptions of fastrnn."""

__all__ = ["NonFiniteTrainingError"]


class NonFiniteTrainingError(FloatingPointError):
    """Training met a non-finite (inf or NaN) loss, gradient or update and stopped.

    Raised by :meth:`fastrnn.Sequential.fit`.  The engine checks the loss and
    the gradient before the optimizer runs, and the updated weights and
    optimizer state after it (restoring them when the update made any of them
    inf or NaN, e.g. through a huge learning rate), so the model keeps the
    parameters and optimizer state of the last good step.
    Gradient clipping (``clipnorm``/``global_clipnorm``) keeps training finite
    where the gradients are merely large; it cannot help once they overflow.

    Parameters
    ----------
    message : str
    epoch : int or None
        0-based epoch index, when raised by ``fit``.
    batch : int or None
        0-based batch index within the epoch, when known.
    kind : {"loss", "gradient", "update"}
        Which quantity was not finite.
    """

    def __init__(self, message, *, epoch=None, batch=None, kind="gradient"):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.kind = kind
