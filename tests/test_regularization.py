import torch

from seqtasks.regularization import word_dropout


def test_word_dropout_replaces_only_real_tokens_at_the_given_rate():
    torch.manual_seed(0)
    tokens = torch.randint(4, 100, (64, 50))
    real = torch.arange(50).expand(64, 50) < torch.randint(1, 51, (64, 1))  # right padding
    tokens = tokens.masked_fill(~real, 0)
    dropped = word_dropout(tokens, 0.25, unk_id=1, real=real)
    assert torch.equal(dropped[~real], tokens[~real])  # padding untouched
    changed = dropped != tokens
    assert torch.all(dropped[changed] == 1)
    assert abs(changed.sum().item() / real.sum().item() - 0.25) < 0.03
    assert torch.equal(word_dropout(tokens, 0.0, unk_id=1, real=real), tokens)
