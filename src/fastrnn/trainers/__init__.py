"""The training loop shared by every model (as ``keras.src.trainers``)."""
from .trainer import Trainer

__all__ = ["Trainer"]
