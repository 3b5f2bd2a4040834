#!/usr/bin/env bash
# `make demo`: the quickstart transfer end to end, on a local control plane (etcd +
# kube-apiserver) and the AWS emulator, with the real operator (target/debug/ferry run):
# examples/quickstart.yaml copies s3://ferry-demo-source/media/ (Account A) into
# s3://ferry-demo-destination/archive/ (Account B); deleting it undoes Ferry's changes.
# Everything it starts is stopped at the end, whatever happens.
#
# Needs `make testenv` and `cargo build` (make demo does both). DEVENV_KEEP=1 keeps the
# scratch folder (logs, kubeconfig) under target/ferry-demo/ after a successful run;
# FERRY_DEMO_DEADLINE (seconds, default 180) bounds the wait for the transfer.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=hack/devenv.sh
source hack/devenv.sh

FERRY="$repo/target/debug/ferry"
PY="$DEVENV_PYTHON"
NS=ferry-demo
NAME=quickstart
DEADLINE_SECONDS="${FERRY_DEMO_DEADLINE:-180}"
began=$SECONDS

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
heading() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
note() { printf '    %s\n' "$*"; }

[[ -x "$FERRY" ]] || devenv_die "$FERRY is missing: run \`cargo build\` (or \`make demo\`) first"

heading "Starting etcd, kube-apiserver and the AWS emulator"
devenv_start
export KUBECONFIG="$DEVENV_KUBECONFIG"
export PATH="$DEVENV_BIN:$PATH"
rel_dir="${DEVENV_DIR#"$repo"/}"
note "API server $DEVENV_API_URL, AWS emulator $DEVENV_AWS_URL"
note "kubeconfig and logs: $rel_dir/"

heading "Installing the CrossAccountTransfer and TransferPolicy CRDs"
kubectl apply -f crds/ | sed 's/^/    /'
kubectl wait --for=condition=Established --timeout=60s \
    crd/crossaccounttransfers.ferry.dev crd/transferpolicies.ferry.dev | sed 's/^/    /'

heading "Seeding Account A (111111111111) and Account B (222222222222) in the emulator"
operator_creds="$("$PY" hack/seed_demo.py --endpoint "$DEVENV_AWS_URL" seed)"
eval "$operator_creds"

heading "Starting the operator: ferry run"
metrics_port="$(devenv_free_ports 1)"
operator_log="$DEVENV_DIR/operator.log"
# A clean environment: only what the operator needs, nothing of the user's AWS setup.
devenv_spawn ferry "$operator_log" -- env -i \
    PATH="$PATH" \
    KUBECONFIG="$KUBECONFIG" \
    AWS_ENDPOINT_URL="$DEVENV_AWS_URL" \
    AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
    AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    AWS_SESSION_TOKEN="$AWS_SESSION_TOKEN" \
    AWS_REGION=us-east-1 \
    AWS_EC2_METADATA_DISABLED=true \
    FERRY_LEADER_ELECTION=false \
    FERRY_LOG_FORMAT=text \
    FERRY_POLL_INTERVAL=1s \
    FERRY_METRICS_ADDR="127.0.0.1:$metrics_port" \
    NO_COLOR=1 \
    "$FERRY" run
operator_pid=$DEVENV_LAST_PID
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
devenv_wait "the operator's /readyz" 60 "$operator_pid" "$operator_log" \
    devenv_http_has "http://127.0.0.1:$metrics_port/readyz" ""
note "running as arn:aws:iam::111111111111:role/platform/ferry-operator (pid $operator_pid)"
note "metrics http://127.0.0.1:$metrics_port/metrics, log $rel_dir/operator.log"

# Prints what the operator wrote about the transfer, for a failure or a timeout.
diagnose() {
    echo
    echo "Status conditions:"
    kubectl get xat "$NAME" -n "$NS" \
        -o jsonpath='{range .status.conditions[*]}  {.type}={.status} {.reason}: {.message}{"\n"}{end}' || true
    local error
    error="$(kubectl get xat "$NAME" -n "$NS" \
        -o jsonpath='{.status.execution.errorCode} {.status.execution.errorDetail}' 2>/dev/null || true)"
    [[ -n "${error// /}" ]] && echo "DataSync execution error: $error"
    echo "The operator's last log lines ($rel_dir/operator.log):"
    tail -n 30 "$operator_log" | sed 's/^/  /' || true
}

heading "The platform admin grants the namespace: examples/quickstart-policy.yaml"
# Ferry enforces TransferPolicies: without this one, the transfer would be refused (Stalled,
# NotPermitted) before any AWS call.
kubectl apply -f examples/quickstart-policy.yaml | sed 's/^/    /'

heading "Applying examples/quickstart.yaml"
kubectl apply -f examples/quickstart.yaml | sed 's/^/    /'

heading "Watching the transfer (kubectl get xat $NAME -n $NS)"
applied=$SECONDS
last=""
while :; do
    state="$(kubectl get xat "$NAME" -n "$NS" \
        -o jsonpath='{.status.phase}|{.status.progress}|{.status.execution.status}' 2>/dev/null || true)"
    IFS='|' read -r phase progress datasync <<<"$state"
    if [[ -n "$state" && "$state" != "$last" ]]; then
        last="$state"
        line="$(printf '[%3ds] %-13s %4s' "$((SECONDS - applied))" "${phase:-(no status)}" "$progress")"
        [[ -n "$datasync" ]] && line+="  (DataSync execution: $datasync)"
        echo "${line%"${line##*[! ]}"}"
    fi
    case "$phase" in
    Succeeded) break ;;
    Failed)
        echo "error: the transfer failed" >&2
        diagnose >&2
        exit 1
        ;;
    esac
    if ! devenv__running "$operator_pid"; then
        echo "error: the operator exited" >&2
        diagnose >&2
        exit 1
    fi
    if ((SECONDS - applied >= DEADLINE_SECONDS)); then
        echo "error: the transfer did not finish within ${DEADLINE_SECONDS}s (phase: ${phase:-none})" >&2
        diagnose >&2
        exit 1
    fi
    sleep 0.5
done

heading "kubectl get xat -n $NS"
kubectl get xat -n "$NS"
heading "kubectl get transferpolicies"
kubectl get transferpolicies
# `ferry status` (the CLI's own view), when this build has it.
if "$FERRY" status --help 2>/dev/null | grep -q -- --namespace; then
    heading "ferry status -n $NS"
    timeout 20 "$FERRY" status -n "$NS" </dev/null || true
fi

heading "Events of the transfer"
kubectl get events -n "$NS" --field-selector "involvedObject.name=$NAME" --sort-by=.eventTime \
    -o custom-columns='TYPE:.type,REASON:.reason,MESSAGE:.message' 2>/dev/null ||
    kubectl events -n "$NS" --for "crossaccounttransfer/$NAME"

heading "What landed in Account B (Ferry's two statements added, the bucket's own kept)"
"$PY" hack/seed_demo.py --endpoint "$DEVENV_AWS_URL" list

heading "Deleting the transfer: the finalizer undoes Ferry's changes in AWS"
kubectl delete xat "$NAME" -n "$NS" --timeout=90s | sed 's/^/    /'

heading "Account B after the deletion (only the bucket's own statement, ObjectWriter again)"
"$PY" hack/seed_demo.py --endpoint "$DEVENV_AWS_URL" list

heading "Done in $((SECONDS - began))s; stopping the operator, the API server, etcd and the emulator"
