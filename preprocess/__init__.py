"""xlm-preprocess: raw text -> Moses tokens -> one shared BPE (alpha-sampled) -> shared dict.txt -> fairseq
data-bin, as in XLM's data pipeline (facebookresearch/XLM `get-data-*.sh`, `tools/`). `xlm-preprocess prepare`
chains the steps;
each step is also a subcommand of its own (see `xlm-preprocess --help`)."""
