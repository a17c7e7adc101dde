"""Scoring with a trained cross-encoder: P(match) per pair of an encoded split (the windows
of one pair combined), and per sentence of a post for sentence evidence. Used by training's
validation and final evaluation and by ``cm predict``."""

import attrs
import numpy as np
import torch

from cm.data.loaders import SplitData, encode_split, eval_loader, to_device
from cm.data.records import PairSample
from cm.distributed import ALONE, World, sum_across
from cm.evaluate.metrics import aggregate_windows


@torch.no_grad()
def score(model, loss, split: SplitData, batch_size, pad_id, device, how="max",
          world=ALONE, pad_to_multiple=None, autocast_dtype=None):
    """P(match) per pair of ``split`` (windows of one pair combined by ``how``) and, per pair,
    the window that drove a ``max`` decision (the evidence window). Under torchrun each rank
    scores every world-size-th batch and the probabilities are summed across ranks. Batches
    are padded to a multiple of ``pad_to_multiple`` tokens when given (the shapes training
    compiled) and run under autocast to ``autocast_dtype`` when given."""
    model.eval()
    probs = np.zeros(len(split.encoded))
    kind = torch.device(device).type
    for i, batch in enumerate(eval_loader(split, batch_size, pad_id, pad_to_multiple)):
        if i % world.size != world.rank:
            continue
        index = batch.pop("index").numpy()
        with torch.autocast(kind, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(to_device(batch, device))
        probs[index] = loss.probabilities(logits.float()).cpu().numpy()
    probs = sum_across(probs, world, device)
    pair_index = np.array([e.pair_index for e in split.encoded])
    pairs, aggregated, evidence = aggregate_windows(pair_index, probs, how)
    if list(pairs) != list(range(len(split.pairs))):
        raise RuntimeError(f"{split.name}: not every pair was scored exactly once")
    return aggregated, evidence


@attrs.frozen
class Scorer:
    """A model, its loss (logits -> probabilities), its tokenizer, and how to score with
    them: evaluation batch size, device, how windows of one pair combine, the torchrun world.
    """

    model: object
    loss: object
    tokenizer: object
    batch_size: int
    device: str
    how: str = "max"
    world: World = ALONE
    pad_to_multiple: int | None = None  # eval batches padded as training's (compile, Triton)
    autocast_dtype: object = None  # a torch dtype to score under autocast (bf16 on a GPU)

    @classmethod
    def of(cls, run, model, loss, tokenizer, context=None) -> "Scorer":
        """The run's scorer; given the training ``context`` (cm.optimization.TrainContext),
        evaluation pads batches as training does and, on CUDA, runs at its AMP dtype (on CPU
        it stays fp32, the precision checkpoints are scored at by ``cm predict``)."""
        experiment = run.experiment
        cuda = torch.device(run.device).type == "cuda"
        return cls(model, loss, tokenizer, experiment.train.eval_batch_size, run.device,
                   experiment.data.window_aggregation, run.world,
                   context.pad_to_multiple if context is not None else None,
                   context.autocast_dtype if context is not None and cuda else None)

    def probabilities(self, split: SplitData):
        """P(match) per pair of ``split``."""
        return self.scores(split)[0]

    def scores(self, split: SplitData):
        """P(match) per pair of ``split`` and the window that drove each (``score``)."""
        return score(self.model, self.loss, split, self.batch_size,
                     self.tokenizer.pad_token_id, self.device, self.how, self.world,
                     self.pad_to_multiple, self.autocast_dtype)


def sentence_probs(scorer, data, requests, cache_dir=None):
    """``requests``: (text, spans, criterion id, criterion text) per cell; returns one array
    of raw sentence probabilities per request: each sentence scored against the criterion as
    a pair of its own (encodings cached in ``cache_dir`` when given). ``scorer`` has
    ``tokenizer`` and ``probabilities(split)``."""
    pairs = [PairSample(f"evidence-{n}", criterion_id, text[s.start:s.end], criterion_text, 0)
             for n, (text, spans, criterion_id, criterion_text) in enumerate(requests)
             for s in spans]
    if not pairs:
        return [[] for _ in requests]
    probs = scorer.probabilities(encode_split("evidence", pairs, scorer.tokenizer, data,
                                              cache_dir))
    out, start = [], 0
    for _, spans, _, _ in requests:
        out.append(probs[start:start + len(spans)])
        start += len(spans)
    return out
