"""Blocks the models are built from, one family per file (SPEC.md: ssmlab.layers).

``S5Block`` (SS4Rec time-aware), ``MambaBlock`` (S6, Mamba4Rec), ``SSDBlock`` (Mamba2),
``TimeAwareSSDBlock`` (TiM4Rec Eq. 16-18), ``BiSSDBlock`` (SSD4Rec), ``FeedForward``,
``TransformerBlock`` (SASRec) and ``TimeIntervalAttention`` (TiSASRec).
"""

from ssmlab.layers.attention import TimeIntervalAttention, TransformerBlock
from ssmlab.layers.bissd import BiSSDBlock
from ssmlab.layers.ffn import FeedForward
from ssmlab.layers.mamba import MambaBlock
from ssmlab.layers.s5 import S5Block
from ssmlab.layers.ssd import SSDBlock, TimeAwareSSDBlock

__all__ = [
    "BiSSDBlock",
    "FeedForward",
    "MambaBlock",
    "S5Block",
    "SSDBlock",
    "TimeAwareSSDBlock",
    "TimeIntervalAttention",
    "TransformerBlock",
]
