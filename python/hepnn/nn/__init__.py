"""hepnn.nn: layers, activations, losses and initialisation, with PyTorch's names and layouts."""
from . import functional, init
from .activation import ELU, GELU, SELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, Flatten,
                      MaxPool1d, MaxPool2d)
from .container import ModuleList, Sequential
from .dropout import Dropout
from .graph import DeepSets, EdgeConv, GraphNetBlock, MessagePassing
from .layernorm import LayerNorm
from .linear import Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import Module
from .parameter import Parameter
from .part_block import ParticleAttentionBlock
from .transformer import MultiheadAttention, TransformerEncoder, TransformerEncoderLayer
from .rnn import GRU, LSTM, GRUCell, LSTMCell

__all__ = [
    "Module", "Parameter", "Linear", "Sequential", "ModuleList", "Dropout", "BatchNorm1d", "BatchNorm2d",
    "ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "Sigmoid", "Tanh", "Softplus", "Softmax", "LogSoftmax",
    "MSELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "functional", "init",
    "DeepSets", "EdgeConv", "GraphNetBlock", "MessagePassing",
    "LayerNorm", "MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder",
    "ParticleAttentionBlock",
    "LSTM", "GRU", "LSTMCell", "GRUCell",
    "Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Flatten",
]
