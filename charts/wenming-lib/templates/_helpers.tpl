{{/*
Names, labels and the per-service context.

Every per-service template takes the same context, a dict the application chart builds:
  root  the chart's top-level context ($)
  name  the service name (registration, ordering, points, training, media, gateway)
  svc   that service's values: .Values.serviceDefaults overlaid with .Values.services.<name>
        (mergeOverwrite (deepCopy .Values.serviceDefaults) (deepCopy .Values.services.<name>))
*/}}

{{- define "wenming-lib.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart>, or just <release> when it already contains the chart name. */}}
{{- define "wenming-lib.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "wenming-lib.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* <fullname>-<service>; the base is cut to 50 characters so the longest service name still fits in 63. */}}
{{- define "wenming-lib.componentName" -}}
{{- printf "%s-%s" (include "wenming-lib.fullname" .root | trunc 50 | trimSuffix "-") .name -}}
{{- end -}}

{{/* The cluster DNS name of one service's Service, <fullname>-<service>.<namespace>.svc.<clusterDomain>; takes root and name. */}}
{{- define "wenming-lib.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "wenming-lib.componentName" .) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{- define "wenming-lib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object of the release carries; takes the root context. */}}
{{- define "wenming-lib.releaseLabels" -}}
helm.sh/chart: {{ include "wenming-lib.chart" . }}
app.kubernetes.io/name: {{ include "wenming-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: wenming
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selects the pods of every service of this release (gateway and peers calling each other). */}}
{{- define "wenming-lib.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "wenming-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selects one service's pods; takes the per-service context. */}}
{{- define "wenming-lib.selectorLabels" -}}
{{ include "wenming-lib.releaseSelectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "wenming-lib.labels" -}}
{{ include "wenming-lib.releaseLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "wenming-lib.serviceAccountName" -}}
{{- if .svc.serviceAccount.create -}}
{{- default (include "wenming-lib.componentName" .) .svc.serviceAccount.name -}}
{{- else -}}
{{- default "default" .svc.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "wenming-lib.image" -}}
{{- $image := .root.Values.image -}}
{{- $ref := printf "%s/%s" $image.registry $image.repository | trimPrefix "/" -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $ref $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}
