"""channels-last: registered so that asking for it gets a clear answer rather than an
unknown-name error. It is a memory layout for 4-D image tensors (N, C, H, W); a text
cross-encoder has none, so there is nothing to apply."""

from cm.optimization import Optimization

REASON = ("not applicable to text: channels-last is a memory layout for 4-D image tensors "
          "(N, C, H, W) and this model has none")


class ChannelsLast(Optimization):
    def unavailable(self, device):
        return REASON

    def apply(self, context):
        raise AssertionError(REASON)  # resolve() never activates it
