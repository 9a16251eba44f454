"""Serve a GGUF model with llama.cpp's own server (llama-server, from the xllamacpp wheel, which
has no command line of its own) on 127.0.0.1 until SIGTERM.

Usage: python scripts/serve-model.py MODEL.gguf PORT [SLOTS]

Each slot has the model's trained context (8,192 tokens for SmolLM2), and requests in parallel
are served in parallel, as by a real deployment. DRY, a penalty on repeated sequences, cuts
short the loops a 135M model falls into (";;;;..." until max_tokens). Used by the demo, the
eval baseline and the end-to-end tests.
"""

import signal
import sys
import threading

import xllamacpp

CONTEXT_PER_SLOT = 8192

params = xllamacpp.CommonParams()
params.model.path, params.port = sys.argv[1], int(sys.argv[2])
slots = int(sys.argv[3]) if len(sys.argv) > 3 else 2
params.hostnames = ["127.0.0.1"]
params.model_alias = {"smollm2-135m"}
params.n_parallel = slots
params.n_ctx = CONTEXT_PER_SLOT * slots  # llama-server divides it among the slots
params.sampling.dry_multiplier = 0.8
params.ui = False
server = xllamacpp.Server(params)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
