{{/*
One service's Deployment. Every service runs the same image; the command picks the service
(python -m services.<name>). Ports: 50051 gRPC (API + grpc.health.v1), 8080 HTTP (/healthz,
/readyz, /metrics and the service's own REST).
*/}}
{{- define "wenming-lib.deployment" -}}
{{- $root := .root -}}
{{- $svc := .svc -}}
{{- $secrets := $root.Values.secrets -}}
{{- $minimumGrace := add $svc.preStopSleepSeconds $svc.shutdownGraceSeconds 15 -}}
{{- if lt (int $svc.terminationGracePeriodSeconds) (int $minimumGrace) -}}
{{- fail (printf "services.%s: terminationGracePeriodSeconds (%v) must be at least preStopSleepSeconds + shutdownGraceSeconds + 15 (%v): in-flight calls get shutdownGraceSeconds, then consumers commit and the outbox relay makes its last pass" .name $svc.terminationGracePeriodSeconds $minimumGrace) -}}
{{- end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "wenming-lib.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "wenming-lib.labels" . | nindent 4 }}
spec:
  {{- if not $svc.autoscaling.enabled }}
  replicas: {{ $svc.replicaCount }}
  {{- end }}
  revisionHistoryLimit: {{ $svc.revisionHistoryLimit }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # a new pod must be ready before an old one goes: no capacity lost during an upgrade
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      {{- include "wenming-lib.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "wenming-lib.labels" . | nindent 8 }}
        {{- with $svc.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "wenming-lib.configData" . | sha256sum }}
        {{- if not $secrets.existingSecret }}
        checksum/secrets: {{ include "wenming-lib.secret" $root | sha256sum }}
        {{- end }}
        {{- with $svc.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "wenming-lib.serviceAccountName" . }}
      automountServiceAccountToken: false
      # Service links would add <NAME>_PORT-style variables that could shadow real settings
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $svc.terminationGracePeriodSeconds }}
      {{- with $svc.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $svc.podSecurityContext | nindent 8 }}
      {{- if $svc.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
        - topologyKey: {{ $key }}
          maxSkew: 1
          whenUnsatisfiable: {{ $svc.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "wenming-lib.selectorLabels" $ | nindent 14 }}
          matchLabelKeys:
            - pod-template-hash
        {{- end }}
      {{- end }}
      {{- with $svc.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ include "wenming-lib.image" . | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["python", "-m", "services.{{ .name }}"]
          ports:
            {{- if $svc.grpc.enabled }}
            - name: grpc
              containerPort: 50051
              protocol: TCP
            {{- end }}
            - name: http
              containerPort: 8080
              protocol: TCP
          {{- include "wenming-lib.containerConfig" . | nindent 10 }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $svc.probes.startup.periodSeconds }}
            failureThreshold: {{ $svc.probes.startup.failureThreshold }}
            timeoutSeconds: {{ $svc.probes.timeoutSeconds }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $svc.probes.liveness.periodSeconds }}
            failureThreshold: {{ $svc.probes.liveness.failureThreshold }}
            timeoutSeconds: {{ $svc.probes.timeoutSeconds }}
          readinessProbe:
            {{- if and $svc.grpc.enabled (eq $svc.probes.readiness.type "grpc") (not $root.Values.tls.grpc.enabled) }}
            # grpc.health.v1 is SERVING only while MongoDB and Kafka answer (the same as /readyz)
            grpc:
              port: 50051
            {{- else }}
            httpGet:
              path: /readyz
              port: http
            {{- end }}
            periodSeconds: {{ $svc.probes.readiness.periodSeconds }}
            failureThreshold: {{ $svc.probes.readiness.failureThreshold }}
            timeoutSeconds: {{ $svc.probes.timeoutSeconds }}
          lifecycle:
            preStop:
              # endpoints are removed asynchronously: keep serving until clients have stopped
              # sending here, then SIGTERM starts the graceful shutdown
              sleep:
                seconds: {{ $svc.preStopSleepSeconds }}
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            {{- toYaml $svc.containerSecurityContext | nindent 12 }}
          volumeMounts:
            {{- include "wenming-lib.volumeMounts" . | nindent 12 }}
      volumes:
        {{- include "wenming-lib.volumes" . | nindent 8 }}
{{- end -}}

{{/* The distinct Secret names in a list of secret refs, in order. */}}
{{- define "wenming-lib.secretNames" -}}
{{- $names := list -}}
{{- range . }}{{ $names = append $names .secret }}{{ end -}}
{{- toYaml ($names | uniq) -}}
{{- end -}}

{{/* envFrom + env of a service's container: its ConfigMap, its secrets, extraEnv. */}}
{{- define "wenming-lib.containerConfig" -}}
{{- $secrets := .root.Values.secrets -}}
{{- $refs := include "wenming-lib.secretRefs" . | fromYamlArray -}}
envFrom:
  - configMapRef:
      name: {{ include "wenming-lib.componentName" . }}
{{- if or $refs .svc.extraEnv }}
env:
  {{- range $refs }}
  {{- if $secrets.mountAsFiles }}
  - name: {{ .env }}_FILE
    value: {{ printf "%s/%s" $secrets.mountPath .file | quote }}
  {{- else }}
  - name: {{ .env }}
    valueFrom:
      secretKeyRef:
        name: {{ .secret }}
        key: {{ .key | quote }}
  {{- end }}
  {{- end }}
  {{- with .svc.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "wenming-lib.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if and (include "wenming-lib.secretRefs" . | fromYamlArray) .root.Values.secrets.mountAsFiles }}
- name: secrets
  mountPath: {{ .root.Values.secrets.mountPath }}
  readOnly: true
{{- end }}
{{- range include "wenming-lib.tlsVolumes" . | fromYamlArray }}
- name: {{ .name }}
  mountPath: {{ .path }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* /tmp (the root filesystem is read-only) and, with mountAsFiles, only the secrets this service reads. */}}
{{- define "wenming-lib.volumes" -}}
{{- $refs := include "wenming-lib.secretRefs" . | fromYamlArray -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .svc.tmpSizeLimit }}
{{- range include "wenming-lib.tlsVolumes" . | fromYamlArray }}
- name: {{ .name }}
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
    {{- with .items }}
    items:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
{{- if and $refs .root.Values.secrets.mountAsFiles }}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      {{- range $secretName := (include "wenming-lib.secretNames" $refs | fromYamlArray) }}
      - secret:
          name: {{ $secretName }}
          items:
            {{- range $refs }}
            {{- if eq .secret $secretName }}
            - key: {{ .key | quote }}
              path: {{ .file }}
            {{- end }}
            {{- end }}
      {{- end }}
{{- end }}
{{- end -}}
