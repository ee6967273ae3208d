{{/* Chart name. */}}
{{- define "paved.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already contains the chart name (release `paved` → `paved`). */}}
{{- define "paved.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "paved.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "paved.selectorLabels" -}}
app.kubernetes.io/name: {{ include "paved.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "paved.labels" -}}
helm.sh/chart: {{ include "paved.chart" . }}
{{ include "paved.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: paved
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "paved.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "paved.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: tag defaults to appVersion; `latest` is refused. */}}
{{- define "paved.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag | toString }}
{{- if eq $tag "latest" }}
{{- fail "image.tag: `latest` is not allowed; pin a version (the default is the chart's appVersion)" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* RBAC rules of the namespaced kinds: in the ClusterRole, or in each watched namespace's Role. */}}
{{- define "paved.namespacedRules.claims" -}}
# Claims: watched; paved patches its finalizer in and out and writes status.
- apiGroups: [database.example.com]
  resources: [postgresqlinstances]
  verbs: [get, list, watch, patch]
- apiGroups: [database.example.com]
  resources: [postgresqlinstances/status]
  verbs: [patch]
# Composed objects and claim Secrets carry an owner reference to the claim with
# blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement admission plugin (where
# enabled) allows only with update on the owner's finalizers.
- apiGroups: [database.example.com]
  resources: [postgresqlinstances/finalizers]
  verbs: [update]
{{- end }}

{{- define "paved.namespacedRules.instances" -}}
# RDS Instances (and their namespaced twins, rds.aws.m.upbound.io): composed (server-side apply) and deleted by the claim controller, reconciled by
# the RDS controller (finalizer and external-name annotation by patch, status by apply).
- apiGroups: [rds.aws.upbound.io, rds.aws.m.upbound.io]
  resources: [instances]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [rds.aws.upbound.io, rds.aws.m.upbound.io]
  resources: [instances/status]
  verbs: [patch]
# The master-password Secret is owned by its Instance (blockOwnerDeletion, as above).
- apiGroups: [rds.aws.upbound.io, rds.aws.m.upbound.io]
  resources: [instances/finalizers]
  verbs: [update]
# The network kinds (DB subnet groups, parameter groups, security groups and their rules):
# composed and deleted by the claim controller, reconciled by the managed-resource controller
# (finalizer, external-name and resolved references by patch, status by apply).
- apiGroups: [rds.aws.upbound.io, rds.aws.m.upbound.io]
  resources: [subnetgroups, parametergroups]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [rds.aws.upbound.io, rds.aws.m.upbound.io]
  resources: [subnetgroups/status, parametergroups/status]
  verbs: [patch]
- apiGroups: [ec2.aws.upbound.io, ec2.aws.m.upbound.io]
  resources: [securitygroups, securitygrouprules]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [ec2.aws.upbound.io, ec2.aws.m.upbound.io]
  resources: [securitygroups/status, securitygrouprules/status]
  verbs: [patch]
{{- end }}

{{- define "paved.namespacedRules.rest" -}}
# Connection and master-password Secrets.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, delete]
# Events on claims and Instances (kube-runtime's recorder writes events.k8s.io/v1 only).
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{- define "paved.namespacedRules.extra" -}}
{{- range .Values.rbac.extraComposedResources }}
# Extra composed kinds (values rbac.extraComposedResources).
- apiGroups: [{{ .apiGroup | quote }}]
  resources: {{ toJson .resources }}
  verbs: [get, list, watch, create, patch, delete]
{{- end }}
{{- end }}
