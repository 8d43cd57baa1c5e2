"""hepnn.nn: layers, activations, losses and initialisation, with PyTorch's names and layouts."""
from . import functional, init
from .activation import ELU, GELU, SELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, Flatten,
                      MaxPool1d, MaxPool2d)
from .container import ModuleList, Sequential
from .dropout import Dropout
from .linear import Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import Module
from .parameter import Parameter

__all__ = [
    "Module", "Parameter", "Linear", "Sequential", "ModuleList", "Dropout",
    "ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "Sigmoid", "Tanh", "Softplus", "Softmax", "LogSoftmax",
    "MSELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "functional", "init",
    "Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Flatten",
]
