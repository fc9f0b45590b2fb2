{{/* Names, labels and checks shared by every template. */}}

{{- define "ingot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ingot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ingot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ingot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ingot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ingot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ingot
{{- end -}}

{{- define "ingot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "ingot.secretName" -}}
{{- default (printf "%s-backends" (include "ingot.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{- define "ingot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ingot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The roles, each a Deployment: values key, `--roles` name. Templates range over this list
(as YAML, since Helm 3.6 has no list-returning includes).
*/}}
{{- define "ingot.roles" -}}
roles:
  - key: ingest
    name: ingest
  - key: storeWriter
    name: store-writer
  - key: query
    name: query
{{- end -}}

{{/* The pod must outlive the preStop sleep plus Ingot's own drain. */}}
{{- define "ingot.checkGrace" -}}
{{- $needed := add .Values.preStopSleepSeconds .Values.config.shutdownGraceSeconds 5 -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $needed) -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be at least preStopSleepSeconds + config.shutdownGraceSeconds + 5 = %v, or Kubernetes kills Ingot in the middle of its drain" .Values.terminationGracePeriodSeconds $needed) -}}
{{- end -}}
{{- end -}}
