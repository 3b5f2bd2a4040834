# shellcheck shell=bash
# Ferry's local development environment, as shell functions (source this file):
# a real etcd + kube-apiserver from .cache/bin/ (started the way tests/common/mod.rs and
# controller-runtime's envtest do it) and the AWS emulator (moto + Ferry's DataSync extension),
# all on free loopback ports, with their files in a scratch folder under target/ferry-demo/.
#
#   source hack/devenv.sh
#   devenv_start                  # sets DEVENV_DIR, DEVENV_KUBECONFIG, DEVENV_API_URL, DEVENV_AWS_URL
#   devenv_spawn NAME LOG -- CMD  # starts another process that devenv_stop will stop
#   devenv_stop                   # stops everything (also runs by itself on EXIT, INT and TERM)
#
# Needs `make testenv` (etcd, kube-apiserver, kubectl in .cache/bin; the emulator's venv in
# .cache/venv) and openssl. DEVENV_KEEP=1 keeps the scratch folder after a successful run;
# after a failure it is always kept, for its logs.

DEVENV_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVENV_BIN="$DEVENV_REPO/.cache/bin"
DEVENV_PYTHON="$DEVENV_REPO/.cache/venv/bin/python"
DEVENV_PHASE_SECONDS="${DEVENV_PHASE_SECONDS:-1.5}"
DEVENV_PIDS=()
DEVENV_NAMES=()
DEVENV_DIR=""

devenv_die() {
    echo "error: $*" >&2
    exit 1
}

# Prints N distinct free loopback ports, one a line (all held open together while picked).
devenv_free_ports() {
    "$DEVENV_PYTHON" - "$1" <<'EOF'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print("\n".join(str(s.getsockname()[1]) for s in held))
EOF
}

# devenv_spawn NAME LOG [--stdout FILE] -- CMD...: starts CMD in the background, stderr (and
# stdout, unless --stdout) into LOG. The process gets SIGKILL if this shell dies without
# cleaning up (setpriv --pdeathsig, when available); devenv_stop stops it in any case.
# Sets DEVENV_LAST_PID. Do not call it inside $(...): the process would belong to the subshell.
devenv_spawn() {
    local name="$1" log="$2" out=""
    shift 2
    if [[ "${1:-}" == "--stdout" ]]; then
        out="$2"
        shift 2
    fi
    [[ "${1:-}" == "--" ]] && shift
    local wrap=()
    if [[ -n "${DEVENV_SETPRIV:-}" ]]; then
        wrap=(setpriv --pdeathsig KILL --)
    fi
    if [[ -n "$out" ]]; then
        "${wrap[@]}" "$@" </dev/null >"$out" 2>"$log" &
    else
        "${wrap[@]}" "$@" </dev/null >"$log" 2>&1 &
    fi
    DEVENV_LAST_PID=$!
    DEVENV_PIDS+=("$DEVENV_LAST_PID")
    DEVENV_NAMES+=("$name")
}

# devenv_wait WHAT SECONDS PID LOG CMD...: runs CMD every 0.2 s until it succeeds; fails with
# a pointer to LOG when PID exits or the deadline passes.
devenv_wait() {
    local what="$1" seconds="$2" pid="$3" log="$4"
    shift 4
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ! devenv__running "$pid"; then
            echo "error: $what: the process exited; the last lines of $log:" >&2
            tail -n 15 "$log" >&2 || true
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "error: timed out after ${seconds}s waiting for $what; see $log" >&2
            tail -n 5 "$log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
}

# Succeeds when an HTTP GET of $1 answers 200 with a body containing $2.
devenv_http_has() {
    "$DEVENV_PYTHON" - "$1" "$2" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if sys.argv[2] in r.read().decode() else 1)
except Exception:
    sys.exit(1)
EOF
}

devenv_kubectl() {
    "$DEVENV_BIN/kubectl" --kubeconfig "$DEVENV_KUBECONFIG" "$@"
}

# The PKI, as envtest makes it: a CA, the API server's serving certificate (127.0.0.1,
# localhost and the in-cluster names), an admin client certificate in system:masters, and the
# service-account signing key pair. EC P-256 keys, valid for two days.
devenv_pki() {
    local d="$1" rc restore_errexit=""
    # The steps run in a subshell with errexit; the subshell must not be part of a condition
    # (that would switch errexit off inside it), so the status is read with errexit off here.
    [[ $- == *e* ]] && restore_errexit=1
    set +e
    (
        set -e
        cd "$d"
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
        openssl req -x509 -new -key ca.key -days 2 -subj "/CN=ferry-demo-ca" -out ca.crt \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
        cat >serving.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
EOF
        cat >client.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
        local name subj
        for name in apiserver admin; do
            if [[ "$name" == apiserver ]]; then subj="/CN=kube-apiserver"; else subj="/O=system:masters/CN=ferry-demo-admin"; fi
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key"
            openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
            openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
                -days 2 -out "$name.crt" -extfile "$([[ "$name" == apiserver ]] && echo serving.ext || echo client.ext)"
        done
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sa.key
        openssl pkey -in sa.key -pubout -out sa.pub
        rm -f ./*.csr ./*.ext
    ) >"$d/pki.log" 2>&1
    rc=$?
    [[ -n "$restore_errexit" ]] && set -e
    if [[ $rc -ne 0 ]]; then
        cat "$d/pki.log" >&2
        devenv_die "could not make the certificates with openssl (log: $d/pki.log)"
    fi
}

# Removes scratch folders of earlier runs whose shell is gone.
devenv_remove_stale() {
    local root="$1" entry pid
    for entry in "$root"/*/; do
        [[ -d "$entry" ]] || continue
        pid="$(basename "$entry")"
        pid="${pid%%-*}"
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        kill -0 "$pid" 2>/dev/null || rm -rf "$entry"
    done
}

devenv_start() {
    local tool
    for tool in etcd kube-apiserver kubectl; do
        [[ -x "$DEVENV_BIN/$tool" ]] || devenv_die "$DEVENV_BIN/$tool is missing: run \`make testenv\` first"
    done
    [[ -x "$DEVENV_PYTHON" ]] || devenv_die "$DEVENV_PYTHON is missing: run \`make testenv\` (or tests/emulator/setup.sh) first"
    command -v openssl >/dev/null 2>&1 ||
        devenv_die "openssl is needed to make the API server's certificates: install it (Debian/Ubuntu: sudo apt-get install openssl)"
    DEVENV_SETPRIV=""
    if command -v setpriv >/dev/null 2>&1 && setpriv --help 2>&1 | grep -q -- --pdeathsig; then
        DEVENV_SETPRIV=1
    fi

    trap 'devenv__on_exit $?' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    local root="$DEVENV_REPO/target/ferry-demo"
    mkdir -p "$root"
    devenv_remove_stale "$root"
    DEVENV_DIR="$(mktemp -d "$root/$$-XXXXXX")"
    mkdir -p "$DEVENV_DIR/etcd"
    devenv_pki "$DEVENV_DIR"

    local ports etcd_port peer_port api_port
    ports="$(devenv_free_ports 3)" || devenv_die "could not find free loopback ports"
    { read -r etcd_port; read -r peer_port; read -r api_port; } <<<"$ports"

    # etcd.
    local etcd_url="http://127.0.0.1:$etcd_port"
    devenv_spawn etcd "$DEVENV_DIR/etcd.log" -- "$DEVENV_BIN/etcd" \
        --name=ferry-demo \
        --data-dir="$DEVENV_DIR/etcd" \
        --listen-client-urls="$etcd_url" \
        --advertise-client-urls="$etcd_url" \
        --listen-peer-urls="http://127.0.0.1:$peer_port" \
        --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
        --initial-cluster="ferry-demo=http://127.0.0.1:$peer_port" \
        --unsafe-no-fsync=true \
        --log-level=warn
    local etcd_pid=$DEVENV_LAST_PID

    # The AWS emulator starts meanwhile (its READY line is read below).
    devenv_spawn emulator "$DEVENV_DIR/emulator.log" --stdout "$DEVENV_DIR/emulator.stdout" -- \
        "$DEVENV_PYTHON" "$DEVENV_REPO/tests/emulator/ferry_emulator.py" \
        --port 0 --phase-seconds "$DEVENV_PHASE_SECONDS" --parent-pid $$
    local emulator_pid=$DEVENV_LAST_PID

    devenv_wait "etcd /health" 30 "$etcd_pid" "$DEVENV_DIR/etcd.log" \
        devenv_http_has "$etcd_url/health" '"health":"true"'

    # kube-apiserver.
    DEVENV_API_URL="https://127.0.0.1:$api_port"
    devenv_spawn kube-apiserver "$DEVENV_DIR/apiserver.log" -- "$DEVENV_BIN/kube-apiserver" \
        --etcd-servers="$etcd_url" \
        --cert-dir="$DEVENV_DIR" \
        --secure-port="$api_port" \
        --bind-address=127.0.0.1 \
        --advertise-address=127.0.0.1 \
        --tls-cert-file="$DEVENV_DIR/apiserver.crt" \
        --tls-private-key-file="$DEVENV_DIR/apiserver.key" \
        --client-ca-file="$DEVENV_DIR/ca.crt" \
        --service-account-key-file="$DEVENV_DIR/sa.pub" \
        --service-account-signing-key-file="$DEVENV_DIR/sa.key" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --authorization-mode=RBAC \
        --disable-admission-plugins=ServiceAccount \
        --service-cluster-ip-range=10.0.0.0/24 \
        --allow-privileged=true \
        --endpoint-reconciler-type=none \
        --enable-priority-and-fairness=false \
        --profiling=false \
        -v=1
    local api_pid=$DEVENV_LAST_PID

    DEVENV_KUBECONFIG="$DEVENV_DIR/kubeconfig"
    cat >"$DEVENV_KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ferry-demo
  cluster:
    server: $DEVENV_API_URL
    certificate-authority: $DEVENV_DIR/ca.crt
users:
- name: admin
  user:
    client-certificate: $DEVENV_DIR/admin.crt
    client-key: $DEVENV_DIR/admin.key
contexts:
- name: ferry-demo
  context:
    cluster: ferry-demo
    user: admin
current-context: ferry-demo
EOF

    devenv_wait "the AWS emulator's READY line" 60 "$emulator_pid" "$DEVENV_DIR/emulator.log" \
        grep -q '^READY [0-9]' "$DEVENV_DIR/emulator.stdout"
    local aws_port
    aws_port="$(sed -n 's/^READY \([0-9]*\).*/\1/p' "$DEVENV_DIR/emulator.stdout" | head -n 1)"
    DEVENV_AWS_URL="http://127.0.0.1:$aws_port"

    devenv_wait "kube-apiserver /readyz" 90 "$api_pid" "$DEVENV_DIR/apiserver.log" \
        devenv_kubectl get --raw=/readyz
    # The default namespace is made by a post-start hook; wait for it as the tests do.
    devenv_wait "the default namespace" 30 "$api_pid" "$DEVENV_DIR/apiserver.log" \
        devenv_kubectl get namespace default
}

# Stops every process devenv_spawn started, newest first (the API server before etcd): SIGTERM,
# then SIGKILL if it is still there after 15 s.
devenv_stop() {
    local i pid deadline
    for ((i = ${#DEVENV_PIDS[@]} - 1; i >= 0; i--)); do
        pid="${DEVENV_PIDS[$i]}"
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 15))
        while devenv__running "$pid" && ((SECONDS < deadline)); do
            sleep 0.1
        done
        if devenv__running "$pid"; then
            echo "warning: ${DEVENV_NAMES[$i]} (pid $pid) ignored SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    DEVENV_PIDS=()
    DEVENV_NAMES=()
}

# Whether PID is running (an exited child stays a zombie until `wait` reaps it).
devenv__running() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

devenv__on_exit() {
    local status="$1"
    trap - EXIT INT TERM
    devenv_stop
    if [[ -n "$DEVENV_DIR" && -d "$DEVENV_DIR" ]]; then
        if [[ "$status" -eq 0 && -z "${DEVENV_KEEP:-}" ]]; then
            rm -rf "$DEVENV_DIR"
        else
            echo "logs kept in ${DEVENV_DIR#"$DEVENV_REPO"/}" >&2
        fi
    fi
    exit "$status"
}
