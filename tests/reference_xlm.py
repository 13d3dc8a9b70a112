"""An independent reference for the converter tests: the ORIGINAL XLM TransformerModel (facebookresearch/XLM
`xlm/model/transformer.py`), written
from the specification in the original's style — time-major tensors (slen, bs), lengths-based masks, the
decoder's layer_norm15 / encoder_attn block, `fwd` and `predict` — with the original parameter names, so an
original checkpoint's state dict loads into it as is (XLM's token ids: </s>=1, <pad>=2).

Only what the tests need: no cache, no product-key memory, no adaptive softmax, eval-mode numerics.
"""

import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

N_MAX_POSITIONS = 512


def Embedding(num_embeddings, embedding_dim, padding_idx=None):
    m = nn.Embedding(num_embeddings, embedding_dim, padding_idx=padding_idx)
    nn.init.normal_(m.weight, mean=0, std=embedding_dim**-0.5)
    if padding_idx is not None:
        nn.init.constant_(m.weight[padding_idx], 0)
    return m


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def get_masks(slen, lengths, causal):
    """mask (bs, slen): True on real tokens; attn_mask: the same, or (bs, slen, slen) lower-triangular."""
    alen = torch.arange(slen, dtype=torch.long, device=lengths.device)
    mask = alen < lengths[:, None]
    bs = lengths.size(0)
    if causal:
        attn_mask = alen[None, None, :].repeat(bs, slen, 1) <= alen[None, :, None]
    else:
        attn_mask = mask
    return mask, attn_mask


class PredLayer(nn.Module):
    def __init__(self, params):
        super().__init__()
        self.n_words = params.n_words
        self.pad_index = params.pad_index
        self.proj = nn.Linear(params.emb_dim, params.n_words, bias=True)

    def forward(self, x, y, get_scores=False):
        scores = self.proj(x).view(-1, self.n_words)
        loss = F.cross_entropy(scores.float(), y, reduction="mean")
        return scores, loss


class MultiHeadAttention(nn.Module):
    def __init__(self, n_heads, dim, dropout):
        super().__init__()
        self.dim = dim
        self.n_heads = n_heads
        self.dropout = dropout
        assert self.dim % self.n_heads == 0
        self.q_lin = nn.Linear(dim, dim)
        self.k_lin = nn.Linear(dim, dim)
        self.v_lin = nn.Linear(dim, dim)
        self.out_lin = nn.Linear(dim, dim)

    def forward(self, input, mask, kv=None):
        """input (bs, qlen, dim); mask (bs, klen) or (bs, qlen, klen), True where attention is allowed;
        kv (bs, klen, dim) for the encoder attention."""
        bs, qlen, dim = input.size()
        klen = qlen if kv is None else kv.size(1)
        n_heads = self.n_heads
        dim_per_head = dim // n_heads
        mask_reshape = (bs, 1, qlen, klen) if mask.dim() == 3 else (bs, 1, 1, klen)

        def shape(x):
            return x.view(bs, -1, n_heads, dim_per_head).transpose(1, 2)

        def unshape(x):
            return x.transpose(1, 2).contiguous().view(bs, -1, n_heads * dim_per_head)

        q = shape(self.q_lin(input))
        if kv is None:
            k = shape(self.k_lin(input))
            v = shape(self.v_lin(input))
        else:
            k = shape(self.k_lin(kv))
            v = shape(self.v_lin(kv))
        q = q / math.sqrt(dim_per_head)
        scores = torch.matmul(q, k.transpose(2, 3))  # (bs, n_heads, qlen, klen)
        mask = (mask == 0).view(mask_reshape).expand_as(scores)
        scores.masked_fill_(mask, -float("inf"))
        weights = F.softmax(scores.float(), dim=-1).type_as(scores)
        weights = F.dropout(weights, p=self.dropout, training=self.training)
        context = unshape(torch.matmul(weights, v))
        return self.out_lin(context)


class TransformerFFN(nn.Module):
    def __init__(self, in_dim, dim_hidden, out_dim, dropout, gelu_activation):
        super().__init__()
        self.dropout = dropout
        self.lin1 = nn.Linear(in_dim, dim_hidden)
        self.lin2 = nn.Linear(dim_hidden, out_dim)
        self.act = gelu if gelu_activation else F.relu

    def forward(self, input):
        x = self.act(self.lin1(input))
        x = self.lin2(x)
        return F.dropout(x, p=self.dropout, training=self.training)


class TransformerModel(nn.Module):
    def __init__(self, params, is_encoder, with_output=True):
        super().__init__()
        self.is_encoder = is_encoder
        self.is_decoder = not is_encoder
        self.with_output = with_output
        self.n_words = params.n_words
        self.eos_index = params.eos_index
        self.pad_index = params.pad_index
        self.n_langs = params.n_langs
        self.use_lang_emb = getattr(params, "use_lang_emb", True)
        self.dim = params.emb_dim
        self.hidden_dim = self.dim * 4
        self.n_heads = params.n_heads
        self.n_layers = params.n_layers
        self.dropout = params.dropout
        self.attention_dropout = params.attention_dropout

        self.position_embeddings = Embedding(N_MAX_POSITIONS, self.dim)
        if params.n_langs > 1 and self.use_lang_emb:
            self.lang_embeddings = Embedding(self.n_langs, self.dim)
        self.embeddings = Embedding(self.n_words, self.dim, padding_idx=self.pad_index)
        self.layer_norm_emb = nn.LayerNorm(self.dim, eps=1e-12)

        self.attentions = nn.ModuleList()
        self.layer_norm1 = nn.ModuleList()
        self.ffns = nn.ModuleList()
        self.layer_norm2 = nn.ModuleList()
        if self.is_decoder:
            self.layer_norm15 = nn.ModuleList()
            self.encoder_attn = nn.ModuleList()
        for _ in range(self.n_layers):
            self.attentions.append(MultiHeadAttention(self.n_heads, self.dim, dropout=self.attention_dropout))
            self.layer_norm1.append(nn.LayerNorm(self.dim, eps=1e-12))
            if self.is_decoder:
                self.layer_norm15.append(nn.LayerNorm(self.dim, eps=1e-12))
                self.encoder_attn.append(MultiHeadAttention(self.n_heads, self.dim, dropout=self.attention_dropout))
            self.ffns.append(
                TransformerFFN(
                    self.dim, self.hidden_dim, self.dim, dropout=self.dropout, gelu_activation=params.gelu_activation
                )
            )
            self.layer_norm2.append(nn.LayerNorm(self.dim, eps=1e-12))

        if self.with_output:
            self.pred_layer = PredLayer(params)
            if params.share_inout_emb:
                self.pred_layer.proj.weight = self.embeddings.weight

    def forward(self, mode, **kwargs):
        if mode == "fwd":
            return self.fwd(**kwargs)
        if mode == "predict":
            return self.predict(**kwargs)
        raise Exception(f"Unknown mode: {mode}")

    def fwd(self, x, lengths, causal, src_enc=None, src_len=None, positions=None, langs=None):
        """x (slen, bs) token ids; lengths (bs,); positions / langs (slen, bs) or None; src_enc
        (bs, src_slen, dim) batch-first encoder states and src_len (bs,) for the decoder.
        Returns (slen, bs, dim)."""
        slen, bs = x.size()
        assert lengths.size(0) == bs
        assert lengths.max().item() <= slen
        x = x.transpose(0, 1)  # batch size as dimension 0
        assert (src_enc is None) == (src_len is None)
        if src_enc is not None:
            assert self.is_decoder
            assert src_enc.size(0) == bs

        mask, attn_mask = get_masks(slen, lengths, causal)
        if self.is_decoder and src_enc is not None:
            src_mask = torch.arange(src_len.max(), dtype=torch.long, device=lengths.device) < src_len[:, None]

        if positions is None:
            positions = torch.arange(slen, dtype=torch.long, device=x.device).unsqueeze(0)
        else:
            assert positions.size() == (slen, bs)
            positions = positions.transpose(0, 1)
        if langs is not None:
            assert langs.size() == (slen, bs)
            langs = langs.transpose(0, 1)

        tensor = self.embeddings(x)
        tensor = tensor + self.position_embeddings(positions).expand_as(tensor)
        if langs is not None and self.use_lang_emb and self.n_langs > 1:
            tensor = tensor + self.lang_embeddings(langs)
        tensor = self.layer_norm_emb(tensor)
        tensor = F.dropout(tensor, p=self.dropout, training=self.training)
        tensor = tensor * mask.unsqueeze(-1).to(tensor.dtype)

        for i in range(self.n_layers):
            attn = self.attentions[i](tensor, attn_mask)
            attn = F.dropout(attn, p=self.dropout, training=self.training)
            tensor = self.layer_norm1[i](tensor + attn)
            if self.is_decoder and src_enc is not None:
                attn = self.encoder_attn[i](tensor, src_mask, kv=src_enc)
                attn = F.dropout(attn, p=self.dropout, training=self.training)
                tensor = self.layer_norm15[i](tensor + attn)
            tensor = tensor + self.ffns[i](tensor)
            tensor = self.layer_norm2[i](tensor)
            tensor = tensor * mask.unsqueeze(-1).to(tensor.dtype)

        return tensor.transpose(0, 1)  # (slen, bs, dim)

    def predict(self, tensor, pred_mask, y, get_scores):
        """tensor (slen, bs, dim); pred_mask (slen, bs) bool; y the targets at pred_mask."""
        masked_tensor = tensor[pred_mask.unsqueeze(-1).expand_as(tensor)].view(-1, self.dim)
        scores, loss = self.pred_layer(masked_tensor, y, get_scores)
        return scores, loss


def make_params(n_words, emb_dim, n_layers, n_heads, n_langs, use_lang_emb=True, gelu_activation=True):
    return SimpleNamespace(
        n_words=n_words,
        eos_index=1,
        pad_index=2,
        n_langs=n_langs,
        use_lang_emb=use_lang_emb,
        emb_dim=emb_dim,
        n_heads=n_heads,
        n_layers=n_layers,
        dropout=0.0,
        attention_dropout=0.0,
        gelu_activation=gelu_activation,
        share_inout_emb=True,
    )
