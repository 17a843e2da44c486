{{/*
ServiceMonitor (Prometheus Operator) scraping /metrics on the http port. Every series gets a
`wenming_service` label (the service name), which the alert rules and the dashboard select on.
*/}}
{{- define "wenming-lib.serviceMonitor" -}}
{{- $monitor := .svc.metrics.serviceMonitor -}}
{{- if $monitor.enabled -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "wenming-lib.componentName" . }}
  namespace: {{ default .root.Release.Namespace $monitor.namespace }}
  labels:
    {{- include "wenming-lib.labels" . | nindent 4 }}
    {{- with $monitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  namespaceSelector:
    matchNames:
      - {{ .root.Release.Namespace }}
  selector:
    matchLabels:
      {{- include "wenming-lib.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: http
      path: /metrics
      scheme: http
      interval: {{ $monitor.interval }}
      scrapeTimeout: {{ $monitor.scrapeTimeout }}
      relabelings:
        - sourceLabels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
          targetLabel: wenming_service
        {{- with $monitor.relabelings }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $monitor.metricRelabelings }}
      metricRelabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
{{- end -}}

{{/* Ingress to a service's HTTP port (the gateway's REST API and dashboard). */}}
{{- define "wenming-lib.ingress" -}}
{{- $ingress := .svc.ingress -}}
{{- if $ingress.enabled -}}
{{- $service := include "wenming-lib.componentName" . -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ $service }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "wenming-lib.labels" . | nindent 4 }}
  {{- with $ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $ingress.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with $ingress.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- range $ingress.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range (.paths | default (list "/")) }}
          - path: {{ . }}
            pathType: Prefix
            backend:
              service:
                name: {{ $service }}
                port:
                  name: http
          {{- end }}
    {{- end }}
{{- end -}}
{{- end -}}
