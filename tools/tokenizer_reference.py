#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes tests/data/tokenizers/: tiny KerasHub tokenizers saved with
`save_to_preset`, and KerasHub's answers for them, for tests/tokenizer.rs.

- gpt2/:   GPT2Tokenizer, byte-level BPE (the 256 GPT-2 byte symbols, merges
           learned here on TEXT by a small BPE trainer, `<|endoftext|>`).
- llama3/: Llama3Tokenizer, the same kind of vocabulary with Llama 3's special
           tokens.
- llama/:  LlamaTokenizer, a SentencePiece BPE model trained here the way
           Llama's was (byte fallback, identity normalizer, dummy prefix).
- gpt2_prefix_space/: gpt2's vocabulary with `add_prefix_space=True`.
- llama_no_byte_fallback/: LlamaTokenizer without byte fallback (unknown
           characters are `<unk>`).
- gemma/:  GemmaTokenizer, likewise with Gemma's settings (pad 0, eos 1,
           bos 2, unk 3, no dummy prefix) and two user-defined pieces.

Each folder holds what `tokenizer.save_to_preset(dir)` writes (tokenizer.json
and assets/tokenizer/...), and a config.json (see `save`). cases.json holds, per tokenizer, its class,
vocabulary size and special token ids, and for every string of CASES:
`tokenizer(text)` (KerasHub's default, eager path), the same call on
KerasHub's TensorFlow path (`_allow_python_workflow=False`, the path a
`tf.data` pipeline takes) and `tokenizer.detokenize(ids)`; `decode_cases`
are id lists (special, unknown and byte pieces) with their detokenized text.

    KERAS_BACKEND=jax /work/kvenv/bin/python tools/tokenizer_reference.py
"""
import collections
import io
import json
import os
import shutil

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import regex  # noqa: E402
import sentencepiece as spm  # noqa: E402
from keras_hub.src.tokenizers.byte_pair_tokenizer import (  # noqa: E402
    SPLIT_PATTERN_TOKENIZERS,
)

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tokenizers"
)

# The training text: plain English with numbers, contractions, punctuation,
# newlines and a few accented words, so that merges and pieces cover them.
TEXT = """\
The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.
It's a small world, and it's getting smaller: we'll see what they've done.
I'm sure you'd agree that there are 365 days in a year and 24 hours in a day.
In 2024 the team trained 3 models, then 12 more, then 128 in total.
Hello world! Hello again, world. Hello, hello, hello.
A tokenizer splits text into pieces; a model reads the pieces as numbers.
The weights are stored in float32, bfloat16, int8 or int4, as the policy says.
Keras layers compute in one dtype and store their variables in another.
She said: "Don't stop there." He asked (twice) why the results differ.
Lines end here.
And here, after a blank line.

Tabs\tand  double  spaces appear too, as do trailing spaces.
The café served a naïve crème brûlée to the señor.
Numbers like 3.14159, 2.71828 and 1,000,000 show up in text about science.
Generation stops at the end token; padding fills the rest of the batch.
Attention heads look at every earlier position of the sequence.
def forward(x):
    if x is None:
        return x
    for layer in layers:
        x = layer(x)
    return x
the the the and and and of of of to to to in in in is is is
"""

# Strings every tokenizer is asked about (encode, then decode what it gave).
CASES = [
    "",
    " ",
    "Hello world",
    "hello world",
    " Hello",
    "Hello ",
    "  two  spaces  ",
    "   leading three",
    "trailing three   ",
    "a  b",
    "a\nb",
    "line one\n\nline two\n",
    "\ttab\tseparated\t",
    "  \n  ",
    "tabs\t\t\tand  \r\n crlf\r",
    "The year 2024 had 365 days.",
    "1234567",
    "mixed 3.14159 and -42",
    "it's",
    "It'S OK, we'll see; won't we? They'd've",
    "it\u017f",
    "Hello, world! (really?) #1 @me ...",
    'She said: "Don\'t stop there."',
    "caf\u00e9",
    "na\u00efve fa\u00e7ade cr\u00e8me br\u00fbl\u00e9e",
    "\u00dcn\u00efc\u00f6d\u00e9 \u00c0\u00c9\u00ce",
    "emoji \U0001F600\U0001F44D\U0001F3FD!",
    "\u4e2d\u6587\u5b57\u7b26",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "zyzzyva quixotic",
    "non\u00a0breaking and\u2009thin\u202fspaces\u3000here",
    "<|endoftext|>",
    "a<|endoftext|>b",
    "end.<|endoftext|> start <|endoftext|>",
    "<|begin_of_text|>hi<|eot_id|>",
    "<s> </s> <unk>",
    "<bos><eos><pad>",
    "<start_of_turn>user\nhi<end_of_turn>",
    "\u2581already\u2581escaped",
    "nul\u0000 and del\u007f",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "a    b",
    "def f(x):\n    return x  \n\n        pass",
    "x" + SPLIT_PATTERN_TOKENIZERS + "y",
    "<|endoftext|>Hello<|endoftext|><|endoftext|> world",
]


# --- GPT-2 style byte-level BPE ---------------------------------------------

def bytes_to_unicode():
    """GPT-2's byte -> printable unicode symbol table."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\u00a1"), ord("\u00ac") + 1))
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


GPT2_SPLIT = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


def train_byte_bpe(text, num_merges):
    """A plain BPE trainer: words split by GPT-2's pattern, the most frequent
    adjacent pair merged each step (ties: the smallest pair), `num_merges`
    times. Returns (symbols in id order, merges)."""
    b2u = bytes_to_unicode()
    words = collections.Counter(
        tuple(b2u[b] for b in w.encode("utf-8")) for w in GPT2_SPLIT.findall(text)
    )
    # Byte symbols first, in GPT-2's order (printable bytes first).
    symbols = list(b2u.values())
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for w, f in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += f
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        symbols.append(best[0] + best[1])
        merged = collections.Counter()
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += f
        words = merged
    return symbols, [f"{a} {b}" for a, b in merges]


def byte_bpe_vocabulary(symbols, specials):
    vocab = {}
    for s in symbols + specials:
        if s not in vocab:
            vocab[s] = len(vocab)
    return vocab


# --- SentencePiece BPE -------------------------------------------------------

def train_sentencepiece(vocab_size, byte_fallback=True, **options):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXT.splitlines()),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=byte_fallback,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        character_coverage=1.0,
        num_threads=1,
        shuffle_input_sentence=False,
        minloglevel=2,
        **options,
    )
    return model.getvalue()


# --- Answers -------------------------------------------------------------------

def as_ids(x):
    return [int(i) for i in np.asarray(x).reshape(-1)]


def as_text(x):
    if hasattr(x, "numpy"):
        x = x.numpy()
    if isinstance(x, np.ndarray):
        x = x.item()
    if isinstance(x, bytes):
        x = x.decode("utf-8")
    return x


def answers(cls, folder, decode_cases):
    eager = cls.from_preset(folder)
    graph = cls.from_preset(folder, _allow_python_workflow=False)
    cases = []
    for text in CASES:
        ids = as_ids(eager(text))
        cases.append(
            {
                "text": text,
                "ids": ids,
                "ids_tf": as_ids(graph(text)),
                "detokenized": as_text(eager.detokenize(ids)),
                "detokenized_tf": as_text(graph.detokenize(ids)) if ids else "",
            }
        )
    decodes = []
    for ids in decode_cases:
        decodes.append(
            {
                "ids": ids,
                "detokenized": as_text(eager.detokenize(ids)),
                "detokenized_tf": as_text(graph.detokenize(ids)),
            }
        )
    pieces = {}
    for piece in ["<|endoftext|>", "<s>", "</s>", "<unk>", "<pad>", "<bos>", "<eos>",
                  "\u2581the", "\u0120the", "the", "<0x41>", "<|eot_id|>"]:
        if piece in eager.get_vocabulary():
            pieces[piece] = int(eager.token_to_id(piece))
    return {
        "class": type(eager).__name__,
        "vocabulary_size": int(eager.vocabulary_size()),
        "start_token_id": eager.start_token_id,
        "end_token_id": eager.end_token_id,
        "pad_token_id": eager.pad_token_id,
        "token_ids": pieces,
        "cases": cases,
        "decode_cases": decodes,
    }


# `Tokenizer.from_preset` reads the backbone class from config.json, so each
# folder also gets a tiny backbone's config (no weights) of the tokenizer's
# vocabulary size; the Rust reader ignores it.
BACKBONES = {
    "gpt2": lambda v: BACKBONES["gpt2_prefix_space"](v),
    "gpt2_prefix_space": lambda v: keras_hub.models.GPT2Backbone(
        vocabulary_size=v, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=64),
    "llama3": lambda v: keras_hub.models.Llama3Backbone(
        vocabulary_size=v, num_layers=1, num_query_heads=2, num_key_value_heads=1,
        hidden_dim=16, intermediate_dim=32),
    "llama": lambda v: keras_hub.models.LlamaBackbone(
        vocabulary_size=v, num_layers=1, num_query_heads=2, num_key_value_heads=1,
        hidden_dim=16, intermediate_dim=32),
    "llama_no_byte_fallback": lambda v: BACKBONES["llama"](v),
    "gemma": lambda v: keras_hub.models.GemmaBackbone(
        vocabulary_size=v, num_layers=1, num_query_heads=2, num_key_value_heads=1,
        hidden_dim=16, intermediate_dim=32, head_dim=8),
}


def save(tokenizer, name):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    tokenizer.save_to_preset(folder)
    config = keras.saving.serialize_keras_object(BACKBONES[name](tokenizer.vocabulary_size()))
    config.pop("build_config", None)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(json.dumps(config, indent=4))
    return folder


def main():
    os.makedirs(OUT, exist_ok=True)
    result = {}

    symbols, merges = train_byte_bpe(TEXT, 300)
    vocab = byte_bpe_vocabulary(symbols, ["<|endoftext|>"])
    eot, the = vocab["<|endoftext|>"], vocab["\u0120the"]
    # A lone 0xC3 byte, 0xC3 0xA9 ("\u00e9"), two spaces.
    gpt2_decodes = [[eot], [the, eot, the], [vocab["\u00c3"], vocab["\u00a9"]],
                    [vocab["\u00c3"]], [vocab["\u0120"], vocab["\u0120"]]]
    for name, prefix_space in [("gpt2", False), ("gpt2_prefix_space", True)]:
        tokenizer = keras_hub.models.GPT2Tokenizer(
            vocabulary=vocab, merges=merges, add_prefix_space=prefix_space)
        folder = save(tokenizer, name)
        result[name] = answers(keras_hub.models.GPT2Tokenizer, folder, gpt2_decodes)

    l3_specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                   "<|end_header_id|>", "<|eot_id|>"]
    symbols, merges = train_byte_bpe(TEXT, 200)
    vocab = byte_bpe_vocabulary(symbols, l3_specials)
    folder = save(keras_hub.models.Llama3Tokenizer(vocabulary=vocab, merges=merges), "llama3")
    result["llama3"] = answers(
        keras_hub.models.Llama3Tokenizer,
        folder,
        [[vocab[s] for s in l3_specials], [vocab["h"], vocab["<|eot_id|>"], vocab["i"]]],
    )

    # Llama's ids: unk 0, bos 1, eos 2, no pad piece.
    proto = train_sentencepiece(400, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                                add_dummy_prefix=True)
    folder = save(keras_hub.models.LlamaTokenizer(proto=proto), "llama")
    sp = spm.SentencePieceProcessor(model_proto=proto)
    byte = lambda x: sp.PieceToId(f"<0x{x:02X}>")  # noqa: E731
    w = sp.PieceToId("\u2581the")
    result["llama"] = answers(
        keras_hub.models.LlamaTokenizer,
        folder,
        [[1, w, 2], [0], [w, 0, w], [byte(0xC3), byte(0xA9)], [byte(0xE2), byte(0x82)],
         [byte(0xFF), w], [byte(0x20), w], [1, w], [byte(0x41), w], [w, w]],
    )

    # Without byte fallback: unknown characters are `<unk>`.
    proto = train_sentencepiece(200, byte_fallback=False, unk_id=0, bos_id=1, eos_id=2,
                                pad_id=-1, add_dummy_prefix=True)
    folder = save(keras_hub.models.LlamaTokenizer(proto=proto), "llama_no_byte_fallback")
    sp = spm.SentencePieceProcessor(model_proto=proto)
    w = sp.PieceToId("\u2581the")
    result["llama_no_byte_fallback"] = answers(
        keras_hub.models.LlamaTokenizer, folder, [[0], [0, w], [w, 0, 0, w]])

    # Gemma's ids: pad 0, eos 1, bos 2, unk 3; two user-defined pieces and a
    # control piece.
    proto = train_sentencepiece(
        420, pad_id=0, eos_id=1, bos_id=2, unk_id=3, add_dummy_prefix=False,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
        control_symbols=["<mask>"],
    )
    folder = save(keras_hub.models.GemmaTokenizer(proto=proto), "gemma")
    sp = spm.SentencePieceProcessor(model_proto=proto)
    byte = lambda x: sp.PieceToId(f"<0x{x:02X}>")  # noqa: E731
    w = sp.PieceToId("\u2581the")
    result["gemma"] = answers(
        keras_hub.models.GemmaTokenizer,
        folder,
        [[2, w, 1, 0], [3], [w, 3, w], [byte(0xC3), byte(0xA9)], [byte(0xE2), byte(0x82)],
         [sp.PieceToId("<mask>"), w], [2, w], [sp.PieceToId("<start_of_turn>"), w]],
    )

    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for name, r in result.items():
        differ = [c["text"] for c in r["cases"] if c["ids"] != c["ids_tf"]]
        print(f"{name}: {r['class']} vocabulary {r['vocabulary_size']}, start "
              f"{r['start_token_id']} end {r['end_token_id']} pad {r['pad_token_id']}; "
              f"eager and tf paths differ on {len(differ)} of {len(r['cases'])}: {differ!r}")


if __name__ == "__main__":
    main()
