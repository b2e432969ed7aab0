"""A CLIP BPE tokenizer built from the world's vocabulary (vocab.json + merges.txt).

Every world word becomes one token; any other text still tokenises, into byte-level pieces.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from transformers import CLIPTokenizer

from tv3dg.atomic import write_text_atomic
from tv3dg.priors.mini.architecture import MAX_LENGTH
from tv3dg.priors.mini.captions import vocabulary

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for the bytes 0..255 (GPT-2 scheme)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), ord("\u00ff") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def _make_tokenizer(vocab: dict[str, int], merges: list[str], max_length: int = MAX_LENGTH) -> CLIPTokenizer:
    return CLIPTokenizer(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges], model_max_length=max_length, pad_token=EOS)


def _vocab_and_merges(words: list[str]) -> tuple[dict[str, int], list[str]]:
    """Byte symbols, then merges that join each word into one token.

    A merge made for one word can split another (`p l` of "plain" inside "purple"), so the
    pieces a word actually falls into are joined by further merges until every word is whole.
    """
    chars = _byte_symbols()
    tokens = chars + [c + "</w>" for c in chars]
    merges: list[str] = []

    def join(pieces: list[str]) -> None:
        left = pieces[0]
        for right in pieces[1:]:
            if f"{left} {right}" not in merges:
                merges.append(f"{left} {right}")
            left = left + right
            if left not in tokens:
                tokens.append(left)

    for word in words:
        join(list(word[:-1]) + [word[-1] + "</w>"])
    for _ in range(10):
        vocab = {t: i for i, t in enumerate(tokens + [BOS, EOS])}
        tokenizer = _make_tokenizer(vocab, merges)
        split = [tokenizer.tokenize(w) for w in words]
        split = [pieces for pieces in split if len(pieces) > 1]
        if not split:
            return vocab, merges
        for pieces in split:
            join(pieces)
    raise RuntimeError("tokenizer merges did not converge")


def save_tokenizer(directory: str | Path, words: list[str] | None = None, max_length: int = MAX_LENGTH) -> CLIPTokenizer:
    """Write the tokenizer files to `directory` (save_pretrained layout) and return it loaded.

    `words` (default: every word a caption can hold) each become one token; words with digits ("3d")
    stay byte pieces, since CLIP's pre-tokenizer splits digits from letters before any merge.
    """
    words = [w for w in (vocabulary() if words is None else words) if w.isalpha()]
    vocab, merges = _vocab_and_merges(words)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = _make_tokenizer(vocab, merges, max_length)
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for item in Path(tmp).iterdir():
            write_text_atomic(directory / item.name, item.read_text(encoding="utf-8"))
    return CLIPTokenizer.from_pretrained(str(directory))
