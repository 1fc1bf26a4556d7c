"""Builds a Hugging Face tokenizer directory that counts tokens exactly as xds does (README,
"simple deterministic tokenizer"; Sources/APIServer/OpenAI/PromptTokenizer.swift), so that load
generators that size prompts and count output tokens with a tokenizer (aiperf, guidellm) agree
with xds's usage fields, and nothing is downloaded at run time.

Rules mirrored: a run of letters/digits is cut into pieces of at most 4 characters, each a token;
every other visible character is one token; whitespace is nothing. The vocabulary is the pieces
of CORPUS (default: aiperf's bundled prompt corpus when aiperf is installed), so decoding its
token ids gives text back (pieces joined by spaces, which xds counts the same); any other piece
is [UNK], which still counts as one token.

Usage: python3 .ci/make-tokenizer.py OUT_DIR [CORPUS]"""
import glob
import json
import os
import re
import sys

from tokenizers import Regex, Tokenizer, models, pre_tokenizers

# xds counts characters as Swift sees them: user-perceived characters (extended grapheme
# clusters), each a letter/digit or not by its first code point. So a piece is up to 4 clusters
# that start with a letter or digit, and any other cluster is one token: '👍🏽' (thumb + skin tone),
# 'é' written as e + U+0301 and '🏳️‍🌈' (a ZWJ sequence of 4 code points) are one each. Counting
# code points instead gave 2, 2 and 4, and aiperf sized such prompts longer than xds did.
PIECE = r"(?:(?=[\p{L}\p{N}])\X){1,4}|(?=[^\s\p{L}\p{N}])\X"

out = sys.argv[1]
corpus = sys.argv[2] if len(sys.argv) > 2 else None
if corpus is None:
    try:
        import aiperf
        found = glob.glob(os.path.join(os.path.dirname(aiperf.__file__), "**", "*.txt"), recursive=True)
        corpus = max(found, key=os.path.getsize) if found else None
    except ImportError:
        pass

vocab = {"[UNK]": 0}
if corpus:
    text = open(corpus, encoding="utf-8", errors="replace").read()
    for piece in re.findall(r"[^\W_]{1,4}|[^\s\w]|_", text):
        vocab.setdefault(piece, len(vocab))
tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
# Whitespace goes first (it counts nothing), then each word is cut into its pieces. Whitespace
# as whole clusters: a space followed by a combining mark or U+FE0F is one cluster, and nothing in xds.
tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
    [pre_tokenizers.Split(Regex(r"(?=\s)\X"), behavior="removed"), pre_tokenizers.Split(Regex(PIECE), behavior="isolated")])
os.makedirs(out, exist_ok=True)
tokenizer.save(os.path.join(out, "tokenizer.json"))
json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "model_max_length": 131072,
           "clean_up_tokenization_spaces": False}, open(os.path.join(out, "tokenizer_config.json"), "w"))
json.dump({"model_type": "xds-simple"}, open(os.path.join(out, "config.json"), "w"))

# Self-check against the counts PromptTokenizer's documentation promises.
for sample, expected in [("Hello, world!", 6), ("the tokens understanding", 7), ("  ", 0),
                         ("\U0001F44D\U0001F3FD ok", 2), ("cafe\u0301s", 2), ("\U0001F3F3\uFE0F\u200D\U0001F308!", 2),
                         ("a \u0301b", 2)]:
    got = len(tokenizer.encode(sample, add_special_tokens=False).ids)
    assert got == expected, (sample, got, expected)
print(f"tokenizer in {out}: {len(vocab)} pieces from {corpus or 'no corpus'}")
