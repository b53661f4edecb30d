{{- define "stevedore.labels" -}}
app.kubernetes.io/name: stevedore
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "stevedore.operator.name" -}}
{{ .Release.Name }}-operator
{{- end }}

{{- define "stevedore.pullCredentials.serving" -}}
{{ include "stevedore.operator.name" . }}-serving
{{- end }}

{{- define "stevedore.pullCredentials.ca" -}}
{{ .Release.Name }}-pull-credentials-ca
{{- end }}

{{- /* The API server's address where the Service proxy cannot give it (kubernetesServiceHost/Port). */ -}}
{{- define "stevedore.apiServerEnv" -}}
{{- with .Values.kubernetesServiceHost }}
- name: KUBERNETES_SERVICE_HOST
  value: {{ . | quote }}
{{- end }}
{{- with .Values.kubernetesServicePort }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{- /* Prometheus' scrape annotations of a Pod serving /metrics on the given port (metrics.podAnnotations). */ -}}
{{- define "stevedore.scrapeAnnotations" -}}
{{- if and .root.Values.metrics.podAnnotations (gt (int .port) 0) }}
annotations:
  prometheus.io/scrape: "true"
  prometheus.io/port: {{ .port | quote }}
  prometheus.io/path: /metrics
{{- end }}
{{- end }}
