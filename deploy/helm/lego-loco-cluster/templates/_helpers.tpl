{{/*
Names. Objects are named <namePrefix>-<part>, e.g. loco-emulator, loco-backend.
*/}}
{{- define "loco.name" -}}
{{- printf "%s-%s" .root.Values.namePrefix .part | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "loco.emulator.name" -}}
{{- include "loco.name" (dict "root" . "part" "emulator") -}}
{{- end -}}

{{- define "loco.backend.name" -}}
{{- include "loco.name" (dict "root" . "part" "backend") -}}
{{- end -}}

{{- define "loco.controlToken.secretName" -}}
{{- if .Values.controlToken.existingSecret -}}
{{- .Values.controlToken.existingSecret -}}
{{- else -}}
{{- include "loco.name" (dict "root" . "part" "control-token") -}}
{{- end -}}
{{- end -}}

{{- define "loco.controlToken.secretKey" -}}
{{- if .Values.controlToken.existingSecret -}}
{{- .Values.controlToken.existingSecretKey -}}
{{- else -}}
token
{{- end -}}
{{- end -}}

{{/* Where both programs find the control token (LOCO_CONTROL_TOKEN_FILE). */}}
{{- define "loco.controlToken.dir" -}}/run/secrets/lego-loco{{- end -}}
{{- define "loco.controlToken.file" -}}{{ include "loco.controlToken.dir" . }}/token{{- end -}}

{{/* Image tags: the chart's appVersion unless set; a digest wins over the tag. */}}
{{- define "loco.imageTag" -}}
{{- .image.tag | default .root.Chart.AppVersion -}}
{{- end -}}

{{- define "loco.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (include "loco.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/* A label value: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends. */}}
{{- define "loco.labelValue" -}}
{{- regexReplaceAll "[^A-Za-z0-9._-]" . "_" | trunc 63 | trimAll "_.-" -}}
{{- end -}}

{{/*
Labels every object carries. The contract labels (component, part-of, name) come from the
per-component helpers below.
*/}}
{{- define "loco.commonLabels" -}}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/*
The emulator contract (seed task 1.3, DESIGN.md): the backend discovers pods with
component=emulator,part-of=lego-loco-cluster. Never change these three.
*/}}
{{- define "loco.emulator.contractLabels" -}}
app.kubernetes.io/component: emulator
app.kubernetes.io/part-of: lego-loco-cluster
app.kubernetes.io/name: lego-loco-emulator
{{- end -}}

{{/* The StatefulSet's selector: immutable, so it never carries a version. */}}
{{- define "loco.emulator.selectorLabels" -}}
{{ include "loco.emulator.contractLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of emulator pods: the selector labels plus the version they run. */}}
{{- define "loco.emulator.podLabels" -}}
{{ include "loco.emulator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "loco.labelValue" (include "loco.imageTag" (dict "image" .Values.emulator.image "root" .)) | quote }}
{{- end -}}

{{- define "loco.emulator.labels" -}}
{{ include "loco.emulator.selectorLabels" . }}
{{ include "loco.commonLabels" . }}
app.kubernetes.io/version: {{ include "loco.labelValue" (include "loco.imageTag" (dict "image" .Values.emulator.image "root" .)) | quote }}
{{- end -}}

{{- define "loco.backend.selectorLabels" -}}
app.kubernetes.io/component: backend
app.kubernetes.io/part-of: lego-loco-cluster
app.kubernetes.io/name: lego-loco-backend
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "loco.backend.podLabels" -}}
{{ include "loco.backend.selectorLabels" . }}
app.kubernetes.io/version: {{ include "loco.labelValue" (include "loco.imageTag" (dict "image" .Values.backend.image "root" .)) | quote }}
{{- end -}}

{{- define "loco.backend.labels" -}}
{{ include "loco.backend.selectorLabels" . }}
{{ include "loco.commonLabels" . }}
app.kubernetes.io/version: {{ include "loco.labelValue" (include "loco.imageTag" (dict "image" .Values.backend.image "root" .)) | quote }}
{{- end -}}

{{/* Labels of objects that belong to the whole release (Secret, operator Roles). */}}
{{- define "loco.labels" -}}
app.kubernetes.io/part-of: lego-loco-cluster
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "loco.labelValue" .Chart.AppVersion | quote }}
{{ include "loco.commonLabels" . }}
{{- end -}}

{{/*
Extra pod labels from values, with the chart's own labels winning: renders a YAML map.
Usage: include "loco.mergeLabels" (list .Values.emulator.podLabels (include "loco.emulator.podLabels" .))
*/}}
{{- define "loco.mergeLabels" -}}
{{- $extra := index . 0 | default dict -}}
{{- $own := index . 1 | fromYaml -}}
{{- toYaml (merge (dict) $own $extra) -}}
{{- end -}}

{{/* Profile defaults, the same as the supervisor's (emulator/config.py). */}}
{{- define "loco.emulator.memoryMB" -}}
{{- if kindIs "invalid" .Values.emulator.memoryMB -}}
{{- if eq .Values.emulator.profile "win98" -}}256{{- else -}}32{{- end -}}
{{- else -}}
{{- .Values.emulator.memoryMB | int -}}
{{- end -}}
{{- end -}}

{{- define "loco.emulator.shutdownGrace" -}}
{{- if kindIs "invalid" .Values.emulator.shutdownGraceSeconds -}}
{{- if eq .Values.emulator.profile "win98" -}}15{{- else -}}0.5{{- end -}}
{{- else -}}
{{- .Values.emulator.shutdownGraceSeconds -}}
{{- end -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: more than the ACPI grace, so QEMU can finish. */}}
{{- define "loco.emulator.terminationGrace" -}}
{{- $grace := include "loco.emulator.shutdownGrace" . | float64 -}}
{{- $t := .Values.emulator.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $t -}}
{{- add (ceil $grace | int) .Values.emulator.shutdownMarginSeconds -}}
{{- else -}}
{{- if le ($t | float64) $grace -}}
{{- fail (printf "emulator.terminationGracePeriodSeconds=%v must be greater than the ACPI shutdown grace (%v s, emulator.shutdownGraceSeconds), or the kubelet kills QEMU while Windows shuts down" $t $grace) -}}
{{- end -}}
{{- $t | int -}}
{{- end -}}
{{- end -}}

{{- define "loco.emulator.diskImagePath" -}}
{{- $d := .Values.emulator.diskImage -}}
{{- if eq $d.source "testimage" -}}
{{- printf "%s/test.img" $d.mountPath -}}
{{- else -}}
{{- printf "%s/%s" $d.mountPath $d.file -}}
{{- end -}}
{{- end -}}

{{- define "loco.logLevel" -}}
{{- .level | default .root.Values.logLevel -}}
{{- end -}}

{{/* Pod-level securityContext shared by both workloads. */}}
{{- define "loco.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .Values.securityContext.fsGroup }}
fsGroup: {{ . }}
fsGroupChangePolicy: OnRootMismatch
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level securityContext shared by every container. */}}
{{- define "loco.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* An httpGet probe: dict "path" "port" "p" (the timing values). */}}
{{- define "loco.probe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
initialDelaySeconds: {{ .p.initialDelaySeconds }}
periodSeconds: {{ .p.periodSeconds }}
timeoutSeconds: {{ .p.timeoutSeconds }}
failureThreshold: {{ .p.failureThreshold }}
successThreshold: {{ .p.successThreshold }}
{{- end -}}

{{/*
Memory check: the guest's RAM plus QEMU's own overhead must fit in the memory limit, or
the kernel OOM-kills QEMU. Checked when the limit is written in Mi or Gi.
*/}}
{{- define "loco.emulator.checkMemory" -}}
{{- $limit := "" -}}
{{- with .Values.emulator.resources.limits -}}{{- $limit = toString (.memory | default "") -}}{{- end -}}
{{- $mib := 0 -}}
{{- if regexMatch "^[0-9]+Gi$" $limit -}}
{{- $mib = mul (trimSuffix "Gi" $limit | int) 1024 -}}
{{- else if regexMatch "^[0-9]+Mi$" $limit -}}
{{- $mib = trimSuffix "Mi" $limit | int -}}
{{- end -}}
{{- $guest := include "loco.emulator.memoryMB" . | int -}}
{{- if and (gt $mib 0) (gt (add $guest 256) $mib) -}}
{{- fail (printf "emulator.memoryMB=%d does not fit in emulator.resources.limits.memory=%s: QEMU needs the guest's memory plus about 256 MiB; raise the limit to at least %dMi" $guest $limit (add $guest 256)) -}}
{{- end -}}
{{- end -}}

{{/* The Lease the backend replicas elect the acting one through. */}}
{{- define "loco.remediation.leaseName" -}}
{{- .Values.backend.remediation.leaseName | default (include "loco.name" (dict "root" . "part" "remediation")) -}}
{{- end -}}

{{/* backend.remediation.thresholds as LOCO_REMEDIATION_THRESHOLDS: PROFILE.KEY=SECONDS,... */}}
{{- define "loco.remediation.thresholds" -}}
{{- $pairs := list -}}
{{- range $profile, $keys := . -}}
{{- range $key, $seconds := $keys -}}
{{- $pairs = append $pairs (printf "%s.%s=%v" $profile $key $seconds) -}}
{{- end -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
