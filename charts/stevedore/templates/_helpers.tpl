{{- define "stevedore.labels" -}}
app.kubernetes.io/name: stevedore
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "stevedore.operator.name" -}}
{{ .Release.Name }}-operator
{{- end }}
