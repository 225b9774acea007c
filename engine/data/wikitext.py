"""WikiText-2 (Merity et al. 2016), word level: the vocabulary, token streams and training segments.

Sources, in order: a folder the caller gives, `DGM_WIKITEXT_DIR`, `DGM_DATA_DIR/wikitext-2` (default
../shared/data beside a checkout), else the Hugging Face Hub's `Salesforce/wikitext` (wikitext-2-v1) when online. Each line is split
on spaces and ends with one `<eos>`, as in the paper's tokenized files. The vocabulary comes from the train
split only (33,278 types); any other word becomes `<unk>`, and `encode` says which words did.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.data import DatasetUnavailable, data_dir

SPLITS = ("train", "valid", "test")
EOS, UNK = "<eos>", "<unk>"
PIECES = r"@[,.-]@|<unk>|\.\.\.|n't|'(?:s|re|ve|d|ll|m)\b|\w+|[^\w\s]"  # how an unknown chunk is split
MAX_TEXT_CHARS = 200_000  # typed or uploaded passages: longer ones are refused with a message
HUB_FILES = {s: f"wikitext-2-v1/{n}-00000-of-00001.parquet" for s, n in
             (("train", "train"), ("valid", "validation"), ("test", "test"))}


def _local_folder(folder: str | Path | None) -> Path | None:
    """The folder holding wiki.{train,valid,test}.tokens: the argument, `DGM_WIKITEXT_DIR`, or
    `DGM_DATA_DIR/wikitext-2`."""
    if folder is not None:
        return Path(folder)
    if os.environ.get("DGM_WIKITEXT_DIR"):
        return Path(os.environ["DGM_WIKITEXT_DIR"])
    root = data_dir()
    return root / "wikitext-2" if root is not None else None


@functools.lru_cache(maxsize=6)
def lines(split: str, folder: str | None = None) -> tuple[str, ...]:
    """The raw lines of a split (each a paragraph, a heading like ' = Title = ', or empty)."""
    if split not in SPLITS:
        raise ValueError(f"unknown WikiText split {split!r}; choose from {', '.join(SPLITS)}")
    local = _local_folder(folder)
    path = local / f"wiki.{split}.tokens" if local is not None else None
    if path is not None and path.is_file():
        return tuple(path.read_text(encoding="utf-8").splitlines())
    try:  # online fallback: the Hub's parquet files (pyarrow comes with Streamlit)
        import pyarrow.parquet as pq
        from huggingface_hub import hf_hub_download
        file = hf_hub_download("Salesforce/wikitext", HUB_FILES[split], repo_type="dataset")
        return tuple(line.rstrip("\n") for line in pq.read_table(file).column("text").to_pylist())
    except Exception as err:  # offline, or the Hub layout changed
        raise DatasetUnavailable(
            f"WikiText-2 {split} split not found at {path} and not downloadable from the Hugging Face Hub "
            f"(Salesforce/wikitext: {type(err).__name__}). Put wiki.{{train,valid,test}}.tokens in a folder "
            "and set DGM_DATA_DIR to its parent, or pass the folder.") from err


def words(line: str) -> list[str]:
    """The tokens of one line plus `<eos>`, blank lines included: the convention of the published WikiText-2
    perplexities (pytorch/examples word_language_model, AWD-LSTM), giving 245,569 test tokens."""
    return line.split() + [EOS]


@dataclass(frozen=True)
class Vocab:
    """Word <-> id, built from the train split: ids in order of first appearance, `<eos>` first."""

    itos: tuple[str, ...]

    @functools.cached_property
    def stoi(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def unk(self) -> int:
        return self.stoi[UNK]

    def encode(self, tokens: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (T,) int64, was_unknown (T,) bool): out-of-vocabulary words become `<unk>`."""
        ids = [self.stoi.get(t, -1) for t in tokens]
        unknown = torch.tensor([i < 0 for i in ids], dtype=torch.bool)
        return torch.tensor([i if i >= 0 else self.unk for i in ids], dtype=torch.long), unknown

    def decode(self, ids) -> list[str]:
        return [self.itos[int(i)] for i in ids]


@functools.lru_cache(maxsize=2)
def vocab(folder: str | None = None) -> Vocab:
    """The train split's vocabulary (33,278 types for WikiText-2)."""
    seen: dict[str, None] = {EOS: None}
    for line in lines("train", folder):
        seen.update(dict.fromkeys(line.split()))
    seen.setdefault(UNK, None)
    return Vocab(tuple(seen))


@functools.lru_cache(maxsize=6)
def ids(split: str, folder: str | None = None) -> torch.Tensor:
    """One split as a single (T,) stream of token ids."""
    v = vocab(folder)
    stream = [t for line in lines(split, folder) for t in words(line)]
    return v.encode(stream)[0]


def batchify(stream: torch.Tensor, n_streams: int) -> torch.Tensor:
    """(T,) -> (n_streams, T // n_streams): the stream cut into parallel contiguous pieces (tail dropped)."""
    per = len(stream) // n_streams
    return stream[: per * n_streams].view(n_streams, per)


def segments(batched: torch.Tensor, length: int, *, offset: int = 0):
    """Consecutive (B, length + 1) windows of a batchified stream: inputs [:, :-1], targets [:, 1:].
    Windows overlap by one token, so every target is predicted exactly once."""
    for start in range(offset, batched.shape[1] - 1, length):
        window = batched[:, start:start + length + 1]
        if window.shape[1] >= 2:
            yield window


def train_batches(n_streams: int, length: int, *, generator: torch.Generator, folder: str | None = None):
    """One epoch of ordered training segments (B, length + 1) with a random start offset per epoch, so the
    recurrence memory stays valid from one batch to the next while segment boundaries move."""
    offset = int(torch.randint(length, (1,), generator=generator))
    return segments(batchify(ids("train", folder), n_streams), length, offset=offset)


def tokenize_text(text: str) -> list[str]:
    """User text -> WikiText-style tokens: words and punctuation split apart, lines ending in `<eos>`.
    Raises ValueError with a readable message for empty, binary or huge text."""
    if not isinstance(text, str):
        raise ValueError("the passage must be text")
    if "\x00" in text or sum(not (c.isprintable() or c.isspace()) for c in text[:10_000]) > 20:
        raise ValueError("this looks like a binary file, not text: paste or upload plain text")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the passage has {len(text):,} characters; the page takes at most {MAX_TEXT_CHARS:,}")
    known, out = vocab().stoi, []
    for line in text.splitlines():
        line = line.replace("’", "'") if "’" not in known else line
        line = re.sub(r"(\d)([,.-])(?=\d)", r"\1 @\2@ ", line)  # 1,000 -> 1 @,@ 000 as in WikiText
        line = re.sub(r"(\w)-(?=\w)", r"\1 @-@ ", line)  # well-known -> well @-@ known
        line = re.sub(r"(\w)(n't|'s|'re|'ve|'d|'ll|'m)\b", r"\1 \2", line, flags=re.IGNORECASE)
        out += words(" ".join(chunk if chunk in known else " ".join(re.findall(PIECES, chunk))
                              for chunk in line.split()))
    if all(t == EOS for t in out):
        raise ValueError("the passage is empty: type or paste some text")
    return out


def articles(split: str = "test", folder: str | None = None) -> list[tuple[str, list[str]]]:
    """(title, tokens) per article: WikiText articles start at a ' = Title = ' line (one level of '=')."""
    found: list[tuple[str, list[str]]] = []
    for line in lines(split, folder):
        heading = re.fullmatch(r" = ([^=].*[^=]) = ", line)
        if heading:
            found.append((heading[1].strip(), []))
        if found:
            found[-1][1].extend(words(line))
    return found


def detokenize(tokens: list[str]) -> str:
    """Readable text from tokens: `<eos>` as a line break, WikiText's @-@ joins undone."""
    text = " ".join("\n" if t == EOS else t for t in tokens)
    text = re.sub(r" @([,.-])@ ", r"\1", text)
    return re.sub(r" \n ?", "\n", text)


def describe(split: str = "test") -> str:
    return f"WikiText-2 {split} split (word level, vocabulary of the train split, <unk> for unseen words)"
