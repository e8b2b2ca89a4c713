import torch
from torch import nn

from seqtasks.regularization import embedding_dropout, locked_dropout, word_dropout


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


def test_embedding_dropout_drops_whole_tokens_everywhere_they_occur():
    torch.manual_seed(0)
    embedding = nn.Embedding(200, 8)
    tokens = torch.randint(0, 200, (16, 40))
    out = embedding_dropout(embedding, tokens, 0.3)  # (B, T, E)
    plain = embedding(tokens)
    zero = (out == 0).all(-1)  # (B, T)
    for token in tokens.unique().tolist():  # a token is dropped at all of its positions or at none
        at = tokens == token
        assert bool(zero[at].all()) or not bool(zero[at].any())
    torch.testing.assert_close(out[~zero], plain[~zero] / 0.7)
    assert abs(zero.float().mean().item() - 0.3) < 0.1
    assert torch.equal(embedding_dropout(embedding, tokens, 0.0), plain)


def test_locked_dropout_keeps_one_mask_for_every_step():
    torch.manual_seed(0)
    x = torch.rand(32, 20, 64) + 0.5
    out = locked_dropout(x, 0.4)
    dropped = out == 0  # (B, T, F)
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # the same units at every step
    torch.testing.assert_close(out[~dropped], x[~dropped] / 0.6)
    assert abs(dropped[:, 0].float().mean().item() - 0.4) < 0.05
    assert torch.equal(locked_dropout(x, 0.0), x)
