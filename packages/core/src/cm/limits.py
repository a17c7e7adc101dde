"""Upper bounds on every configured size that would otherwise exhaust memory: a value past
one is refused when the config is read (``cm config validate``, ``cm run``, ``cm sweep``)
or when a command's option is parsed, never found out by a MemoryError hours into a run.
docs/cli.md lists them."""

# bootstrap resamples (eval.bootstrap_resamples, cm compare --resamples): one resample holds
# a row of weights per test post, ~24 bytes a post, all resamples at once
RESAMPLES = 10_000
BATCH_SIZE = 4096  # train.batch_size, train.eval_batch_size
HIDDEN_SIZE = 4096  # model.tiny.hidden_size, and the hidden widths of heads
INTERMEDIATE_SIZE = 16_384  # model.tiny.intermediate_size
LAYERS = 48  # model.tiny.num_layers
HEADS = 64  # model.tiny.num_heads
VOCAB_SIZE = 256_000  # model.tiny.vocab_size
POSITIONS = 8192  # data.max_length, model.tiny.position_buckets, max_relative_positions
