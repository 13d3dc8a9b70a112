"""Online back-translation generation speed, on the same model and batch in one run: our batched greedy decoder
with the incremental cache (xlm_fairseq/generation.py, what --bt-steps runs) beside what a fairseq user would
otherwise run, fairseq's SequenceGenerator with beam 1 (incremental too; it drives the same model, so the
outputs must be the same tokens), and a naive greedy loop without cache (the full decoder re-run at every step);
transformers' XLM has no decoder, so it does not apply. Also the share of a whole BT step (generation + the
training forward/backward/update) spent generating.

    python benchmarks/backtranslation_throughput.py [--reps 5] [--threads 2]
Last line: `speedup_vs_sequence_generator X.XX`.
"""

import argparse
import statistics
import time

import torch
from fairseq.data import Dictionary
from fairseq.sequence_generator import SequenceGenerator

import xlm_fairseq  # noqa: F401
from xlm_fairseq.generation import bt_max_len, greedy_generate, greedy_generate_without_cache
from xlm_fairseq.models.xlm_transformer import XLMTransformerConfig, XLMTransformerModel


def build_model(d, dim, layers, heads):
    cfg = XLMTransformerConfig(
        emb_dim=dim,
        n_layers=layers,
        n_heads=heads,
        dropout=0.1,
        attention_dropout=0.1,
        n_langs=2,
        emb_langs="en,fr",
        encoder_only=False,
    )
    return XLMTransformerModel.from_config(cfg, d)


def sequence_generator(d, model, max_len):
    """fairseq's generator, greedy (beam 1), made to produce as many tokens as ours: ours fills positions
    1..max_len-1 (the last a forced </s>), fairseq's steps 0..max_len_b (the last a forced </s>)."""
    gen = SequenceGenerator([model], d, beam_size=1, max_len_a=0, max_len_b=max_len - 2, min_len=1)

    def run(model_, x, lengths, src_langs, tgt_langs, _max_len):
        hypos = gen.generate(
            [model_],
            {"net_input": {"src_tokens": x, "src_lengths": lengths, "src_langs": src_langs, "tgt_langs": tgt_langs}},
        )
        rows = [h[0]["tokens"] for h in hypos]
        out = torch.full((len(rows), max(len(r) for r in rows) + 1), d.pad())
        out[:, 0] = d.eos()
        for i, r in enumerate(rows):
            out[i, 1 : len(r) + 1] = r
        return out, torch.tensor([len(r) + 1 for r in rows])

    return run


def make_batch(bs, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(10, 30, (bs,), generator=g)
    x = torch.full((bs, int(lengths.max())), 1)
    for i, l in enumerate(lengths.tolist()):
        x[i, :l] = torch.randint(14, vocab, (l,), generator=g)
        x[i, 0] = x[i, l - 1] = 2
    return x, lengths


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=16000)
    p.add_argument("--bs", type=int, default=32)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d = Dictionary()
    for i in range(a.vocab - 4):
        d.add_symbol(f"w{i}")
    model = build_model(d, a.dim, a.layers, a.heads)
    # a random model may stop at once; forbid </s> so every row runs to max_len (both loops' worst case)
    with torch.no_grad():
        model.decoder.pred_layer.proj.bias[d.eos()] = -1e4
    x, lengths = make_batch(a.bs, a.vocab)
    langs = torch.zeros(a.bs, dtype=torch.long)
    max_len = bt_max_len(x)
    fairseq_greedy = sequence_generator(d, model, max_len)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def gen(fn):
        model.eval()
        t0 = time.perf_counter()
        out, out_len = fn(model, x, lengths, langs, langs + 1, max_len)
        dt = time.perf_counter() - t0
        model.train()
        return dt, out, out_len

    def train_part(out, out_len):
        t0 = time.perf_counter()
        prev = x[:, :-1]
        enc_out = model.encoder(out, out_len, src_langs=langs + 1, tgt_langs=langs)
        logits, _ = model.decoder(prev, encoder_out=enc_out)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), ignore_index=1
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    gen(greedy_generate), gen(fairseq_greedy)  # warm-up
    cached, seqgen, naive, train = [], [], [], []
    for _ in range(a.reps):  # interleaved
        dt, out, out_len = gen(greedy_generate)
        cached.append(dt)
        dt_fairseq, out3, _ = gen(fairseq_greedy)
        seqgen.append(dt_fairseq)
        assert torch.equal(out, out3), "our greedy decoding and fairseq's SequenceGenerator (beam 1) disagree"
        dt_naive, out2, _ = gen(greedy_generate_without_cache)
        naive.append(dt_naive)
        assert torch.equal(out, out2), "cached and naive greedy decoding disagree"
        train.append(train_part(out, out_len))
    c, f, n, t = (statistics.median(v) for v in (cached, seqgen, naive, train))
    print(
        f"model d={a.dim} L={a.layers} H={a.heads} V={a.vocab}; batch {a.bs} sentences of 10-30 tokens; "
        f"{int(out_len.max())} tokens generated per row (max_len {max_len}); fp32, {a.threads} threads; "
        f"medians of {a.reps}"
    )
    print(f"{'greedy decoder':<34}{'sentences/s':>12}")
    print(f"{'ours (incremental cache)':<34}{a.bs / c:>12.1f}")
    print(f"{'fairseq SequenceGenerator, beam 1':<34}{a.bs / f:>12.1f}  (same tokens)")
    print(f"{'naive loop (no cache)':<34}{a.bs / n:>12.1f}")
    print(f"{'transformers XLM generate':<34}{'n/a':>12}  (XLM in transformers is encoder-only: no decoder)")
    steps = int(out_len.max()) - 1
    print(f"per decoding step (ours): {1000 * c / steps:.2f} ms for the batch ({steps} steps)")
    print(
        f"share of a BT step spent generating (ours): {100 * c / (c + t):.0f}% "
        f"(generation {c:.2f}s, training fwd/bwd/update {t:.2f}s)"
    )
    print(f"speedup_vs_naive {n / c:.2f}")
    print(f"speedup_vs_sequence_generator {f / c:.2f}")


if __name__ == "__main__":
    main()
