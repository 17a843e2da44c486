{{/*
NetworkPolicy of one service. Ingress: gRPC from the pods of this release (the gateway and peers)
and from `grpcFrom`; HTTP from the pods of this release, from Prometheus (`metricsFrom`) and from
`httpFrom`, or from anywhere with `publicHttp`. Egress: DNS, the peers' gRPC, and either anything
(`allowExternalEgress`) or only Kafka and MongoDB as described by `kafkaEgress`/`mongodbEgress`.
*/}}
{{- define "wenming-lib.networkPolicy" -}}
{{- $np := .svc.networkPolicy -}}
{{- if $np.enabled -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "wenming-lib.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "wenming-lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "wenming-lib.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress:
    {{- if .svc.grpc.enabled }}
    - from:
        - podSelector:
            matchLabels:
              {{- include "wenming-lib.releaseSelectorLabels" .root | nindent 14 }}
        {{- with $np.grpcFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - port: grpc
          protocol: TCP
    {{- end }}
    {{- if $np.publicHttp }}
    - ports:
        - port: http
          protocol: TCP
    {{- else }}
    - from:
        - podSelector:
            matchLabels:
              {{- include "wenming-lib.releaseSelectorLabels" .root | nindent 14 }}
        {{- with $np.metricsFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $np.httpFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
    {{- with $np.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    - to:
        - namespaceSelector: {}
          podSelector:
            matchLabels:
              k8s-app: kube-dns
      ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    - to:
        - podSelector:
            matchLabels:
              {{- include "wenming-lib.releaseSelectorLabels" .root | nindent 14 }}
      ports:
        - port: 50051
          protocol: TCP
    {{- if $np.allowExternalEgress }}
    - {}
    {{- else }}
    {{- if .svc.usesKafka }}
    {{- include "wenming-lib.egressRule" $np.kafkaEgress | nindent 4 }}
    {{- end }}
    {{- if .svc.usesMongodb }}
    {{- include "wenming-lib.egressRule" $np.mongodbEgress | nindent 4 }}
    {{- end }}
    {{- end }}
    {{- with $np.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
{{- end -}}

{{- define "wenming-lib.egressRule" -}}
- to:
    {{- toYaml .to | nindent 4 }}
  ports:
    {{- range .ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end -}}
