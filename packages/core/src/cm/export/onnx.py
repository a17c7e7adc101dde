"""The whole cross-encoder (backbone, any pooling, any head) as one ONNX graph."""

import torch

from cm.errors import UserError

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 18


class Logits(torch.nn.Module):
    """The cross-encoder on plain tensors: what ONNX traces."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model({"input_ids": input_ids, "attention_mask": attention_mask,
                           "token_type_ids": token_type_ids})


def write_onnx(checkpoint, out) -> None:
    try:
        import onnx  # noqa: F401 - the exporter needs it
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError("--format onnx needs the onnx extras: pip install 'cm-core[onnx]' "
                        "(onnx, onnxscript, onnxruntime; scripts/setup --dev installs them)"
                        ) from None
    model = Logits(checkpoint.model.cpu()).eval()
    encoded = checkpoint.tokenizer(["a criterion", "another one"], ["a post", "a longer post"],
                                   padding=True, return_tensors="pt")
    example = tuple(encoded.get(name, torch.zeros_like(encoded["input_ids"]))
                    for name in INPUTS)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    shapes = {name: {0: batch, 1: length} for name in INPUTS}
    with torch.no_grad():
        torch.onnx.export(model, example, out / "model.onnx", input_names=list(INPUTS),
                          output_names=["logits"], dynamic_shapes=shapes, opset_version=OPSET,
                          dynamo=True, external_data=False, verbose=False)
