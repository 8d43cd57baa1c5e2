"""hepnn.optim: optimizers with torch.optim's names, arguments and defaults; each step is one
fused kernel call over all parameters."""
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]
