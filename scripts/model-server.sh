# Sourced by scripts/demo and scripts/eval-baseline: serve the embedded model with llama.cpp's own
# server (llama-server, from the xllamacpp wheel) on 127.0.0.1 until the calling script exits.
# start_model MODEL.gguf LOG sets $port and $server_pid and returns once the server answers.

start_model() {
    local model=$1 log=$2
    port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    python "$(dirname "${BASH_SOURCE[0]}")/serve-model.py" "$model" "$port" 2 >"$log" 2>&1 &
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
