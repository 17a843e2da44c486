{{/*
Configuration of a service: plain settings in a ConfigMap, keys and the database URI from Secrets.

Secret keys are named after the variable they feed: JWT_PRIVATE_KEY -> jwt-private-key. A service
reads the ones listed in its `secretEnv`, plus MONGODB_URI when `usesMongodb`. With
`secrets.mountAsFiles` each is mounted as a file and passed as <NAME>_FILE (services/common/config.py
reads those); otherwise it is passed as an environment variable from the Secret.
*/}}

{{/* JWT_PRIVATE_KEY -> jwt-private-key */}}
{{- define "wenming-lib.secretKeyFor" -}}
{{- . | lower | replace "_" "-" -}}
{{- end -}}

{{/* JWT_PRIVATE_KEY -> jwtPrivateKey (its name under secrets.values) */}}
{{- define "wenming-lib.valueKeyFor" -}}
{{- . | lower | camelcase | untitle -}}
{{- end -}}

{{/* The Secret with the keys: the one you manage, or the one this chart renders. Takes root. */}}
{{- define "wenming-lib.keysSecretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" (include "wenming-lib.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Every secret a service reads, as a YAML list of {env, secret, key, file}. Takes the service context. */}}
{{- define "wenming-lib.secretRefs" -}}
{{- $root := .root -}}
{{- $keys := include "wenming-lib.keysSecretName" $root -}}
{{- $refs := list -}}
{{- range .svc.secretEnv -}}
{{- $key := include "wenming-lib.secretKeyFor" . -}}
{{- $refs = append $refs (dict "env" . "secret" $keys "key" $key "file" $key) -}}
{{- end -}}
{{- $sasl := $root.Values.kafka.sasl -}}
{{- if and .svc.usesKafka $sasl.passwordSecret -}}
{{- $refs = append $refs (dict "env" "KAFKA_SASL_PASSWORD" "secret" $sasl.passwordSecret "key" $sasl.passwordKey "file" "kafka-sasl-password") -}}
{{- end -}}
{{- if .svc.usesMongodb -}}
{{- $mongo := $root.Values.mongodb -}}
{{- if $mongo.existingSecret -}}
{{- $refs = append $refs (dict "env" "MONGODB_URI" "secret" $mongo.existingSecret "key" $mongo.existingSecretKey "file" "mongodb-uri") -}}
{{- else -}}
{{- $refs = append $refs (dict "env" "MONGODB_URI" "secret" $keys "key" "mongodb-uri" "file" "mongodb-uri") -}}
{{- end -}}
{{- end -}}
{{- toYaml $refs -}}
{{- end -}}

{{/* Names that must never sit in a ConfigMap. */}}
{{- define "wenming-lib.assertNotSecret" -}}
{{- $name := .name -}}
{{- $secretNames := list "MONGODB_URI" -}}
{{- range $_, $svc := .root.Values.services -}}
{{- $secretNames = concat $secretNames ($svc.secretEnv | default list) -}}
{{- end -}}
{{- if or (has $name $secretNames) (regexMatch "(_KEY|_KEYS|_PASSWORD|_SECRET|_TOKEN|_URI)$" $name) -}}
{{- fail (printf "%s: %s is a secret; put it in the Secret (secrets.* / mongodb.*), not in config" .where $name) -}}
{{- end -}}
{{- end -}}

{{/* The service's plain settings (ConfigMap data). Takes the service context. */}}
{{- define "wenming-lib.configData" -}}
{{- $root := .root -}}
{{- $svc := .svc -}}
{{- $data := dict
  "HTTP_PORT" "8080"
  "LOG_LEVEL" ($svc.logLevel | toString)
  "SHUTDOWN_GRACE_SECONDS" ($svc.shutdownGraceSeconds | toString) -}}
{{- if $svc.grpc.enabled -}}
{{- $_ := set $data "GRPC_PORT" "50051" -}}
{{- $_ := set $data "GRPC_WORKERS" ($svc.grpc.workers | toString) -}}
{{- $_ := set $data "GRPC_PROCESSES" ($svc.grpc.processes | toString) -}}
{{- end -}}
{{- if $svc.usesKafka -}}
{{- $kafka := $root.Values.kafka -}}
{{- $_ := set $data "KAFKA_BOOTSTRAP_SERVERS" (required "kafka.bootstrapServers is required: the Kafka bootstrap address, e.g. wenming-kafka-bootstrap.kafka.svc:9092" $kafka.bootstrapServers) -}}
{{- $_ := set $data "KAFKA_PREFIX" ($kafka.prefix | default "" | toString) -}}
{{- $_ := set $data "KAFKA_TOPIC_PARTITIONS" ($kafka.topicPartitions | toString) -}}
{{- $_ := set $data "KAFKA_REPLICATION_FACTOR" ($kafka.replicationFactor | toString) -}}
{{- $_ := set $data "KAFKA_MIN_INSYNC_REPLICAS" ($kafka.minInsyncReplicas | toString) -}}
{{- /* int64: a large number from YAML is a float and would print as 2.592e+09 */ -}}
{{- $_ := set $data "KAFKA_EVENTS_RETENTION_MS" ($kafka.eventsRetentionMs | int64 | toString) -}}
{{- $_ := set $data "KAFKA_DLQ_RETENTION_MS" ($kafka.dlqRetentionMs | int64 | toString) -}}
{{- end -}}
{{- if $svc.usesMongodb -}}
{{- $_ := set $data "MONGODB_DATABASE" (default (printf "%s%s" $root.Values.mongodb.databasePrefix .name) $svc.mongodbDatabase) -}}
{{- end -}}
{{- range $key, $value := include "wenming-lib.tlsSettings" . | fromYaml -}}
{{- $_ := set $data $key $value -}}
{{- end -}}
{{- /* every service finds its peers' gRPC APIs the way the local launcher passes them */ -}}
{{- range $peer, $values := $root.Values.services -}}
{{- if and $values.enabled (dig "grpc" "enabled" $root.Values.serviceDefaults.grpc.enabled $values) -}}
{{- $host := include "wenming-lib.serviceHost" (dict "root" $root "name" $peer) -}}
{{- $_ := set $data (printf "%s_GRPC_TARGET" (upper $peer)) (printf "%s:50051" $host) -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := merge (deepCopy ($svc.config | default dict)) ($root.Values.config | default dict) -}}
{{- include "wenming-lib.assertNotSecret" (dict "root" $root "name" $key "where" "config") -}}
{{- $_ := set $data $key ($value | toString) -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{/*
Transport security settings (services/common/config.py) pointing at the mounted certificates
(wenming-lib.tlsVolumes). Takes the service context.
*/}}
{{- define "wenming-lib.tlsSettings" -}}
{{- $values := .root.Values -}}
{{- $kafka := $values.kafka -}}
{{- $mongo := $values.mongodb -}}
{{- if $values.tls.grpc.enabled }}
GRPC_TLS_CERT_FILE: /var/run/secrets/wenming-tls/grpc/tls.crt
GRPC_TLS_KEY_FILE: /var/run/secrets/wenming-tls/grpc/tls.key
GRPC_TLS_CA_FILE: /var/run/secrets/wenming-tls/grpc/ca.crt
GRPC_TLS_CLIENT_AUTH: {{ $values.tls.grpc.clientAuth | toString | quote }}
{{- end }}
{{- if and .svc.usesKafka (ne $kafka.securityProtocol "PLAINTEXT") }}
KAFKA_SECURITY_PROTOCOL: {{ $kafka.securityProtocol | quote }}
{{- if $kafka.tls.caSecret }}
KAFKA_SSL_CA_FILE: /var/run/secrets/wenming-tls/kafka/ca.crt
{{- end }}
{{- if hasPrefix "SASL" $kafka.securityProtocol }}
KAFKA_SASL_MECHANISM: {{ $kafka.sasl.mechanism | quote }}
KAFKA_SASL_USERNAME: {{ required "kafka.sasl.username is required with a SASL securityProtocol" $kafka.sasl.username | quote }}
{{- end }}
{{- end }}
{{- if and .svc.usesMongodb $mongo.tls.enabled }}
MONGODB_TLS: "true"
{{- if $mongo.tls.caSecret }}
MONGODB_TLS_CA_FILE: /var/run/secrets/wenming-tls/mongodb/ca.crt
{{- end }}
{{- end }}
{{- end -}}

{{/* The certificate volumes of tlsSettings, as (name, secret, items, mount path). Takes the service context. */}}
{{- define "wenming-lib.tlsVolumes" -}}
{{- $values := .root.Values -}}
{{- $volumes := list -}}
{{- if $values.tls.grpc.enabled -}}
{{- $volumes = append $volumes (dict "name" "grpc-tls" "secret" $values.tls.grpc.secretName "items" (list) "path" "/var/run/secrets/wenming-tls/grpc") -}}
{{- end -}}
{{- if and .svc.usesKafka $values.kafka.tls.caSecret (ne $values.kafka.securityProtocol "PLAINTEXT") -}}
{{- $volumes = append $volumes (dict "name" "kafka-ca" "secret" $values.kafka.tls.caSecret "items" (list (dict "key" $values.kafka.tls.caKey "path" "ca.crt")) "path" "/var/run/secrets/wenming-tls/kafka") -}}
{{- end -}}
{{- if and .svc.usesMongodb $values.mongodb.tls.enabled $values.mongodb.tls.caSecret -}}
{{- $volumes = append $volumes (dict "name" "mongodb-ca" "secret" $values.mongodb.tls.caSecret "items" (list (dict "key" $values.mongodb.tls.caKey "path" "ca.crt")) "path" "/var/run/secrets/wenming-tls/mongodb") -}}
{{- end -}}
{{- toYaml $volumes -}}
{{- end -}}

{{- define "wenming-lib.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "wenming-lib.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "wenming-lib.labels" . | nindent 4 }}
data:
  {{- include "wenming-lib.configData" . | nindent 2 }}
{{- end -}}

{{/* The Secret this chart renders when no existingSecret is named. Takes root. */}}
{{- define "wenming-lib.secret" -}}
{{- $root := . -}}
{{- if not .Values.secrets.existingSecret }}
{{- $needed := list -}}
{{- $needsMongo := false -}}
{{- range $name, $overrides := .Values.services -}}
{{- if $overrides.enabled -}}
{{- $svc := mergeOverwrite (deepCopy $root.Values.serviceDefaults) (deepCopy $overrides) -}}
{{- $needed = concat $needed $svc.secretEnv -}}
{{- if $svc.usesMongodb }}{{ $needsMongo = true }}{{ end -}}
{{- end -}}
{{- end }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "wenming-lib.keysSecretName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "wenming-lib.releaseLabels" . | nindent 4 }}
  annotations:
    # deleting the release must not delete the keys that decrypt the personal data
    helm.sh/resource-policy: keep
type: Opaque
data:
  {{- range $env := $needed | uniq | sortAlpha }}
  {{- $valueKey := include "wenming-lib.valueKeyFor" $env }}
  {{ include "wenming-lib.secretKeyFor" $env }}: {{ required (printf "secrets.values.%s is required (or name an existing Secret in secrets.existingSecret)" $valueKey) (index $root.Values.secrets.values $valueKey) | b64enc | quote }}
  {{- end }}
  {{- if and $needsMongo (not .Values.mongodb.existingSecret) }}
  {{- include "wenming-lib.assertMongoUri" .Values.mongodb.uri }}
  mongodb-uri: {{ required "mongodb.uri is required (or name an existing Secret in mongodb.existingSecret)" .Values.mongodb.uri | b64enc | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
mongoengine takes the database from the URI's path when there is one, which would put every
service into that one database (for example "admin" from an operator's connection string).
*/}}
{{- define "wenming-lib.assertMongoUri" -}}
{{- if regexMatch "^mongodb(\\+srv)?://[^/?]*/[^?]+" (. | default "") -}}
{{- fail "mongodb.uri must not name a database (mongodb://host/DB): every service would use that database instead of its own. Use mongodb://user:pass@hosts/?replicaSet=rs0&authSource=admin" -}}
{{- end -}}
{{- end -}}
