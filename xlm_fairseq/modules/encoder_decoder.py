"""The XLM stack as fairseq's encoder and incremental decoder (facebookresearch/XLM `xlm/model/transformer.py`,
`is_decoder`), so SequenceGenerator
(greedy, beam, sampling) and fairseq-generate drive it.

Language ids travel inside encoder_out["tgt_langs"] because SequenceGenerator has no channel for extra
decoder arguments; reorder_encoder_out keeps them aligned with the beam.
"""

from typing import Dict, List, Optional

import torch
from fairseq.models import FairseqEncoder, FairseqIncrementalDecoder
from torch import Tensor

from .transformer import XLMStack


def padding_mask_from_lengths(tokens: Tensor, lengths: Optional[Tensor], pad_index: int) -> Tensor:
    """True at padding. Lengths (right padding) are authoritative when given: XLM's random replacement may
    put the pad id inside a sentence, and that token must still be attended to. Always a mask, also for a batch
    without padding: asking the device whether any row is padded would make the host wait for it."""
    if lengths is not None:
        return torch.arange(tokens.size(1), device=tokens.device)[None, :] >= lengths[:, None]
    return tokens.eq(pad_index)


class XLMEncoder(XLMStack, FairseqEncoder):
    def __init__(self, dictionary, **stack_args):
        FairseqEncoder.__init__(self, dictionary)
        self.build_stack(n_words=len(dictionary), pad_index=dictionary.pad(), is_decoder=False, **stack_args)

    def forward(
        self,
        src_tokens: Tensor,
        src_lengths: Optional[Tensor] = None,
        src_langs: Optional[Tensor] = None,
        tgt_langs: Optional[Tensor] = None,
        positions: Optional[Tensor] = None,
        **unused,
    ) -> Dict[str, List[Tensor]]:
        padding_mask = padding_mask_from_lengths(src_tokens, src_lengths, self.pad_index)
        h = self.fwd(src_tokens, padding_mask=padding_mask, positions=positions, langs=src_langs)
        return {
            "encoder_out": [h],
            "encoder_padding_mask": [] if padding_mask is None else [padding_mask],
            "tgt_langs": [] if tgt_langs is None else [tgt_langs],
            "src_lengths": [] if src_lengths is None else [src_lengths],
        }

    def compiled_pass(self, *layer_args) -> Tensor:  # the encoder's own function for torch.compile (compile_layers)
        return super().compiled_pass(*layer_args)

    def forward_torchscript(self, net_input: Dict[str, Tensor]):
        return self.forward(**{k: v for k, v in net_input.items() if k != "prev_output_tokens"})

    @torch.jit.export
    def reorder_encoder_out(self, encoder_out: Dict[str, List[Tensor]], new_order: Tensor):
        return {key: [t.index_select(0, new_order) for t in values] for key, values in encoder_out.items()}

    def max_positions(self):
        return self.max_positions_


class XLMDecoder(XLMStack, FairseqIncrementalDecoder):
    def __init__(self, dictionary, **stack_args):
        FairseqIncrementalDecoder.__init__(self, dictionary)
        self.build_stack(n_words=len(dictionary), pad_index=dictionary.pad(), is_decoder=True, **stack_args)

    def forward(
        self,
        prev_output_tokens: Tensor,
        encoder_out: Optional[Dict[str, List[Tensor]]] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        features_only: bool = False,
        pred_index: Optional[Tensor] = None,
        **unused,
    ):
        """Teacher forcing on `</s> y1..ym` (right padded) or one incremental step. Returns (logits, extra);
        logits are (bs, tlen, V), or (n_pred, V) at the pred_index positions (flat row-major indices into
        (bs * tlen), made by the collater) when pred_index is given."""
        h = self.extract_features(prev_output_tokens, encoder_out, incremental_state)
        if features_only:
            return h, {}
        return self.predict(h, pred_index=pred_index), {"attn": [None]}

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None, **unused):
        start = 0
        tokens = prev_output_tokens
        if incremental_state is not None:
            start = prev_output_tokens.size(1) - 1
            tokens = prev_output_tokens[:, -1:]
        src_enc = src_mask = langs = None
        if encoder_out is not None:
            src_enc = encoder_out["encoder_out"][0]
            if encoder_out["encoder_padding_mask"]:
                src_mask = encoder_out["encoder_padding_mask"][0]
            if encoder_out["tgt_langs"]:
                langs = encoder_out["tgt_langs"][0]
        # Right padding + causal attention: padded positions never influence real ones, so no key mask.
        return self.fwd(
            tokens,
            padding_mask=None,
            langs=langs,
            causal=True,
            src_enc=src_enc,
            src_padding_mask=src_mask,
            incremental_state=incremental_state,
            start_position=start,
        )

    def compiled_pass(self, *layer_args) -> Tensor:  # the decoder's own function for torch.compile (compile_layers)
        return super().compiled_pass(*layer_args)

    def output_layer(self, features, **kwargs):
        return self.predict(features)

    def max_positions(self):
        return self.max_positions_
