"""Recurrent layers over padded batches without packed sequences, so that they trace to plain ONNX
LSTM/GRU/RNN nodes with dynamic batch and time axes.

torch.onnx's legacy exporter does not reproduce pack_padded_sequence with enforce_sorted=False for
bidirectional or stacked RNNs (measured: logits off by 0.07-0.2 on a names classifier), so padding is
handled here instead: the forward direction is causal, so padding after a row's last token cannot
change that row's real outputs; the backward direction reads each row reversed within its own length
(padding moves to the end, where it is again harmless) and its outputs are reversed back. Outputs at
padding are zero, as pad_packed_sequence leaves them. Every layer and direction runs as its own
one-layer module holding a copy of the fused module's weights for that layer and direction.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# nn.RNNBase.mode -> the one-layer module that reruns one layer and direction of it
MODULES = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN_TANH": nn.RNN, "RNN_RELU": nn.RNN}


def reverse_within_lengths(x: Tensor, lengths: Tensor) -> Tensor:
    """x (B, T, F) -> each row's first lengths[b] steps reversed, padding left in place; its own inverse."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, T)
    last = lengths[:, None] - 1  # (B, 1)
    index = torch.where(steps <= last, last - steps, steps)  # (B, T)
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


def last_steps(x: Tensor, lengths: Tensor) -> Tensor:
    """x (B, T, F) -> each row's step lengths[b] - 1: (B, F)."""
    return x.gather(1, (lengths - 1)[:, None, None].expand(-1, 1, x.shape[2]))[:, 0]


class UnpackedRNN(nn.Module):
    """An nn.LSTM/GRU/RNN (batch_first, any layers and directions) rerun layer by layer on a padded
    batch: forward(x (B, T, I), lengths (B,)) -> outputs (B, T, D*H), zero at padding, and the final
    hidden state of the top layer, directions concatenated (B, D*H): what RecurrentEncoder.summary
    reads from a packed run (the forward direction's last real step, the backward direction's first).
    Starts from zero state; evaluation only (no dropout between layers)."""

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        if not rnn.batch_first:
            raise ValueError("UnpackedRNN reruns batch_first modules only")
        self.num_directions = 2 if rnn.bidirectional else 1
        options = {"nonlinearity": "relu"} if rnn.mode == "RNN_RELU" else {}
        self.layers = nn.ModuleList()
        for layer in range(rnn.num_layers):
            input_size = rnn.input_size if layer == 0 else rnn.hidden_size * self.num_directions
            directions = nn.ModuleList()
            for suffix in ("", "_reverse")[: self.num_directions]:
                single = MODULES[rnn.mode](input_size, rnn.hidden_size, batch_first=True, bias=rnn.bias, **options)
                with torch.no_grad():
                    for name, param in single.named_parameters():  # weight_ih_l0 <- weight_ih_l{layer}{suffix}
                        param.copy_(getattr(rnn, name.replace("_l0", f"_l{layer}{suffix}")))
                directions.append(single)
            self.layers.append(directions)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        valid = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None])[:, :, None]  # (B, T, 1)
        for directions in self.layers:
            forward_out, _ = directions[0](x)  # (B, T, H)
            outputs = [forward_out]
            if self.num_directions == 2:
                backward_out, _ = directions[1](reverse_within_lengths(x, lengths))
                outputs.append(reverse_within_lengths(backward_out, lengths))  # (B, T, H), back in order
            x = torch.cat(outputs, dim=-1).masked_fill(~valid, 0.0)  # (B, T, D*H)
        summary = [last_steps(outputs[0], lengths)]
        if self.num_directions == 2:
            summary.append(outputs[1][:, 0])  # the backward direction ends at the first token
        return x, torch.cat(summary, dim=-1)  # (B, T, D*H), (B, D*H)
