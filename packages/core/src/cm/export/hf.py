"""A checkpoint as a plain ``transformers`` folder: ``DebertaV2ForSequenceClassification``.

Its classification path is ContextPooler (dropout, dense, activation on the first token)
then dropout then a linear classifier. cm's ``cls`` pooling with a ``linear`` head is that
path with an identity dense layer (weights I, bias 0, ``pooler_hidden_act = "linear"``), so
the folder scores exactly as cm does, with no ``trust_remote_code``. Other heads and
poolings have no such class in transformers: they are refused (``onnx`` carries them).
"""

import torch

from cm.errors import UserError


def expressible(checkpoint) -> None:
    """A UserError naming what a plain transformers class cannot express."""
    model, spec = checkpoint.model, checkpoint.experiment.model
    problems = []
    if model.backbone.config.model_type != "deberta-v2":
        problems.append(f"backbone {model.backbone.config.model_type!r} (only DeBERTa-v2/v3)")
    if spec.pooling.name != "cls":
        problems.append(f"pooling {spec.pooling.name!r} (only 'cls')")
    linear = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    if spec.head.name != "linear" or len(linear) != 1:
        problems.append(f"head {spec.head.name!r} (only 'linear')")
    if problems:
        raise UserError(f"--format hf: DebertaV2ForSequenceClassification cannot express "
                        f"this checkpoint's {', '.join(problems)}; export it with --format "
                        "onnx, which carries any head and pooling")


def write_hf(checkpoint, out) -> None:
    from transformers import DebertaV2ForSequenceClassification

    expressible(checkpoint)
    backbone = checkpoint.model.backbone
    [classifier] = [m for m in checkpoint.model.head.modules()
                    if isinstance(m, torch.nn.Linear)]
    config = backbone.config.__class__.from_dict(backbone.config.to_dict())
    hidden = config.hidden_size
    config.num_labels = classifier.out_features
    config.pooler_hidden_size, config.pooler_hidden_act, config.pooler_dropout = \
        hidden, "linear", 0.0
    config.id2label = ({0: "match"} if config.num_labels == 1
                       else {0: "no match", 1: "match"})
    config.label2id = {label: i for i, label in config.id2label.items()}
    model = DebertaV2ForSequenceClassification(config).eval()
    model.deberta.load_state_dict(backbone.state_dict())
    with torch.no_grad():
        model.pooler.dense.weight.copy_(torch.eye(hidden))
        model.pooler.dense.bias.zero_()
        model.classifier.load_state_dict(classifier.state_dict())
    model.save_pretrained(out, safe_serialization=True)
