#!/usr/bin/env bash
# Generates the keys of a Wenming Cloud install and the Secret manifest that carries them.
#
#   infra/k8s/generate-secrets.sh <dir> [namespace]
#
# writes into <dir> (which must not exist yet: keys are never overwritten):
#   jwt-private.pem, jwt-public.pem            Ed25519 key pair that signs and verifies tokens
#   pii-encryption-keys, pii-blind-index-keys  personal-data keyrings, "v1:<base64 of 32 random bytes>"
#                                              each (AES-256-GCM, HMAC-SHA256)
#   checkin-code-key                           base64 of 32 random bytes (check-in QR codes)
#   wenming-secrets.yaml                       Secret "wenming-secrets" with those five keys
#
#   infra/k8s/generate-secrets.sh --rotate <dir> [namespace]
#
# adds a new version to both keyrings in <dir> (newest first: "v2:<new>,v1:<old>"), keeps the
# previous files as *.v<N> and rewrites wenming-secrets.yaml; docs/deploy.md has the runbook.
#
# Apply the manifest (kubectl apply -f <dir>/wenming-secrets.yaml), then keep <dir> offline in
# your key escrow. Losing a version of pii-encryption-keys still in use loses the personal data
# encrypted with it; a key leaves the keyring only after the rotation job has finished.
set -euo pipefail

rotate=
[ "${1:-}" = --rotate ] && { rotate=1; shift; }
dir=${1:?usage: generate-secrets.sh [--rotate] <dir> [namespace]}
namespace=${2:-wenming}
command -v openssl >/dev/null || { echo "generate-secrets.sh: openssl is needed" >&2; exit 1; }
umask 077

if [ -n "$rotate" ]; then
  [ -f "$dir/pii-encryption-keys" ] && [ -f "$dir/pii-blind-index-keys" ] \
    || { echo "generate-secrets.sh: $dir has no keyrings to rotate" >&2; exit 1; }
  # the newest version is the highest in either keyring; the new one is one above it
  newest=$(cat "$dir/pii-encryption-keys" "$dir/pii-blind-index-keys" | tr ',' '\n' | sed -n 's/^v\([0-9]*\):.*/\1/p' | sort -n | tail -1)
  next=$((newest + 1))
  [ "$next" -le 255 ] || { echo "generate-secrets.sh: key versions end at v255" >&2; exit 1; }
  for name in pii-encryption-keys pii-blind-index-keys; do
    cp "$dir/$name" "$dir/$name.v$newest"
    printf 'v%s:%s,%s\n' "$next" "$(openssl rand -base64 32)" "$(cat "$dir/$name")" > "$dir/$name"
  done
  echo "keyrings now start with v$next (the previous files are kept as *.v$newest)"
else
  [ -e "$dir" ] && { echo "generate-secrets.sh: $dir exists; refusing to overwrite keys" >&2; exit 1; }
  mkdir -p "$dir"
  openssl genpkey -algorithm ed25519 -out "$dir/jwt-private.pem"
  openssl pkey -in "$dir/jwt-private.pem" -pubout -out "$dir/jwt-public.pem"
  for name in pii-encryption-keys pii-blind-index-keys; do
    echo "v1:$(openssl rand -base64 32)" > "$dir/$name"
  done
  openssl rand -base64 32 > "$dir/checkin-code-key"
fi

b64() { base64 < "$1" | tr -d '\n'; }
cat > "$dir/wenming-secrets.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: wenming-secrets
  namespace: $namespace
  labels:
    app.kubernetes.io/part-of: wenming
type: Opaque
data:
  jwt-private-key: $(b64 "$dir/jwt-private.pem")
  jwt-public-key: $(b64 "$dir/jwt-public.pem")
  pii-encryption-keys: $(b64 "$dir/pii-encryption-keys")
  pii-blind-index-keys: $(b64 "$dir/pii-blind-index-keys")
  checkin-code-key: $(b64 "$dir/checkin-code-key")
YAML
echo "keys and $dir/wenming-secrets.yaml written; apply it with: kubectl apply -f $dir/wenming-secrets.yaml"
