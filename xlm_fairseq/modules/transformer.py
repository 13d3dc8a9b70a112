"""The XLM transformer stack (facebookresearch/XLM `xlm/model/transformer.py: TransformerModel`): one class for the
encoder, the decoder and the LM.

Attribute names follow the original `TransformerModel` (position_embeddings, lang_embeddings, embeddings,
layer_norm_emb, attentions, layer_norm1, ffns, layer_norm2, layer_norm15, encoder_attn, pred_layer.proj),
so an original state dict loads with only the pad/eos row permutation of the vocabulary (convert/).
Tensors are batch-first (bs, slen, dim), unlike the original's time-major layout.
"""

import logging
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from ..checkpoints import LANG_EMBEDDING, map_language_rows
from ..errors import InputError
from .fast_dropout import dropout
from .multihead_attention import MultiHeadAttention, TransformerFFN

logger = logging.getLogger(__name__)

N_MAX_POSITIONS = 512
LAYER_NORM_EPS = 1e-12


def embedding(num: int, dim: int, padding_idx: Optional[int] = None) -> nn.Embedding:
    m = nn.Embedding(num, dim, padding_idx=padding_idx)
    nn.init.normal_(m.weight, mean=0, std=dim**-0.5)
    if padding_idx is not None:
        nn.init.constant_(m.weight[padding_idx], 0)
    return m


def sinusoidal_table_(weight: Tensor) -> None:
    n_pos, dim = weight.shape
    pos = torch.arange(n_pos, dtype=torch.float64, device=weight.device).unsqueeze(1)
    rate = torch.pow(10000.0, 2 * (torch.arange(dim, device=weight.device) // 2).double() / dim)
    table = pos / rate
    table[:, 0::2] = torch.sin(table[:, 0::2])
    table[:, 1::2] = torch.cos(table[:, 1::2])
    with torch.no_grad():
        weight.copy_(table.to(weight.dtype))
    weight.requires_grad = False


class PredLayer(nn.Module):
    """Output projection tied to the token embedding, with its own bias (`xlm/model/transformer.py: PredLayer`)."""

    def __init__(self, dim: int, n_words: int):
        super().__init__()
        self.proj = nn.Linear(dim, n_words, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class XLMStack:
    """Mixin that builds and runs the stack inside a fairseq encoder/decoder (so keys are the original's
    names under `encoder.`/`decoder.`). Call build_stack() from __init__ after nn.Module.__init__."""

    def build_stack(
        self,
        n_words: int,
        pad_index: int,
        emb_dim: int,
        n_layers: int,
        n_heads: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        gelu_activation: bool = True,
        n_langs: int = 1,
        use_lang_emb: bool = True,
        sinusoidal_embeddings: bool = False,
        is_decoder: bool = False,
        ffn_dim: Optional[int] = None,
        max_positions: int = N_MAX_POSITIONS,
    ):
        self.n_words, self.pad_index, self.dim = n_words, pad_index, emb_dim
        self.n_layers, self.n_heads = n_layers, n_heads
        self.dropout = dropout
        self.compiled_layers = None
        self.is_decoder = is_decoder
        self.n_langs = n_langs
        self.use_lang_emb = use_lang_emb and n_langs > 1
        self.max_positions_ = max_positions
        hidden = ffn_dim or 4 * emb_dim

        self.position_embeddings = embedding(max_positions, emb_dim)
        if sinusoidal_embeddings:
            sinusoidal_table_(self.position_embeddings.weight)
        if self.use_lang_emb:
            self.lang_embeddings = embedding(n_langs, emb_dim)
        self.embeddings = embedding(n_words, emb_dim, padding_idx=pad_index)
        self.layer_norm_emb = nn.LayerNorm(emb_dim, eps=LAYER_NORM_EPS)

        self.attentions = nn.ModuleList()
        self.layer_norm1 = nn.ModuleList()
        self.ffns = nn.ModuleList()
        self.layer_norm2 = nn.ModuleList()
        if is_decoder:
            self.layer_norm15 = nn.ModuleList()
            self.encoder_attn = nn.ModuleList()
        for _ in range(n_layers):
            self.attentions.append(MultiHeadAttention(n_heads, emb_dim, attention_dropout))
            self.layer_norm1.append(nn.LayerNorm(emb_dim, eps=LAYER_NORM_EPS))
            if is_decoder:
                self.layer_norm15.append(nn.LayerNorm(emb_dim, eps=LAYER_NORM_EPS))
                self.encoder_attn.append(
                    MultiHeadAttention(n_heads, emb_dim, attention_dropout, is_cross_attention=True)
                )
            self.ffns.append(TransformerFFN(emb_dim, hidden, dropout, gelu_activation))
            self.layer_norm2.append(nn.LayerNorm(emb_dim, eps=LAYER_NORM_EPS))

        self.pred_layer = PredLayer(emb_dim, n_words)
        self.pred_layer.proj.weight = self.embeddings.weight

    def fwd(
        self,
        tokens: Tensor,
        padding_mask: Optional[Tensor] = None,
        positions: Optional[Tensor] = None,
        langs: Optional[Tensor] = None,
        causal: bool = False,
        src_enc: Optional[Tensor] = None,
        src_padding_mask: Optional[Tensor] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        start_position: int = 0,
        inner_states: Optional[List[Tensor]] = None,
    ) -> Tensor:
        """tokens (bs, slen) -> hidden states (bs, slen, dim).

        padding_mask: (bs, slen) True at padding, or None when no row is padded (callers decide, so that this needs no
        host synchronisation on a GPU). positions/langs: (bs, slen) or None
        (positions default to start_position + arange; langs may also be (bs,) meaning one id per row).
        causal: lower-triangular self-attention (CLM, decoder). src_enc/src_padding_mask: encoder states for
        the decoder's cross-attention. incremental_state: decoding cache (tokens are then only the new ones,
        and start_position is the index of the first of them). inner_states: a list that receives the
        embedding output and every layer's output (n_layers + 1 tensors, as transformers' hidden_states).

        A stack with language embeddings refuses langs=None: the original skipped the embedding silently,
        which turns a lost language id (e.g. fairseq-interactive's samples) into wrong output."""
        bs, slen = tokens.shape
        if positions is None:
            if start_position + slen > self.max_positions_:
                raise ValueError(
                    f"sequence of {start_position + slen} tokens exceeds the {self.max_positions_} positions "
                    "of the model"
                )
            positions = torch.arange(start_position, start_position + slen, device=tokens.device).unsqueeze(0)
        x = self.embeddings(tokens) + self.position_embeddings(positions)
        if self.use_lang_emb:
            if langs is None:
                raise InputError(
                    f"this model has language embeddings for {self.n_langs} languages but was given no language "
                    "ids (langs=None): pass langs (src_langs/tgt_langs for translation), one id per sentence or "
                    "per token"
                )
            if langs.dim() == 1:
                langs = langs.unsqueeze(1)
            x = x + self.lang_embeddings(langs)
        x = self.layer_norm_emb(x)
        x = dropout(x, self.dropout, self.training)
        keep = None
        if padding_mask is not None:
            keep = (~padding_mask).unsqueeze(-1).to(x.dtype)
            x = x * keep
        if inner_states is not None:
            inner_states.append(x)

        self_mask = self._self_attention_mask(padding_mask, causal, slen, incremental_state, tokens.device)
        use_is_causal = causal and self_mask is None and incremental_state is None
        cross_mask = None
        if src_enc is not None and src_padding_mask is not None:
            cross_mask = (~src_padding_mask)[:, None, None, :]
        if self.compiled_layers is not None and incremental_state is None and inner_states is None:
            return self.compiled_layers(x, self_mask, use_is_causal, keep, src_enc, cross_mask)
        return self.layers(x, self_mask, use_is_causal, keep, src_enc, cross_mask, incremental_state, inner_states)

    def layers(
        self,
        x: Tensor,
        self_mask: Optional[Tensor],
        is_causal: bool,
        keep: Optional[Tensor],
        src_enc: Optional[Tensor],
        cross_mask: Optional[Tensor],
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        inner_states: Optional[List[Tensor]] = None,
    ) -> Tensor:
        """The layers of fwd() on the embedded input x (bs, slen, dim); keep: (bs, slen, 1) 1.0 at tokens, 0.0 at
        padding, or None."""
        for i in range(self.n_layers):
            a = self.attentions[i](x, self_mask, is_causal=is_causal, incremental_state=incremental_state)
            x = self.layer_norm1[i](x + dropout(a, self.dropout, self.training))
            if self.is_decoder and src_enc is not None:
                a = self.encoder_attn[i](x, cross_mask, kv=src_enc, incremental_state=incremental_state)
                x = self.layer_norm15[i](x + dropout(a, self.dropout, self.training))
            x = self.layer_norm2[i](x + self.ffns[i](x))
            if keep is not None:
                x = x * keep
            if inner_states is not None:
                inner_states.append(x)
        return x

    def compile_layers(self) -> None:
        """Run the layers of every full-sequence pass (training, validation, encoding; not the decoding steps) through
        torch.compile: one fused kernel for each chain of element-wise operations (bias, GELU, dropout, residual,
        layer norm) instead of one per operation.

        One graph per kind of pass, with symbolic batch and length from the first call (dynamic=True: token-budget
        batches change shape at nearly every step): training or evaluation (grad mode, dropout) × padding mask or
        none (stream windows have none) × causal or not, with encoder states or not. An LM stack sees at most 4
        kinds (MLM/CLM streams and TLM pairs, trained and validated), an MT encoder 2 and an MT decoder 2 (teacher
        forcing; its decoding steps stay eager); a dimension of size 1 (a batch of one sentence) is specialised by
        torch and can double that. The encoder and the decoder compile through functions of their own
        (compiled_pass), so torch's limit of 8 graphs per function (torch._dynamo's recompile_limit) holds each
        alone. Should a pass still fall back to eager layers, it says so once (layers_fell_back)."""
        self.compiled_layers = torch.compile(self.compiled_pass, dynamic=True)

    def compiled_pass(self, *layer_args) -> Tensor:
        """What compile_layers compiles: the layers. Its Python body runs only when torch.compile has given up on a
        kind of pass and runs it eagerly (while compiling, torch.compiler.is_compiling() is true)."""
        if not torch.compiler.is_compiling():
            self.layers_fell_back()
        return self.layers(*layer_args)

    def layers_fell_back(self) -> None:
        if not getattr(self, "_said_fell_back", False):
            logger.warning(
                f"--compile-layers: torch.compile runs a kind of {type(self).__name__} pass eagerly from now on "
                "(its recompile limit was reached; TORCH_LOGS=recompiles says why); the results are the same, the "
                "fused kernels are lost for it"
            )
            self._said_fell_back = True

    @staticmethod
    def _self_attention_mask(padding_mask, causal, slen, incremental_state, device) -> Optional[Tensor]:
        """Boolean mask (True = may attend) or None when nothing needs masking (or is_causal suffices).
        A decoding step attends to every cached position, so it needs no mask."""
        if incremental_state is not None or padding_mask is None:
            return None
        mask = (~padding_mask)[:, None, None, :]
        if causal:
            tri = torch.ones(slen, slen, dtype=torch.bool, device=device).tril()
            mask = mask & tri[None, None]
        return mask

    def adopt_language_rows(
        self, state: Dict[str, Tensor], prefix: str, source: List[str], target: List[str], allow_new: bool, what: str
    ) -> None:
        """Rewrite `state`'s language embedding (key prefix + lang_embeddings.weight, rows for the `source`
        languages) for this stack's languages `target`, by name. A one-language stack has no language embedding
        (as the original), so that language's row, a constant added to every position, goes into the position
        table: the hidden states stay those of the pretrained model."""
        key = prefix + LANG_EMBEDDING
        if key not in state:
            return  # a model without language embeddings: nothing to map
        rows = map_language_rows(state[key], source, target, allow_new, what)
        if self.use_lang_emb:
            state[key] = rows
        elif len(target) == 1 and len(rows) == 1:
            state[prefix + "position_embeddings.weight"] = state[prefix + "position_embeddings.weight"] + rows[0]
            del state[key]

    def predict(
        self, hidden: Tensor, pred_mask: Optional[Tensor] = None, pred_index: Optional[Tensor] = None
    ) -> Tensor:
        """Logits over the vocabulary, only at the predicted positions when given ((n_pred, n_words)): pred_mask, a
        (bs, slen) boolean mask (its count is read back from the device), or pred_index, the same positions as flat
        row-major indices into (bs * slen) (no read-back: the LM batches carry them)."""
        if pred_index is not None:
            hidden = hidden.reshape(-1, hidden.size(-1)).index_select(0, pred_index)
        elif pred_mask is not None:
            hidden = hidden[pred_mask]
        return self.pred_layer(hidden)


def num_parameters(n_layers: int, dim: int, n_words: int, n_langs: int) -> int:
    """The original's parameter count (of `TransformerModel`'s state dict), tied output weight counted once."""
    return (
        n_layers * (12 * dim * dim + 13 * dim)
        + n_words * dim
        + N_MAX_POSITIONS * dim
        + (n_langs * dim if n_langs > 1 else 0)
        + 2 * dim
        + n_words
    )
