"""hepnn.optim: optimizers with torch.optim's names, arguments and defaults; each step is one
fused kernel call over all parameters."""
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
from . import lr_scheduler
from .lr_scheduler import CosineAnnealingLR, LRScheduler, ReduceLROnPlateau, StepLR

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler", "LRScheduler",
           "StepLR", "CosineAnnealingLR", "ReduceLROnPlateau"]
