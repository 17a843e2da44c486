{{- define "wenming-lib.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "wenming-lib.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "wenming-lib.labels" . | nindent 4 }}
  {{- with .svc.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .svc.service.type }}
  selector:
    {{- include "wenming-lib.selectorLabels" . | nindent 4 }}
  ports:
    {{- if .svc.grpc.enabled }}
    - name: grpc
      port: 50051
      targetPort: grpc
      protocol: TCP
      appProtocol: kubernetes.io/h2c
    {{- end }}
    - name: http
      port: 8080
      targetPort: http
      protocol: TCP
      appProtocol: http
{{- end -}}

{{- define "wenming-lib.serviceAccount" -}}
{{- if .svc.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "wenming-lib.serviceAccountName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "wenming-lib.labels" . | nindent 4 }}
  {{- with .svc.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# the services never call the Kubernetes API
automountServiceAccountToken: false
{{- end -}}
{{- end -}}
