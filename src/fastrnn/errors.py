"""Exceptions of fastrnn."""

__all__ = ["NonFiniteTrainingError"]


class NonFiniteTrainingError(FloatingPointError):
    """Training met a non-finite (inf or NaN) loss or gradient and stopped.

    Raised by :meth:`fastrnn.Sequential.fit` (and the fused trainer's
    ``step``/``run_epoch``) before the optimizer touches the weights, so the
    model keeps the parameters and optimizer state of the last good step.
    Gradient clipping (``clipnorm``/``global_clipnorm``) keeps training finite
    where the gradients are merely large; it cannot help once they overflow.

    Parameters
    ----------
    message : str
    epoch : int or None
        0-based epoch index, when raised by ``fit``.
    batch : int or None
        0-based batch index within the epoch, when known.
    kind : {"loss", "gradient"}
        Which quantity was not finite.
    """

    def __init__(self, message, *, epoch=None, batch=None, kind="gradient"):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.kind = kind
