#!/usr/bin/env bash
# Generates the keys of a Wenming Cloud install and the Secret manifest that carries them.
#
#   infra/k8s/generate-secrets.sh <dir> [namespace]
#
# writes into <dir> (which must not exist yet: keys are never overwritten):
#   jwt-private.pem, jwt-public.pem            Ed25519 key pair that signs and verifies tokens
#   pii-encryption-key, pii-blind-index-key    base64 of 32 random bytes each (AES-256-GCM, HMAC-SHA256)
#   checkin-code-key                           base64 of 32 random bytes (check-in QR codes)
#   wenming-secrets.yaml                       Secret "wenming-secrets" with those five keys
#
# Apply the manifest (kubectl apply -f <dir>/wenming-secrets.yaml), then keep <dir> offline in
# your key escrow. Losing pii-encryption-key or pii-blind-index-key loses every encrypted ID
# number; changing them needs a re-encryption, not a new Secret.
set -euo pipefail

dir=${1:?usage: generate-secrets.sh <dir> [namespace]}
namespace=${2:-wenming}
[ -e "$dir" ] && { echo "generate-secrets.sh: $dir exists; refusing to overwrite keys" >&2; exit 1; }
command -v openssl >/dev/null || { echo "generate-secrets.sh: openssl is needed" >&2; exit 1; }

umask 077
mkdir -p "$dir"
openssl genpkey -algorithm ed25519 -out "$dir/jwt-private.pem"
openssl pkey -in "$dir/jwt-private.pem" -pubout -out "$dir/jwt-public.pem"
for name in pii-encryption-key pii-blind-index-key checkin-code-key; do
  openssl rand -base64 32 > "$dir/$name"
done

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
  pii-encryption-key: $(b64 "$dir/pii-encryption-key")
  pii-blind-index-key: $(b64 "$dir/pii-blind-index-key")
  checkin-code-key: $(b64 "$dir/checkin-code-key")
YAML
echo "keys and $dir/wenming-secrets.yaml written; apply it with: kubectl apply -f $dir/wenming-secrets.yaml"
