#!/bin/sh
# Writes argocd-cm-patch.yaml from health.lua, so the ConfigMap snippet always embeds the exact
# script that is tested. Run it after every change of health.lua:
#
#   integrations/argocd/render-cm.sh           # rewrite argocd-cm-patch.yaml
#   integrations/argocd/render-cm.sh --check   # exit 1 when argocd-cm-patch.yaml is stale
set -eu

here=$(cd "$(dirname "$0")" && pwd)
script="$here/health.lua"
out="$here/argocd-cm-patch.yaml"

render() {
  cat <<'HEADER'
# Argo CD health check for ferry.dev/CrossAccountTransfer.
# GENERATED from health.lua by render-cm.sh: edit health.lua, then run render-cm.sh.
#
# Merge it into the argocd-cm ConfigMap, e.g.
#   kubectl -n argocd patch configmap argocd-cm --patch-file integrations/argocd/argocd-cm-patch.yaml
# or list it as a patch of argocd-cm in your Argo CD kustomization.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
  resource.customizations.health.ferry.dev_CrossAccountTransfer: |
HEADER
  # Indent every non-empty line by four spaces (empty lines stay empty: same block scalar).
  sed -e 's/^\(.\)/    \1/' "$script"
}

if [ "${1:-}" = "--check" ]; then
  if render | cmp -s - "$out"; then
    echo "argocd-cm-patch.yaml is up to date"
  else
    echo "argocd-cm-patch.yaml is stale: run integrations/argocd/render-cm.sh" >&2
    exit 1
  fi
else
  tmp="$out.tmp.$$"
  render >"$tmp"
  mv "$tmp" "$out"
  echo "wrote $out"
fi
