"""Token shards: `lmtailor tokenize` writes a corpus once as token ids with masking units; `pretrain` streams them."""
