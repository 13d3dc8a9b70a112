"""XLM's multi-head attention (facebookresearch/XLM `xlm/model/transformer.py: MultiHeadAttention`) on top of
torch's fused scaled_dot_product_attention.

Parameter names (q_lin, k_lin, v_lin, out_lin) are the original's, so original checkpoints map 1:1.
"""

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from fairseq.incremental_decoding_utils import with_incremental_state
from torch import Tensor, nn

from .fast_dropout import dropout


def leave_out_cudnn_attention() -> None:
    """cuDNN's attention builds an execution plan for every new shape, and the shapes here change at nearly every call
    (token-budget batches, every step of greedy decoding): on an H100 that made each call cost milliseconds. Turned
    off once for the process, at the first attention on a GPU (torch's flag is global; entering torch's sdpa_kernel
    context at every call cost ~5-10 µs, a tenth of a launch-bound decoding step); flash, memory-efficient and math
    stay."""
    global _CUDNN_ATTENTION_LEFT_OUT
    torch.backends.cuda.enable_cudnn_sdp(False)
    _CUDNN_ATTENTION_LEFT_OUT = True


_CUDNN_ATTENTION_LEFT_OUT = False


@with_incremental_state
class MultiHeadAttention(nn.Module):
    def __init__(self, n_heads: int, dim: int, dropout: float, is_cross_attention: bool = False):
        super().__init__()
        if dim % n_heads != 0:
            raise ValueError(f"emb_dim {dim} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.dim = dim
        self.dropout = dropout
        self.is_cross_attention = is_cross_attention
        self.q_lin = nn.Linear(dim, dim)
        self.k_lin = nn.Linear(dim, dim)
        self.v_lin = nn.Linear(dim, dim)
        self.out_lin = nn.Linear(dim, dim)

    def _split_heads(self, x: Tensor) -> Tensor:
        bs, slen, _ = x.shape
        return x.view(bs, slen, self.n_heads, self.dim // self.n_heads).transpose(1, 2)

    def forward(
        self,
        query: Tensor,
        attn_mask: Optional[Tensor],
        kv: Optional[Tensor] = None,
        is_causal: bool = False,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
    ) -> Tensor:
        """query: (bs, qlen, dim). attn_mask: boolean, True where attention is allowed, broadcastable to
        (bs, heads, qlen, klen), or None. kv: the encoder states for cross-attention.
        is_causal: a plain lower-triangular mask (only used when attn_mask is None and no cache).
        incremental_state: decoding cache; self-attention appends this step's keys/values, cross-attention
        projects the encoder states once."""
        bs, qlen, _ = query.shape
        if not self.is_cross_attention and incremental_state is None and self.training:
            q, k, v = self._project_qkv(query)
            return self._attend(q, k, v, attn_mask, is_causal, bs, qlen)
        q = self._split_heads(self.q_lin(query))
        saved = self.get_incremental_state(incremental_state, "attn_state") if incremental_state is not None else None
        if self.is_cross_attention:
            if saved is not None:
                k, v = saved["k"], saved["v"]
            else:
                k, v = self._split_heads(self.k_lin(kv)), self._split_heads(self.v_lin(kv))
        else:
            k, v = self._project_kv(query)
            if saved is not None:
                k = torch.cat([saved["k"], k], dim=2)
                v = torch.cat([saved["v"], v], dim=2)
        if incremental_state is not None:
            self.set_incremental_state(incremental_state, "attn_state", {"k": k, "v": v})
        return self._attend(q, k, v, attn_mask, is_causal, bs, qlen)

    def _project_qkv(self, x: Tensor):
        """One (dim x 3 dim) product instead of three (the parameters stay separate, as the original's)."""
        w = torch.cat([self.q_lin.weight, self.k_lin.weight, self.v_lin.weight])
        b = torch.cat([self.q_lin.bias, self.k_lin.bias, self.v_lin.bias])
        return [self._split_heads(t) for t in F.linear(x, w, b).chunk(3, dim=-1)]

    def _project_kv(self, x: Tensor):
        return self._split_heads(self.k_lin(x)), self._split_heads(self.v_lin(x))

    def _attend(self, q, k, v, attn_mask, is_causal, bs, qlen):
        if self.training and self.dropout > 0 and not q.is_cuda:
            out = self._attention_with_dropout(q, k, v, attn_mask, is_causal)
        else:  # fused kernels (flash on CPU without dropout; with dropout on GPUs)
            if q.is_cuda and not _CUDNN_ATTENTION_LEFT_OUT:
                leave_out_cudnn_attention()
            out = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=attn_mask,
                dropout_p=self.dropout if self.training else 0.0,
                is_causal=is_causal and attn_mask is None,
            )
        out = out.transpose(1, 2).reshape(bs, qlen, self.dim)
        return self.out_lin(out)

    def _attention_with_dropout(self, q, k, v, attn_mask, is_causal):
        """softmax(q k^T / sqrt(d)) with dropout on the weights, then v: torch's CPU SDPA falls back to
        the same computation with its slow Bernoulli dropout when dropout_p > 0."""
        scores = torch.matmul(q * (q.size(-1) ** -0.5), k.transpose(-2, -1))
        if attn_mask is None and is_causal:
            qlen, klen = scores.shape[-2:]
            attn_mask = torch.ones(qlen, klen, dtype=torch.bool, device=q.device).tril()
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).type_as(scores)
        return torch.matmul(dropout(weights, self.dropout, True), v)

    def reorder_incremental_state(self, incremental_state, new_order: Tensor):
        saved = self.get_incremental_state(incremental_state, "attn_state")
        if saved is not None:
            saved = {name: t.index_select(0, new_order) for name, t in saved.items()}
            self.set_incremental_state(incremental_state, "attn_state", saved)
        return incremental_state


class TransformerFFN(nn.Module):
    """lin2(act(lin1(x))) then dropout; no activation dropout (`xlm/model/transformer.py: TransformerFFN`)."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float, gelu_activation: bool):
        super().__init__()
        self.dropout = dropout
        self.lin1 = nn.Linear(dim, hidden_dim)
        self.lin2 = nn.Linear(hidden_dim, dim)
        self.gelu_activation = gelu_activation

    def forward(self, x: Tensor) -> Tensor:
        x = self.lin1(x)
        x = F.gelu(x) if self.gelu_activation else F.relu(x)  # F.gelu default is the exact erf form
        x = self.lin2(x)
        return dropout(x, self.dropout, self.training)
