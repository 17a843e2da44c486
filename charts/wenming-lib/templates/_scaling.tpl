{{/* HorizontalPodAutoscaler and PodDisruptionBudget of one service. */}}
{{- define "wenming-lib.hpa" -}}
{{- $scaling := .svc.autoscaling -}}
{{- if $scaling.enabled -}}
{{- if gt (int $scaling.minReplicas) (int $scaling.maxReplicas) -}}
{{- fail (printf "services.%s.autoscaling: minReplicas (%v) is above maxReplicas (%v)" .name $scaling.minReplicas $scaling.maxReplicas) -}}
{{- end -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "wenming-lib.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "wenming-lib.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "wenming-lib.componentName" . }}
  minReplicas: {{ $scaling.minReplicas }}
  maxReplicas: {{ $scaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $scaling.targetCPUUtilizationPercentage }}
    {{- with $scaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  behavior:
    scaleDown:
      # consumers rebalance on every membership change: do not flap
      stabilizationWindowSeconds: {{ $scaling.scaleDownStabilizationSeconds }}
{{- end -}}
{{- end -}}

{{- define "wenming-lib.pdb" -}}
{{- $pdb := .svc.pdb -}}
{{- if $pdb.create -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "wenming-lib.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "wenming-lib.labels" . | nindent 4 }}
spec:
  {{- if and (not (kindIs "invalid" $pdb.minAvailable)) (ne (toString $pdb.minAvailable) "") }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable | default 1 }}
  {{- end }}
  # pods that are not ready (say, while Kafka is away) must not block node drains
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "wenming-lib.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}
