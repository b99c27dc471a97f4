"""Vocabularies learned on the train split, for the arms trained from scratch.

Both are deterministic: the same texts give the same vocabulary and ids in every process
(tested), so a seed reproduces a scratch model exactly.

- :func:`train_bpe`: GPT-2's byte-level BPE, with the arm's special tokens.
- :func:`train_wordpiece`: BERT's uncased WordPiece (``[CLS] x [SEP]``), learned through a
  deterministic BPE (see its docstring for why not ``WordPieceTrainer``).
"""

from __future__ import annotations

from typing import Sequence

EOS = "<|endoftext|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # WordPiece


def train_bpe(texts: Sequence[str], vocab_size: int, min_frequency: int, specials: list[str]):
    """A byte-level BPE tokenizer (GPT-2 style) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS, PAD, *specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(specials),
    )


def train_wordpiece(texts: Sequence[str], vocab_size: int, max_length: int):
    """An uncased WordPiece tokenizer (BERT-style [CLS] x [SEP]) learnt from ``texts``.

    The same vocabulary learning as ``tokenizers.trainers.WordPieceTrainer`` (byte-pair merges
    within words, continuation pieces written ``##x``), made reproducible: that trainer gives a
    different vocabulary in every process, because the ids of its ``##`` alphabet come from an
    unordered hash set and merges tie-break on ids. Here every character that continues a word
    is first mapped to a private-use code point of its own, a plain ``BpeTrainer`` (which is
    deterministic) learns the merges, and each learned token is mapped back (``##`` prefix for
    tokens that start inside a word) into a ``WordPiece`` model with the same ids.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    normalizer = normalizers.BertNormalizer(lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    words_per_text = [[w for w, _ in splitter.pre_tokenize_str(normalizer.normalize_str(str(t)))] for t in texts]
    chars = sorted({c for words in words_per_text for w in words for c in w[1:]})
    seen = {c for words in words_per_text for w in words for c in w}
    free = (chr(cp) for r in (range(0xF0000, 0xFFFFE), range(0x100000, 0x10FFFE)) for cp in r if chr(cp) not in seen)
    to_mark = {c: next(free) for c in chars}  # continuation character -> its own private-use code point
    from_mark = {m: c for c, m in to_mark.items()}
    marked = (" ".join(w[0] + "".join(to_mark[c] for c in w[1:]) for w in words) for words in words_per_text)

    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    bpe.train_from_iterator(
        marked, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    )
    vocab = {}
    for token, i in bpe.get_vocab().items():
        if token in SPECIAL_TOKENS or token[0] not in from_mark:
            vocab["".join(from_mark.get(c, c) for c in token)] = i
        else:
            vocab["##" + "".join(from_mark[c] for c in token)] = i

    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = splitter
    tok.decoder = decoders.WordPiece()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return wordpiece_from_json(tok.to_str(), max_length)


def wordpiece_from_json(tokenizer_json: str, max_length: int):
    from tokenizers import Tokenizer
    from transformers import DistilBertTokenizerFast

    return DistilBertTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tokenizer_json),
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )
