#!/usr/bin/env python3
"""Train ctxbench's default retrieval model on the CPU, and export it as a GGUF `llama` file.

    train     continue a GGUF llama (default ../shared/models/stories3M.gguf) on a mix of
              retrieval examples in the formats of ctxbench's tasks and distillation from the
              base model on story text; seeded, resumable (--resume), a learning curve in CSV.
    export    write a checkpoint as GGUF: the base file's metadata and vocabulary, the trained
              weights (F32) and the provenance (recipe, steps, tokens, data hashes, seed) under
              ctxbench.training.*, which `ctxbench info` shows.
    roundtrip write a tiny random llama as GGUF plus the next-token log-probabilities PyTorch
              gives for it (tests/test_train_export.c checks ctxbench gives the same).

Text is tokenized by ctxbench's own tokenizer (build/libctxbench_tok.so, through ctypes). The
model is a plain llama: RMSNorm, SwiGLU, RoPE on adjacent pairs (2i, 2i+1) as GGUF llama files
store q and k, grouped key/value heads (head h reads kv head h / (heads / kv_heads)).

Held out, never trained on: the text ctxbench evaluates perplexity and first-sentence recall on
(tinystories = TinyStories-valid-first1000.txt); the pass keys ctxbench's passkey task draws
(seeds 0-9, 32 depth indices x 32 trials) and every key = 13 mod 97 (the curve's own held-out keys);
the last 5% of each training text (the curve's first-sentence prompts).
Runs on Debian's PyTorch 1.13 (CPU) and on PyTorch 2.x.
"""
import argparse
import csv
import ctypes
import hashlib
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_io  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("CTXBENCH_SHARED", os.path.join(ROOT, "..", "shared"))


# Bumped whenever the examples a (seed, step) gives change, so a checkpoint is never resumed
# on other data. 2: answers end with the full stop after the key or number. 3: distillation at
# every position that is not an answer, in every sequence.
DATA_FORMAT = 3


def die(msg):
    print(f"train_model: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- tokenizer (ctxbench's, via ctypes)

class Tokenizer:
    """ctxbench's tokenizer (harness/model/tokenizer.c) loaded from a GGUF's vocabulary."""

    def __init__(self, gguf_path, lib_path=None):
        lib_path = lib_path or os.path.join(ROOT, "build", "libctxbench_tok.so")
        if not os.path.exists(lib_path):
            r = subprocess.run(["make", "-C", ROOT, "build/libctxbench_tok.so"], stdout=sys.stderr)
            if r.returncode != 0:
                die(f"could not build {lib_path}")
        lib = ctypes.CDLL(lib_path)
        self.libc = ctypes.CDLL(None)
        self.libc.free.argtypes = [ctypes.c_void_p]
        lib.gguf_open.restype = ctypes.c_void_p
        lib.gguf_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.tokenizer_load.restype = ctypes.c_void_p
        lib.tokenizer_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.tokenizer_encode.restype = ctypes.c_int
        lib.tokenizer_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool,
                                         ctypes.POINTER(ctypes.POINTER(ctypes.c_int32)),
                                         ctypes.POINTER(ctypes.c_size_t)]
        lib.tokenizer_decode_token.restype = ctypes.c_size_t
        lib.tokenizer_decode_token.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t]
        for f in ("tokenizer_bos", "tokenizer_eos", "tokenizer_n_vocab"):
            getattr(lib, f).restype = ctypes.c_int32
            getattr(lib, f).argtypes = [ctypes.c_void_p]
        err = ctypes.create_string_buffer(512)
        self.g = lib.gguf_open(gguf_path.encode(), err, 512)
        if not self.g:
            die(err.value.decode())
        self.t = lib.tokenizer_load(self.g, err, 512)
        if not self.t:
            die(err.value.decode())
        self.lib = lib
        self.bos = lib.tokenizer_bos(self.t)
        self.n_vocab = lib.tokenizer_n_vocab(self.t)
        self.sha256 = sha256_file(gguf_path)

    def encode(self, text, bos=False):
        b = text.encode("utf-8")
        ids = ctypes.POINTER(ctypes.c_int32)()
        n = ctypes.c_size_t()
        if self.lib.tokenizer_encode(self.t, b, len(b), bos, ctypes.byref(ids), ctypes.byref(n)) != 0:
            raise RuntimeError("tokenization failed")
        out = ids[:n.value]
        self.libc.free(ctypes.cast(ids, ctypes.c_void_p))
        return out

    def decode(self, ids):
        buf = ctypes.create_string_buffer(256)
        out = b""
        for i in ids:
            n = self.lib.tokenizer_decode_token(self.t, i, buf, 256)
            out += buf.raw[:n]
        return out.decode("utf-8", "replace")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- the model

class Llama(torch.nn.Module):
    """A llama whose parameters carry their GGUF names ('.' written as '__')."""

    def __init__(self, cfg, weights=None, init_std=0.02, seed=0):
        super().__init__()
        self.cfg = cfg
        d, hd = cfg["dim"], cfg["dim"] // cfg["n_heads"]
        kvd = hd * cfg["n_kv_heads"]
        shapes = {"token_embd.weight": (cfg["vocab"], d), "output_norm.weight": (d,),
                  "output.weight": (cfg["vocab"], d)}
        for l in range(cfg["n_layers"]):
            shapes.update({f"blk.{l}.attn_norm.weight": (d,), f"blk.{l}.attn_q.weight": (d, d),
                           f"blk.{l}.attn_k.weight": (kvd, d), f"blk.{l}.attn_v.weight": (kvd, d),
                           f"blk.{l}.attn_output.weight": (d, d), f"blk.{l}.ffn_norm.weight": (d,),
                           f"blk.{l}.ffn_gate.weight": (cfg["ffn"], d), f"blk.{l}.ffn_up.weight": (cfg["ffn"], d),
                           f"blk.{l}.ffn_down.weight": (d, cfg["ffn"])})
        self.names = list(shapes)
        gen = torch.Generator().manual_seed(seed)
        for name, shape in shapes.items():
            if weights is not None:
                if name not in weights:
                    die(f"the base model has no tensor {name}")
                w = torch.from_numpy(np.array(weights[name], dtype=np.float32))
                if tuple(w.shape) != shape:
                    die(f"tensor {name} has shape {tuple(w.shape)}, expected {shape}")
            elif name.endswith("norm.weight"):
                w = 1.0 + 0.1 * torch.randn(shape, generator=gen)
            else:
                w = init_std * torch.randn(shape, generator=gen)
            self.register_parameter(name.replace(".", "__"), torch.nn.Parameter(w))
        inv = 1.0 / (cfg["rope_base"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        self.register_buffer("inv_freq", inv, persistent=False)

    def w(self, name):
        return getattr(self, name.replace(".", "__"))

    def rmsnorm(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg["eps"]) * self.w(name)

    def rope(self, x, pos):
        # x: (B, T, H, hd); rotate adjacent pairs (2i, 2i+1) by pos * inv_freq[i]
        ang = (pos.to(torch.float64)[:, None] * self.inv_freq[None, :])   # (T, hd/2)
        cos, sin = ang.cos().float()[None, :, None, :], ang.sin().float()[None, :, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    def forward(self, tokens):
        """tokens: (B, T) int64 -> logits (B, T, vocab)."""
        c = self.cfg
        B, T = tokens.shape
        H, KV = c["n_heads"], c["n_kv_heads"]
        hd = c["dim"] // H
        pos = torch.arange(T)
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = F.embedding(tokens, self.w("token_embd.weight"))
        for l in range(c["n_layers"]):
            p = f"blk.{l}."
            h = self.rmsnorm(x, p + "attn_norm.weight")
            q = (h @ self.w(p + "attn_q.weight").t()).view(B, T, H, hd)
            k = (h @ self.w(p + "attn_k.weight").t()).view(B, T, KV, hd)
            v = (h @ self.w(p + "attn_v.weight").t()).view(B, T, KV, hd)
            q, k = self.rope(q, pos) * (1.0 / math.sqrt(hd)), self.rope(k, pos)
            # grouped heads: the G = H / KV query heads of one kv head as G*T rows of one product
            G = H // KV
            q = q.view(B, T, KV, G, hd).permute(0, 2, 3, 1, 4).reshape(B * KV, G * T, hd)
            k = k.permute(0, 2, 3, 1).reshape(B * KV, hd, T)
            v = v.transpose(1, 2).reshape(B * KV, T, hd)
            att = torch.baddbmm(mask.repeat(G, 1).expand(B * KV, G * T, T), q, k).softmax(-1)
            o = (att @ v).view(B, KV, G, T, hd).permute(0, 3, 1, 2, 4).reshape(B, T, c["dim"])
            x = x + o @ self.w(p + "attn_output.weight").t()
            h = self.rmsnorm(x, p + "ffn_norm.weight")
            g = F.silu(h @ self.w(p + "ffn_gate.weight").t()) * (h @ self.w(p + "ffn_up.weight").t())
            x = x + g @ self.w(p + "ffn_down.weight").t()
        x = self.rmsnorm(x, "output_norm.weight")
        return x @ self.w("output.weight").t()

    def tensors(self):
        return [(n, self.w(n).detach().cpu().numpy()) for n in self.names]


def config_from_gguf(g):
    arch = g.get("general.architecture")
    if arch != "llama":
        die(f"the base model is '{arch}', not llama")
    d, H = g.get("llama.embedding_length"), g.get("llama.attention.head_count")
    cfg = {"dim": d, "n_layers": g.get("llama.block_count"), "n_heads": H,
           "n_kv_heads": g.get("llama.attention.head_count_kv", H), "ffn": g.get("llama.feed_forward_length"),
           "vocab": g.tensors["token_embd.weight"].shape[0], "eps": g.get("llama.attention.layer_norm_rms_epsilon"),
           "rope_base": g.get("llama.rope.freq_base", 10000.0), "ctx": g.get("llama.context_length")}
    rot = g.get("llama.rope.dimension_count", d // H)
    if rot != d // H:
        die(f"partial rotary ({rot} of {d // H} dims) is not supported")
    if "output.weight" not in g.tensors:
        g.tensors["output.weight"] = g.tensors["token_embd.weight"].copy()   # untie
    return cfg


# ---------------------------------------------------------------- data

def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read().replace("\r\n", "\n").lstrip("\ufeff")


def load_passkey_templates():
    """datasets/passkey/*.txt, parsed as tasks/passkey.c parses them."""
    out = {}
    d = os.path.join(ROOT, "datasets", "passkey")
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".txt"):
            continue
        t = {}
        for line in read_text(os.path.join(d, fn)).split("\n"):
            line = line.rstrip(" \t")
            if not line or line.startswith("#"):
                continue
            k, v = line.split("=", 1)
            v = v[1:] if v.startswith(" ") else v
            t[k.strip()] = re.sub(r"\\(.)", lambda m: {"n": "\n", "s": " ", "\\": "\\"}[m.group(1)], v)
        t["sentences"] = split_filler(t["filler"])
        out[fn[:-4]] = t
    return out


def split_filler(filler):
    return [s for s in re.split(r"(?<=[.!?]) +", filler) if s]


def put_filler(t, n):
    out = []
    for i in range(n):
        if i > 0:
            out.append(t["filler_join"] if i % len(t["sentences"]) == 0 else " ")
        out.append(t["sentences"][i % len(t["sentences"])])
    return "".join(out)


def build_passkey(t, a, after, key):
    """tasks/passkey.c build_prompt: instruction, filler(a), key line, filler(after), question."""
    j = t["join"]
    return (t["instruction"] + j + put_filler(t, a) + j + t["key_line"].replace("{key}", key) + j +
            put_filler(t, after) + j + t["question"])


def splitmix(state):
    state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return state, z ^ (z >> 31)


def ctxbench_eval_keys(seeds=range(10), depths=32, trials=32, digits=5):
    """The keys ctxbench's passkey task draws (tasks/passkey.c: key from seed, depth index, trial)."""
    lo = 10 ** (digits - 1)
    keys = set()
    for seed in seeds:
        for di in range(depths):
            for tr in range(trials):
                st = (seed * 0x9E3779B97F4A7C15 + di * 1000003 + tr) & 0xFFFFFFFFFFFFFFFF
                _, z = splitmix(st)
                keys.add(lo + z % (lo * 9))
    return keys


SENT_END = re.compile(r"[.!?][\"')\]]*(?=\s)")
ABBR = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "rev", "gen", "col", "capt", "lt", "sgt", "hon"}


def first_sentence(text):
    """The first sentence, as scoring.c cuts it (closely enough for training targets)."""
    para = text.split("\n\n", 1)[0]
    for m in SENT_END.finditer(para):
        w = re.findall(r"[A-Za-z]+$", para[:m.start()])
        if w and (w[0].lower() in ABBR or (len(w[0]) == 1 and w[0].isupper())):
            continue
        return para[:m.end()]
    return para


class Corpus:
    """Paragraph-structured text for first-sentence examples and for distillation windows."""

    def __init__(self, tok, paths, holdout=0.05):
        self.files, texts = [], []
        for p in paths:
            raw = read_text(p)
            # a Project Gutenberg book: only the book, not the licence around it
            m = re.search(r"\*\*\* ?START OF [^\n]*\n(.*?)\*\*\* ?END OF ", raw, re.S)
            if m:
                raw = m.group(1)
            if p.endswith("stories_sampled.txt"):
                # its stories are separated by blank lines and their paragraphs by single newlines;
                # the evaluation text (TinyStories valid) has every paragraph on its own, blank-line separated
                raw = re.sub(r"\n(?!\n)", "\n\n", raw)
            raw = re.sub(r"\n{3,}", "\n\n", raw).strip()
            self.files.append({"path": os.path.relpath(p, SHARED), "sha256": sha256_file(p)})
            texts.append(raw)
        self.train, self.held = [], []
        for t in texts:
            cut = t.rfind("\n\n", 0, int(len(t) * (1 - holdout)))
            self.train.append(t[:cut])
            self.held.append(t[cut + 2:])
        self.stream = []   # token stream of the training text, for distillation windows
        for t in self.train:
            for i in range(0, len(t), 20000):
                self.stream.extend(tok.encode(t[i:i + 20000]))
        self.stream = np.array(self.stream, dtype=np.int64)

    def starts(self, text):
        """Paragraph starts whose first sentence has 4..60 words."""
        out = [0] + [m.end() for m in re.finditer(r"\n\n", text)]
        return [s for s in out if 4 <= len(first_sentence(text[s:s + 2000]).split()) <= 60]


class Mix:
    """Training and evaluation examples. Each example: ids (list), a list of (start, end) answer
    spans scored by cross-entropy, and a kind."""

    def __init__(self, tok, corpus, cfg, args):
        self.tok, self.corpus, self.L = tok, corpus, cfg["ctx"]
        self.templates = load_passkey_templates()
        self.fs_tpl = read_text(os.path.join(ROOT, "datasets", "first_sentence", "prompt.txt"))
        self.fs_tpl = "\n".join(l for l in self.fs_tpl.split("\n") if not l.startswith("#"))
        if self.fs_tpl.endswith("\n"):
            self.fs_tpl = self.fs_tpl[:-1]
        self.fs_suffix = self.fs_tpl.split("{text}", 1)[1]
        self.fs_suffix_ids = tok.encode(self.fs_suffix)
        self.eval_keys = ctxbench_eval_keys()
        self.train_starts = [corpus.starts(t) for t in corpus.train]
        self.held_starts = [corpus.starts(t) for t in corpus.held]
        # sentences for the other filler styles
        sents = []
        for t in corpus.train:
            sents += [s for s in re.split(r"(?<=[.!?])\s+", t[:200000]) if 3 <= len(s.split()) <= 14 and "\n" not in s]
        self.sentences = sents
        self.names = sorted(set(re.findall(r"\bnamed ([A-Z][a-z]+)", " ".join(corpus.train)[:2000000]))) or ["Tom"]
        self.full_length_share = args.full_length_share
        self.first_text_share = args.first_text_share

    # --- pass key
    def key(self, rng, held):
        while True:
            k = rng.randint(10000, 99999)
            if held == (k % 97 == 13) and k not in self.eval_keys:
                return str(k)

    def passkey_template(self, rng):
        r = rng.random()
        names = sorted(self.templates)
        if r < 0.6:
            return self.templates[names[rng.randrange(len(names))]]
        base = dict(self.templates[names[rng.randrange(len(names))]])
        if r < 0.8:   # a different short filler, repeated
            base["sentences"] = [rng.choice(self.sentences) for _ in range(rng.randint(2, 6))]
        else:         # story sentences, not repeated (noise that looks like text)
            start = rng.randrange(max(1, len(self.sentences) - 400))
            base["sentences"] = self.sentences[start:start + 400]
        base["filler_join"] = rng.choice([" ", "\n"])
        return base

    def passkey(self, rng, held=False, length=None, depth=None, template=None):
        t = template or self.passkey_template(rng)
        key = self.key(rng, held)
        L = length or (self.L if rng.random() < self.full_length_share else rng.randint(64, self.L))
        P = L - (len(key) + 4)
        q_ids = self.tok.encode(t["question"])
        sep = "" if t["question"].endswith(" ") else " "
        # the key and the full stop after it: the task's greedy answer ends when its run of digits
        # does, so the model must learn to stop after the key as well as to say it
        qa = self.tok.encode(t["question"] + sep + key + ".")
        answer = qa[len(q_ids):]
        # the most filler sentences that fit, as the task sizes them
        n0 = len(self.tok.encode(build_passkey(t, 0, 0, key), True))
        n64 = len(self.tok.encode(build_passkey(t, 32, 32, key), True))
        per = max((n64 - n0) / 64.0, 1.0)
        N = max(0, int((P - n0) / per))
        while N > 0 and len(self.tok.encode(build_passkey(t, N // 2, N - N // 2, key), True)) > P:
            N -= 1
        depth = rng.random() if depth is None else depth
        a = min(N, max(0, round(depth * N)))
        ids = self.tok.encode(build_passkey(t, a, N - a, key), True)
        while len(ids) > P and N > 0:
            N -= 1
            a = min(a, N)
            ids = self.tok.encode(build_passkey(t, a, N - a, key), True)
        return {"ids": ids + answer, "spans": [(len(ids), len(ids) + len(answer))], "kind": "passkey", "key": key}

    # --- first sentence
    def first_sentence(self, rng, held=False, length=None, story_only=False):
        texts, starts = (self.corpus.held, self.held_starts) if held else (self.corpus.train, self.train_starts)
        # the first text (TinyStories-like, as the evaluation text) half the time, else another
        share = 1.0 if story_only else self.first_text_share
        fi = 0 if rng.random() < share or len(texts) == 1 else rng.randrange(1, len(texts))
        while not starts[fi]:
            fi = rng.randrange(len(texts))
        text = texts[fi]
        s = rng.choice(starts[fi])
        doc = text[s:s + 8 * self.L]
        ref = " ".join(first_sentence(doc).split())
        tgt = self.tok.encode(self.fs_suffix + " " + ref)
        ns = len(self.fs_suffix_ids)
        if tgt[:ns] != self.fs_suffix_ids:   # the suffix's last token merged with the answer: no clean split
            return None
        answer = tgt[ns:]
        L = length or (self.L if rng.random() < self.full_length_share else rng.randint(96, self.L))
        limit = L - max(48, len(answer))
        build = lambda n: self.fs_tpl.replace("{text}", doc[:n].rstrip())
        lo, hi = len(ref), len(doc)
        if len(self.tok.encode(build(lo), True)) > limit:
            return None
        while hi - lo > 1:   # the longest text that fits
            mid = (lo + hi) // 2
            if len(self.tok.encode(build(mid), True)) <= limit:
                lo = mid
            else:
                hi = mid
        cut = lo
        while cut > len(ref) and not doc[cut].isspace():
            cut -= 1
        ids = self.tok.encode(build(cut), True)
        return {"ids": ids + answer, "spans": [(len(ids), len(ids) + len(answer))], "kind": "first_sentence",
                "ref": ref}

    # --- key-value look-up
    def kv_lookup(self, rng):
        n = rng.randint(3, 40)
        names = rng.sample(self.names, min(n, len(self.names)))
        vals = {nm: str(rng.randint(100, 9999)) for nm in names}
        target = rng.choice(names)
        body = "\n".join(f"{nm}'s number is {vals[nm]}." for nm in names)
        prompt = f"Here are some names and their numbers.\n{body}\nWhat is {target}'s number? {target}'s number is"
        ids = self.tok.encode(prompt, True)
        qa = self.tok.encode(prompt + " " + vals[target] + ".", True)
        if len(qa) > self.L or qa[:len(ids)] != ids:
            return None
        return {"ids": qa, "spans": [(len(ids), len(qa))], "kind": "kv"}

    # --- distillation windows of story text
    def lm_window(self, rng):
        s = self.corpus.stream
        i = rng.randrange(len(s) - self.L)
        return {"ids": [self.tok.bos] + s[i:i + self.L - 1].tolist(), "spans": [], "kind": "lm"}

    def batch(self, rng, sizes):
        out = []
        for kind, n in sizes.items():
            made = 0
            while made < n:
                ex = {"lm": self.lm_window, "passkey": self.passkey, "first_sentence": self.first_sentence,
                      "kv": self.kv_lookup}[kind](rng)
                if ex is not None and len(ex["ids"]) <= self.L:
                    out.append(ex)
                    made += 1
        return out


def pad(batch):
    B = len(batch)
    T = max(len(e["ids"]) for e in batch)
    x = torch.zeros((B, T), dtype=torch.long)
    for i, e in enumerate(batch):
        x[i, :len(e["ids"])] = torch.tensor(e["ids"])
    return x


def batch_loss(model, teacher, batch, args):
    """Cross-entropy of the answer tokens, plus the KL divergence to the frozen base model at
    every other position of every sequence: the model should stay the base model everywhere
    except where it answers."""
    x = pad(batch)
    logp = model(x).float().log_softmax(-1)
    losses = {}
    total = torch.zeros(())
    if teacher is not None and args.distill_weight > 0:
        keep = torch.zeros(x.shape, dtype=torch.bool)   # positions whose next-token prediction is distilled
        for i, e in enumerate(batch):
            keep[i, :len(e["ids"]) - 1] = True
            for a, b in e["spans"]:
                keep[i, a - 1:b - 1] = False
        with torch.no_grad():
            t_logp = teacher(x).float().log_softmax(-1)
        kl = (t_logp.exp() * (t_logp - logp)).sum(-1)[keep].mean()
        losses["kl"] = kl.item()
        total = total + args.distill_weight * kl
    ce_terms = []
    for i, e in enumerate(batch):
        for a, b in e["spans"]:
            tgt = torch.tensor(e["ids"][a:b])
            ce_terms.append(-logp[i, a - 1:b - 1].gather(-1, tgt[:, None]).mean())
    if ce_terms:
        ce = torch.stack(ce_terms).mean()
        losses["ce"] = ce.item()
        total = total + ce
    return total, losses


# ---------------------------------------------------------------- evaluation (the learning curve)

@torch.no_grad()
def answer_match(model, examples):
    """Share of examples whose every answer token is the argmax (teacher forced): for a key, the
    same as greedy decoding reproducing it."""
    ok, tok_ok, tok_n = 0, 0, 0
    for i in range(0, len(examples), 8):
        chunk = examples[i:i + 8]
        x = pad(chunk)
        pred = model(x).argmax(-1)
        for j, e in enumerate(chunk):
            a, b = e["spans"][0]
            hit = (pred[j, a - 1:b - 1] == torch.tensor(e["ids"][a:b]))
            ok += bool(hit.all())
            tok_ok += int(hit.sum())
            tok_n += b - a
    return ok / len(examples), tok_ok / max(tok_n, 1)


@torch.no_grad()
def lm_loss(model, windows):
    x = torch.tensor(windows)
    logp = model(x).float().log_softmax(-1)
    return -logp[:, :-1].gather(-1, x[:, 1:, None]).mean().item()


def make_eval_sets(mix, tok, cfg, seed):
    rng = random.Random(seed * 7919 + 1)
    yarn = mix.templates.get("yarn") or next(iter(mix.templates.values()))
    pk = [mix.passkey(rng, held=True, length=cfg["ctx"], depth=d / 9, template=yarn) for d in range(10) for _ in range(2)]
    fs = []
    while len(fs) < 16:   # from the story text's held-out slice
        e = mix.first_sentence(rng, held=True, length=cfg["ctx"], story_only=True)
        if e:
            fs.append(e)
    # the curve's perplexity text: TinyStories valid, which is evaluated and never trained on
    valid = tok.encode(read_text(os.path.join(SHARED, "datasets", "tinystories", "TinyStories-valid-first1000.txt"))[:60000])
    L = cfg["ctx"]
    windows = [[tok.bos] + valid[i * (L - 1):(i + 1) * (L - 1)] for i in range(4) if (i + 1) * (L - 1) <= len(valid)]
    return pk, fs, windows


# ---------------------------------------------------------------- train

def recipe(args):
    keys = ["seed", "lr", "min_lr", "warmup", "steps", "batch_lm", "batch_passkey", "batch_first_sentence",
            "batch_kv", "distill_weight", "train_only", "weight_decay", "full_length_share", "first_text_share", "holdout"]
    r = {k: getattr(args, k) for k in keys}
    r["data_format"] = DATA_FORMAT
    return r


def cmd_train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads or os.cpu_count())
    os.makedirs(args.out_dir, exist_ok=True)
    ckpt_path = os.path.join(args.out_dir, "checkpoint.pt")
    base = gguf_io.read(args.base)
    cfg = config_from_gguf(base)
    tok = Tokenizer(args.base)
    texts = [os.path.join(SHARED, "datasets", p) for p in args.text]
    corpus = Corpus(tok, texts, args.holdout)
    mix = Mix(tok, corpus, cfg, args)
    model = Llama(cfg, base.tensors)
    teacher = Llama(cfg, base.tensors) if args.distill_weight > 0 else None
    if teacher is not None:
        teacher.requires_grad_(False)
    kinds = None if args.train_only == "all" else args.train_only.split(",")
    for name in model.names:   # e.g. attention only: the language model's FFN and embeddings stay the base's
        if kinds is not None and name.split(".")[-2] not in kinds:
            model.w(name).requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    if not trained:
        die(f"--train-only {args.train_only}: no tensor of the model is of these kinds")
    opt = torch.optim.AdamW(trained, lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    state = {"step": 0, "tokens": 0, "seconds": 0.0, "curve": []}
    if args.resume and os.path.exists(ckpt_path):
        ck = load_checkpoint(ckpt_path)
        if ck["recipe"] != recipe(args):
            die(f"{ckpt_path} was made with another recipe: {ck['recipe']}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        print(f"resumed at step {state['step']} ({state['tokens']} tokens)", file=sys.stderr)
    elif os.path.exists(ckpt_path) and not args.resume:
        die(f"{ckpt_path} exists: pass --resume to continue it, or choose another --out-dir")
    pk_eval, fs_eval, valid_windows = make_eval_sets(mix, tok, cfg, args.seed)
    sizes = {"lm": args.batch_lm, "passkey": args.batch_passkey, "first_sentence": args.batch_first_sentence,
             "kv": args.batch_kv}
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    curve_path = os.path.join(args.out_dir, "curve.csv")

    def save():
        meta = {"recipe": recipe(args), "model": model.state_dict(), "opt": opt.state_dict(), "state": state,
                "cfg": cfg, "base": args.base, "base_sha256": tok.sha256, "data": corpus.files,
                "tokenizer_sha256": tok.sha256, "torch": torch.__version__}
        torch.save(meta, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)
        with open(curve_path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "tokens", "seconds", "train_kl", "train_ce", "valid_nll", "passkey_exact",
                        "passkey_token_acc", "first_sentence_exact", "first_sentence_token_acc"])
            w.writerows(state["curve"])

    def evaluate(kl, ce):
        model.eval()
        pk_acc, pk_tok = answer_match(model, pk_eval)
        fs_acc, fs_tok = answer_match(model, fs_eval)
        vl = lm_loss(model, valid_windows)
        model.train()
        row = [state["step"], state["tokens"], round(state["seconds"], 1), kl, ce, round(vl, 4), pk_acc,
               round(pk_tok, 4), fs_acc, round(fs_tok, 4)]
        state["curve"].append(row)
        print(f"step {state['step']:5d} tokens {state['tokens'] / 1e6:6.2f}M {state['seconds'] / 60:5.1f} min  "
              f"kl {kl:.4f} ce {ce:.3f}  valid nll {vl:.4f}  passkey {pk_acc:.2f} ({pk_tok:.2f})  "
              f"first-sentence {fs_acc:.2f} ({fs_tok:.2f})", flush=True)

    if state["step"] == 0 and not state["curve"]:
        evaluate(float("nan"), float("nan"))
    t_end = time.time() + args.minutes * 60 if args.minutes else None
    kl_acc, ce_acc, n_acc = 0.0, 0.0, 0
    while state["step"] < args.steps and not stop["now"] and (t_end is None or time.time() < t_end):
        t0 = time.time()
        step = state["step"]
        # the data of a step depends on (seed, step) only, so a resumed run sees what an unbroken one would
        rng = random.Random(args.seed * 1000003 + step)
        batch = mix.batch(rng, sizes)
        lr = lr_at(args, step)
        for gr in opt.param_groups:
            gr["lr"] = lr
        loss, parts = batch_loss(model, teacher, batch, args)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        state["step"] += 1
        state["tokens"] += sum(len(e["ids"]) for e in batch)
        state["seconds"] += time.time() - t0
        kl_acc += parts.get("kl", 0.0)
        ce_acc += parts.get("ce", 0.0)
        n_acc += 1
        if state["step"] % args.eval_every == 0 or state["step"] == args.steps:
            evaluate(round(kl_acc / n_acc, 4), round(ce_acc / n_acc, 4))
            kl_acc, ce_acc, n_acc = 0.0, 0.0, 0
            save()
    save()
    print(f"checkpoint at step {state['step']}: {ckpt_path}", file=sys.stderr)
    if state["step"] >= args.steps and args.export:
        export(ckpt_path, args.export, args.name)


def load_checkpoint(path):
    # our own file: PyTorch 2.6+ loads only tensors by default, 1.13 has no such limit
    try:
        return torch.load(path, weights_only=False)
    except TypeError:
        return torch.load(path)


def lr_at(args, step):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * p))


# ---------------------------------------------------------------- export

def blended_state(ck, base_tensors, blend, mix=()):
    """WiSE-FT (Wortsman et al. 2022): base + blend x (trained - base), weight by weight; with
    mix = [(checkpoint, weight), ...] the other runs' task vectors are added the same way
    (a model soup of runs that started from the same base: base + sum w_i x (run_i - base))."""
    if blend == 1.0 and not mix:
        return ck["model"]
    out = {}
    for k, v in ck["model"].items():
        b = torch.from_numpy(np.array(base_tensors[k.replace("__", ".")], dtype=np.float32))
        t = b + blend * (v - b)
        for other, w in mix:
            t = t + w * (other["model"][k] - b)
        out[k] = t
    return out


def load_mix(ck, specs):
    """--mix CHECKPOINT:WEIGHT arguments as [(checkpoint, weight)]; every run must share the base
    model and shape of the first, or the sum of their differences means nothing."""
    mix = []
    for spec in specs or []:
        path, sep, w = spec.rpartition(":")
        try:
            weight = float(w)
        except ValueError:
            weight = None
        if not sep or not path or weight is None or not math.isfinite(weight):
            raise SystemExit(f"train_model.py: --mix wants CHECKPOINT:WEIGHT, got {spec!r}")
        other = load_checkpoint(path)
        if other["base_sha256"] != ck["base_sha256"] or other["cfg"] != ck["cfg"]:
            raise SystemExit(f"train_model.py: --mix {path}: trained from another base model or shape")
        mix.append((other, weight, path))
    return mix


def require_finished(ck, path):
    if ck["state"]["step"] < ck["recipe"]["steps"]:
        die(f"{path} is at step {ck['state']['step']} of {ck['recipe']['steps']}: "
            f"finish it with train --resume (same options) before exporting")


def export(ckpt_path, out, name, blend=1.0, mix_specs=()):
    ck = load_checkpoint(ckpt_path)
    require_finished(ck, ckpt_path)
    mix = load_mix(ck, mix_specs)
    for c, _, p in mix:
        require_finished(c, p)
    base = gguf_io.read(ck["base"])
    model = Llama(ck["cfg"], base.tensors)
    model.load_state_dict(blended_state(ck, base.tensors, blend, [(c, w) for c, w, _ in mix]))
    kv = dict(base.kv)
    S = gguf_io.STRING
    kv["general.name"] = (S, name)
    last = ck["state"]["curve"][-1] if ck["state"]["curve"] else []
    prov = {
        "ctxbench.training.recipe": json.dumps(ck["recipe"], sort_keys=True),
        "ctxbench.training.base_model": f"{os.path.basename(ck['base'])} sha256:{ck['base_sha256']}",
        "ctxbench.training.data": " ".join(f"{d['path']}:sha256:{d['sha256']}" for d in ck["data"]),
        "ctxbench.training.tokenizer_sha256": ck["tokenizer_sha256"],
        "ctxbench.training.framework": f"PyTorch {ck['torch']} (CPU)",
        "ctxbench.training.script": "scripts/train_model.py",
        "ctxbench.training.final_eval": json.dumps(dict(zip(
            ["step", "tokens", "seconds", "train_kl", "train_ce", "valid_nll", "passkey_exact", "passkey_token_acc",
             "first_sentence_exact", "first_sentence_token_acc"], last))),
    }
    for k, v in prov.items():
        kv[k] = (S, v)
    kv["ctxbench.training.steps"] = (gguf_io.U64, ck["state"]["step"])
    kv["ctxbench.training.tokens"] = (gguf_io.U64, ck["state"]["tokens"])
    kv["ctxbench.training.seed"] = (gguf_io.U64, ck["recipe"]["seed"])
    kv["ctxbench.training.blend"] = (gguf_io.F32, float(blend))
    if mix:
        # each added run: its recipe, length and weight (the first run's are the keys above)
        kv["ctxbench.training.mix"] = (S, json.dumps([{
            "weight": w, "checkpoint": os.path.basename(os.path.dirname(os.path.abspath(p))) + "/" + os.path.basename(p),
            "recipe": c["recipe"], "steps": c["state"]["step"], "tokens": c["state"]["tokens"],
            "final_eval": dict(zip(["step", "tokens", "seconds", "train_kl", "train_ce", "valid_nll", "passkey_exact",
                                    "passkey_token_acc", "first_sentence_exact", "first_sentence_token_acc"],
                                   c["state"]["curve"][-1] if c["state"]["curve"] else []))}
            for c, w, p in mix], sort_keys=True))
        kv["ctxbench.training.tokens_all_runs"] = (gguf_io.U64, ck["state"]["tokens"] + sum(c["state"]["tokens"] for c, _, _ in mix))
    kv.pop("general.alignment", None)
    order = [n for n in base.tensors if n in model.names] + [n for n in model.names if n not in base.tensors]
    tensors = dict(model.tensors())
    tmp = out + ".tmp"
    gguf_io.write(tmp, kv, [(n, tensors[n]) for n in order])
    os.replace(tmp, out)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


def cmd_export(args):
    export(args.checkpoint, args.out, args.name, args.blend, args.mix)


def cmd_blends(args):
    """The learning curve's held-out measures for several blends of a checkpoint with its base."""
    torch.set_num_threads(args.threads or os.cpu_count())
    ck = load_checkpoint(args.checkpoint)
    base = gguf_io.read(ck["base"])
    cfg = ck["cfg"]
    tok = Tokenizer(ck["base"])
    r = ck["recipe"]
    texts = [os.path.join(SHARED, d["path"]) for d in ck["data"]]
    mix = Mix(tok, Corpus(tok, texts, r["holdout"]), cfg, argparse.Namespace(**r))
    pk, fs, windows = make_eval_sets(mix, tok, cfg, r["seed"])
    model = Llama(cfg, base.tensors)
    model.eval()
    print("blend,valid_nll,passkey_exact,passkey_token_acc,first_sentence_exact,first_sentence_token_acc")
    for b in args.blend:
        model.load_state_dict(blended_state(ck, base.tensors, b))
        pa, pt = answer_match(model, pk)
        fa, ft = answer_match(model, fs)
        print(f"{b},{lm_loss(model, windows):.4f},{pa:.3f},{pt:.3f},{fa:.3f},{ft:.3f}", flush=True)


# ---------------------------------------------------------------- round trip (for the C test)

def cmd_roundtrip(args):
    """A tiny random llama with the stories260K vocabulary, exported as GGUF, and the log-
    probabilities PyTorch gives for every next token of a fixed sequence (float64, T x vocab)."""
    torch.set_num_threads(1)
    vocab_src = gguf_io.read(args.vocab)
    cfg = {"dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "ffn": 96,
           "vocab": vocab_src.tensors["token_embd.weight"].shape[0], "eps": 1e-5, "rope_base": 10000.0, "ctx": 256}
    model = Llama(cfg, None, init_std=0.15, seed=args.seed)
    kv = {k: v for k, v in vocab_src.kv.items() if k.startswith("tokenizer.")}
    U32, F32, S = gguf_io.U32, gguf_io.F32, gguf_io.STRING
    head = {"general.architecture": (S, "llama"), "general.name": (S, "train_model roundtrip"),
            "llama.context_length": (U32, cfg["ctx"]), "llama.embedding_length": (U32, cfg["dim"]),
            "llama.block_count": (U32, cfg["n_layers"]), "llama.feed_forward_length": (U32, cfg["ffn"]),
            "llama.rope.dimension_count": (U32, cfg["dim"] // cfg["n_heads"]),
            "llama.attention.head_count": (U32, cfg["n_heads"]),
            "llama.attention.head_count_kv": (U32, cfg["n_kv_heads"]),
            "llama.attention.layer_norm_rms_epsilon": (F32, cfg["eps"]),
            "llama.rope.freq_base": (F32, cfg["rope_base"])}
    head.update(kv)
    os.makedirs(args.out_dir, exist_ok=True)
    gguf_io.write(os.path.join(args.out_dir, "roundtrip.gguf"), head, model.tensors())
    T = args.tokens
    ids = [(i * 37 + 11) % cfg["vocab"] for i in range(T)]
    with torch.no_grad():
        lp = model(torch.tensor([ids])).double().log_softmax(-1)[0]
    with open(os.path.join(args.out_dir, "roundtrip.ids"), "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")
    lp.numpy().astype("<f8").tofile(os.path.join(args.out_dir, "roundtrip.logprobs"))
    print(f"wrote {args.out_dir}/roundtrip.gguf, .ids, .logprobs ({T} x {cfg['vocab']})", file=sys.stderr)


# ---------------------------------------------------------------- command line

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="continue a GGUF llama on the retrieval mix (resumable)")
    t.add_argument("--base", default=os.path.join(SHARED, "models", "stories3M.gguf"))
    t.add_argument("--out-dir", default=os.path.join(ROOT, "build", "train"))
    t.add_argument("--export", default=None, help="GGUF to write when the last step is done")
    t.add_argument("--name", default="ctxbench-retrieval-3M")
    t.add_argument("--text", nargs="+", default=["tinystories/stories_sampled.txt", "children/alice_in_wonderland.txt",
                                                 "children/grimms_fairy_tales.txt",
                                                 "children/wonderful_wizard_of_oz.txt"],
                   help="training text under ../shared/datasets (never TinyStories valid: it is evaluated)")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--steps", type=int, default=300)
    t.add_argument("--minutes", type=float, default=0, help="stop (with a checkpoint) after this long; --resume goes on")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--lr", type=float, default=1.5e-4)
    t.add_argument("--min-lr", type=float, default=1.5e-5)
    t.add_argument("--warmup", type=int, default=20)
    t.add_argument("--train-only", default="all",
                   help="comma-separated tensor kinds to train (attn_q,attn_k,attn_v,attn_output,...); the rest stay frozen")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--batch-lm", type=int, default=1, help="windows of story text per step (distillation only)")
    t.add_argument("--batch-passkey", type=int, default=2)
    t.add_argument("--batch-first-sentence", type=int, default=4)
    t.add_argument("--batch-kv", type=int, default=1)
    t.add_argument("--distill-weight", type=float, default=1.0,
                   help="weight of the KL divergence to the base model (every position but the answers)")
    t.add_argument("--full-length-share", type=float, default=0.5,
                   help="share of retrieval examples that fill the trained length")
    t.add_argument("--first-text-share", type=float, default=0.6,
                   help="share of first-sentence examples drawn from the first --text (story text)")
    t.add_argument("--holdout", type=float, default=0.05)
    t.add_argument("--eval-every", type=int, default=50)
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("export", help="write a checkpoint as GGUF with its provenance")
    e.add_argument("checkpoint")
    e.add_argument("out")
    e.add_argument("--name", default="ctxbench-retrieval-3M")
    e.add_argument("--blend", type=float, default=1.0,
                   help="write base + BLEND x (trained - base) (WiSE-FT weight-space ensembling); 1 = as trained")
    e.add_argument("--mix", action="append", metavar="CHECKPOINT:WEIGHT",
                   help="add WEIGHT x (that run - base) too (a soup of runs from the same base; repeatable)")
    e.set_defaults(func=cmd_export)
    b = sub.add_parser("blends", help="held-out measures of base + b x (trained - base) for several b")
    b.add_argument("checkpoint")
    b.add_argument("blend", type=float, nargs="+")
    b.add_argument("--threads", type=int, default=0)
    b.set_defaults(func=cmd_blends)
    r = sub.add_parser("roundtrip", help="tiny random model + PyTorch log-probs, for the exporter test")
    r.add_argument("--vocab", default=os.path.join(SHARED, "models", "stories260K.gguf"))
    r.add_argument("--out-dir", required=True)
    r.add_argument("--seed", type=int, default=3)
    r.add_argument("--tokens", type=int, default=48)
    r.set_defaults(func=cmd_roundtrip)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
