{{/*
Names. The webhook configurations are cluster-scoped and keep the fixed names
netguard's code uses (webhook.ValidatingConfigurationName and
webhook.MutatingConfigurationName): one netguard per cluster.
*/}}
{{- define "netguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "netguard.fullname" -}}
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

{{- define "netguard.validatingConfigurationName" -}}netguard-validating{{- end }}
{{- define "netguard.mutatingConfigurationName" -}}netguard-mutating{{- end }}

{{- define "netguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "netguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "netguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "netguard.labels" -}}
helm.sh/chart: {{ include "netguard.chart" . }}
{{ include "netguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: netguard
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "netguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "netguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "netguard.serviceName" -}}
{{- include "netguard.fullname" . }}
{{- end }}

{{- define "netguard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Certificates. */}}
{{- define "netguard.servingSecretName" -}}
{{- if .Values.certManager.enabled }}
{{- printf "%s-serving-cert" (include "netguard.fullname" .) }}
{{- else }}
{{- default (printf "%s-webhook-tls" (include "netguard.fullname" .)) .Values.selfManaged.secretName }}
{{- end }}
{{- end }}

{{- define "netguard.servingCertificateName" -}}
{{- printf "%s-serving" (include "netguard.fullname" .) }}
{{- end }}

{{/* Leader election: one writer, and only a single replica may go without it. */}}
{{- define "netguard.leaderElect" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "leaderElection.enabled=false needs replicaCount: 1 (got %d): replicas without leader election would all run the controllers; turn leader election on or run one replica" (int .Values.replicaCount)) }}
{{- end }}
{{- .Values.leaderElection.enabled }}
{{- end }}

{{/*
The namespaceSelector shared by both webhooks: never kube-system, never
netguard's own namespace (netguard must be able to start and heal itself), never
a namespace labelled netguard.io/ignore, never webhooks.excludedNamespaces.
Same shape as webhook.namespaceSelector in Go.
*/}}
{{- define "netguard.namespaceSelector" -}}
{{- $excluded := concat (list "kube-system" .Release.Namespace) .Values.webhooks.excludedNamespaces | uniq | sortAlpha }}
matchExpressions:
  - key: netguard.io/ignore
    operator: DoesNotExist
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- range $excluded }}
      - {{ . | quote }}
      {{- end }}
{{- end }}

{{- define "netguard.clientConfig" -}}
service:
  namespace: {{ .root.Release.Namespace }}
  name: {{ include "netguard.serviceName" .root }}
  path: {{ .path }}
  port: 443
{{- end }}

{{- define "netguard.webhookAnnotations" -}}
{{- if .Values.certManager.enabled }}
annotations:
  cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "netguard.servingCertificateName" .) }}
{{- end }}
{{- end }}

{{/* The NetguardConfiguration file; its checksum rolls the pods when it changes. */}}
{{- define "netguard.configuration" -}}
{{- $c := .Values.config -}}
apiVersion: netguard.io/v1alpha1
kind: NetguardConfiguration
{{- $file := dict "defaults" $c.defaults "exemptions" $c.exemptions "platformIdentities" $c.platformIdentities "audit" $c.audit }}
{{- with $c.admission }}{{ $_ := set $file "admission" . }}{{ end }}
{{- with $c.crossNamespace }}{{ $_ := set $file "crossNamespace" . }}{{ end }}
{{ $file | toYaml }}
{{- end }}

{{/*
Which workload writes reach the validating injection webhook: Deployments,
StatefulSets, DaemonSets, Jobs and CronJobs that carry a netguard.io
annotation, or carried one before the write (so removing the annotations is
seen). Every other workload write skips the call. Same expression as
webhook.WorkloadMatchExpression in Go.
*/}}
{{- define "netguard.workloadMatch" -}}
matchConditions:
  - name: netguard-annotated
    expression: {{ `(has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('netguard.io/'))) || (oldObject != null && has(oldObject.metadata.annotations) && oldObject.metadata.annotations.exists(k, k.startsWith('netguard.io/')))` | quote }}
rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["apps"]
    apiVersions: ["v1"]
    resources: ["deployments", "statefulsets", "daemonsets"]
    scope: Namespaced
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["batch"]
    apiVersions: ["v1"]
    resources: ["jobs", "cronjobs"]
    scope: Namespaced
{{- end }}

{{/*
The mutating webhook for kinds whose pod template is spec.template: annotated,
or the write sets the template's netguard.io/component label (checked: only
netguard may set it for a component's owner), except a Job a CronJob made.
Same expression as webhook.TemplateMatchExpression in Go.
*/}}
{{- define "netguard.templateMatch" -}}
matchConditions:
  - name: netguard-annotated-or-labelled
    expression: {{ `(has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('netguard.io/'))) || (oldObject != null && has(oldObject.metadata.annotations) && oldObject.metadata.annotations.exists(k, k.startsWith('netguard.io/'))) || ((has(object.spec) && has(object.spec.template) && has(object.spec.template.metadata) && has(object.spec.template.metadata.labels) && 'netguard.io/component' in object.spec.template.metadata.labels && (oldObject == null || !(has(oldObject.spec) && has(oldObject.spec.template) && has(oldObject.spec.template.metadata) && has(oldObject.spec.template.metadata.labels)) || !('netguard.io/component' in oldObject.spec.template.metadata.labels) || oldObject.spec.template.metadata.labels['netguard.io/component'] != object.spec.template.metadata.labels['netguard.io/component'])) && !(request.userInfo.username in ['system:kube-controller-manager', 'system:serviceaccount:kube-system:cronjob-controller', 'system:serviceaccount:kube-system:daemon-set-controller', 'system:serviceaccount:kube-system:deployment-controller', 'system:serviceaccount:kube-system:job-controller', 'system:serviceaccount:kube-system:replicaset-controller', 'system:serviceaccount:kube-system:statefulset-controller'] && has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && r.apiVersion.startsWith('batch/') && r.kind == 'CronJob')))` | quote }}
rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["apps"]
    apiVersions: ["v1"]
    resources: ["deployments", "statefulsets", "daemonsets"]
    scope: Namespaced
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["batch"]
    apiVersions: ["v1"]
    resources: ["jobs"]
    scope: Namespaced
{{- end }}

{{/*
The mutating webhook for CronJobs (pod labels in the job template). Same
expression as webhook.CronJobMatchExpression in Go.
*/}}
{{- define "netguard.cronJobMatch" -}}
matchConditions:
  - name: netguard-annotated-or-labelled
    expression: {{ `(has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('netguard.io/'))) || (oldObject != null && has(oldObject.metadata.annotations) && oldObject.metadata.annotations.exists(k, k.startsWith('netguard.io/'))) || (has(object.spec) && has(object.spec.jobTemplate) && has(object.spec.jobTemplate.spec) && has(object.spec.jobTemplate.spec.template) && has(object.spec.jobTemplate.spec.template.metadata) && has(object.spec.jobTemplate.spec.template.metadata.labels) && 'netguard.io/component' in object.spec.jobTemplate.spec.template.metadata.labels && (oldObject == null || !(has(oldObject.spec) && has(oldObject.spec.jobTemplate) && has(oldObject.spec.jobTemplate.spec) && has(oldObject.spec.jobTemplate.spec.template) && has(oldObject.spec.jobTemplate.spec.template.metadata) && has(oldObject.spec.jobTemplate.spec.template.metadata.labels)) || !('netguard.io/component' in oldObject.spec.jobTemplate.spec.template.metadata.labels) || oldObject.spec.jobTemplate.spec.template.metadata.labels['netguard.io/component'] != object.spec.jobTemplate.spec.template.metadata.labels['netguard.io/component']))` | quote }}
rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["batch"]
    apiVersions: ["v1"]
    resources: ["cronjobs"]
    scope: Namespaced
{{- end }}

{{/*
The mutating webhook for ReplicaSets: only a template label written by anyone
but the Deployment controller is checked. Same expression as
webhook.ReplicaSetMatchExpression in Go.
*/}}
{{- define "netguard.replicaSetMatch" -}}
matchConditions:
  - name: netguard-labelled
    expression: {{ `(has(object.spec) && has(object.spec.template) && has(object.spec.template.metadata) && has(object.spec.template.metadata.labels) && 'netguard.io/component' in object.spec.template.metadata.labels && (oldObject == null || !(has(oldObject.spec) && has(oldObject.spec.template) && has(oldObject.spec.template.metadata) && has(oldObject.spec.template.metadata.labels)) || !('netguard.io/component' in oldObject.spec.template.metadata.labels) || oldObject.spec.template.metadata.labels['netguard.io/component'] != object.spec.template.metadata.labels['netguard.io/component'])) && !(request.userInfo.username in ['system:kube-controller-manager', 'system:serviceaccount:kube-system:cronjob-controller', 'system:serviceaccount:kube-system:daemon-set-controller', 'system:serviceaccount:kube-system:deployment-controller', 'system:serviceaccount:kube-system:job-controller', 'system:serviceaccount:kube-system:replicaset-controller', 'system:serviceaccount:kube-system:statefulset-controller'] && has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && r.apiVersion.startsWith('apps/') && r.kind == 'Deployment'))` | quote }}
rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["apps"]
    apiVersions: ["v1"]
    resources: ["replicasets"]
    scope: Namespaced
{{- end }}

{{/*
The mutating webhook for Pods: an annotated Pod that no workload controller
made, or a Pod whose netguard.io/component label is written by anyone but the
controller that made it from a template. Every other pod write, above all the
pods of ordinary Deployments, skips the call. Same expression as
webhook.PodMatchExpression in Go.
*/}}
{{- define "netguard.podMatch" -}}
matchConditions:
  - name: netguard-annotated-or-labelled
    expression: {{ `(((has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('netguard.io/'))) || (oldObject != null && (has(oldObject.metadata.annotations) && oldObject.metadata.annotations.exists(k, k.startsWith('netguard.io/'))))) && !(has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && ((r.apiVersion.startsWith('apps/') && r.kind in ['ReplicaSet', 'StatefulSet', 'DaemonSet']) || (r.apiVersion.startsWith('batch/') && r.kind == 'Job'))))) || ((has(object.metadata) && has(object.metadata.labels) && 'netguard.io/component' in object.metadata.labels && (oldObject == null || !(has(oldObject.metadata) && has(oldObject.metadata.labels)) || !('netguard.io/component' in oldObject.metadata.labels) || oldObject.metadata.labels['netguard.io/component'] != object.metadata.labels['netguard.io/component'])) && !(request.userInfo.username in ['system:kube-controller-manager', 'system:serviceaccount:kube-system:cronjob-controller', 'system:serviceaccount:kube-system:daemon-set-controller', 'system:serviceaccount:kube-system:deployment-controller', 'system:serviceaccount:kube-system:job-controller', 'system:serviceaccount:kube-system:replicaset-controller', 'system:serviceaccount:kube-system:statefulset-controller'] && (has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && ((r.apiVersion.startsWith('apps/') && r.kind in ['ReplicaSet', 'StatefulSet', 'DaemonSet']) || (r.apiVersion.startsWith('batch/') && r.kind == 'Job'))))))` | quote }}
rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
    scope: Namespaced
{{- end }}

{{/*
The validating webhook for Pods: annotated Pods that no workload controller
made. Same expression as webhook.PodAnnotatedMatchExpression in Go.
*/}}
{{- define "netguard.podAnnotatedMatch" -}}
matchConditions:
  - name: netguard-annotated-bare-pod
    expression: {{ `((has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('netguard.io/'))) || (oldObject != null && (has(oldObject.metadata.annotations) && oldObject.metadata.annotations.exists(k, k.startsWith('netguard.io/'))))) && !(has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && ((r.apiVersion.startsWith('apps/') && r.kind in ['ReplicaSet', 'StatefulSet', 'DaemonSet']) || (r.apiVersion.startsWith('batch/') && r.kind == 'Job'))))` | quote }}
rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
    scope: Namespaced
{{- end }}

{{/*
The username netguard's requests carry: its ServiceAccount's.
*/}}
{{- define "netguard.selfUsername" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "netguard.serviceAccountName" . }}
{{- end }}

{{/*
The report formats of --audit-reports, comma-separated; empty when off.
*/}}
{{- define "netguard.reportFormats" -}}
{{- $f := list }}
{{- if .Values.reports.openreports }}{{ $f = append $f "openreports" }}{{ end }}
{{- if .Values.reports.policyReports }}{{ $f = append $f "policyreports" }}{{ end }}
{{- join "," $f }}
{{- end }}
