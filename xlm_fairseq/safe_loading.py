"""Allow-list, for torch's weights-only loading (the default since torch 2.6), exactly the types that
fairseq checkpoints of this plugin need. Weights-only loading is never turned off.

- argparse.Namespace: legacy fairseq configs (cfg.model of argparse models, `args` of old checkpoints).
- the rest: fairseq's distributed_utils.broadcast_object, which on ranks > 0 unpickles the checkpoint
  skeleton (omegaconf containers, tensor placeholders) with a plain torch.load during multi-process resume.
"""

import argparse
import collections
import typing

import torch


def safe_globals() -> list:
    from fairseq.distributed.utils import _TensorPlaceholder
    from omegaconf import DictConfig, ListConfig
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.nodes import AnyNode

    return [
        argparse.Namespace,
        DictConfig,
        ListConfig,
        ContainerMetadata,
        Metadata,
        AnyNode,
        typing.Any,
        collections.defaultdict,
        dict,
        list,
        int,
        _TensorPlaceholder,
    ]


def register() -> None:
    torch.serialization.add_safe_globals(safe_globals())
