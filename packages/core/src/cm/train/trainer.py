"""What trains, built one way for ``cm run`` and ``cm bench``: the loss, the model, the
requested optimizations resolved and applied, the optimizer over the parameter groups and the
grad scaler."""

import attrs
import torch

from cm.data.loaders import train_loader
from cm.model.crossencoder import build_cross_encoder
from cm.optimization import TrainContext, apply_all, resolve
from cm.train.param_groups import param_groups


@attrs.frozen
class Trainer:
    """The loss, the plain model (evaluated and saved), the optimizations' context
    (``context.model`` is what trains: compiled, LoRA-wrapped ...), the optimizer and the
    grad scaler."""

    loss: object
    model: object
    context: TrainContext
    optimizer: object
    scaler: object
    telemetry: list
    trainable: int  # parameters the optimizer updates (LoRA freezes the rest)

    def loader(self, split, pad_id, world=None):
        context = self.context
        return train_loader(split, context.experiment.train.batch_size,
                            context.experiment.seed, pad_id, context.batching,
                            context.token_budget, world, pad_to_multiple=context.pad_to_multiple,
                            **context.loader)

    def scheduler(self, registry, num_training_steps):
        spec = self.context.experiment.train.scheduler
        return registry.build(spec, optimizer=self.optimizer,
                              num_training_steps=num_training_steps)


def build_trainer(experiment, registry, device, backbone, pos_weight) -> Trainer:
    """Loss, model, then the requested optimizations resolved and applied, then the optimizer
    over the parameter groups (frozen parameters, e.g. LoRA's base weights, left out)."""
    train = experiment.train
    loss = registry.build(train.loss, pos_weight=pos_weight).to(device)
    model = build_cross_encoder(experiment, registry, backbone, loss.num_logits).to(device)
    active, telemetry = resolve(experiment.optimizations, registry, device)
    context = TrainContext(experiment, device, model, token_budget=experiment.data.max_length,
                           registry=registry)
    telemetry = apply_all(active, telemetry, context)
    groups = param_groups(model, train.lr, train.weight_decay, train.head_lr,
                          train.layerwise_lr_decay)
    optimizer = registry.build(context.optimizer, param_groups=groups, lr=train.lr)
    scaler = torch.amp.GradScaler(torch.device(device).type, enabled=context.grad_scaler)
    trainable = sum(p.numel() for group in groups for p in group["params"])
    return Trainer(loss, model, context, optimizer, scaler, telemetry, trainable)
