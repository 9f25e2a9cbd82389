"""Run in a subprocess by test_plan.py: peak RSS growth of AdamW training steps of a BertForMaskedLM.

Arguments: shape (JSON), vocabulary, batch, sequence length, steps, and optionally the attention dropout (0.1).
Prints one JSON line: the bytes by which the process's peak RSS grew from just before the model was built to the
end of the steps. The peak is reset first (`/proc/self/clear_refs`), so imports do not count. Run it with a fixed
`MALLOC_MMAP_THRESHOLD_` (the test does) so glibc's heap slack does not count either.
"""

import json
import sys

import torch
from transformers import BertForMaskedLM

from lmtailor.models.presets import Shape, bert_config


def rss(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def main() -> None:
    shape = Shape(**json.loads(sys.argv[1]))
    vocab, batch, seq, steps = (int(x) for x in sys.argv[2:6])
    attention_dropout = float(sys.argv[6]) if len(sys.argv) > 6 else 0.1  # 0: PyTorch's fused CPU attention
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ids = torch.randint(5, vocab, (batch, seq))
    labels = torch.full_like(ids, -100)
    labels[:, ::7] = ids[:, ::7]
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = rss("VmRSS")
    config = bert_config(shape, vocab)
    config.attention_probs_dropout_prob = attention_dropout
    model = BertForMaskedLM(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for _ in range(steps):
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
        out.loss.backward()  # the output (logits) held through the backward pass, as a hand-written loop does
        del out
        opt.step()
        opt.zero_grad(set_to_none=True)
    print(json.dumps({"peak_growth": rss("VmHWM") - base}))


if __name__ == "__main__":
    main()
