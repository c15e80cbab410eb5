{{/*
The fleet's Prometheus alerting rules, defined once: templates/alerts.yaml puts them in a
PrometheusRule (Prometheus Operator) or in a ConfigMap as a plain rules.yaml. docs/deploy.md
("Alerts and dashboard") says what each one means, its defaults and why.

Every expression names only metrics that backend/metrics.py and emulator/metrics.py export
(tests/deploy/test_alerts.py checks that, and runs promtool's unit tests of every alert).

Instance names: the metrics carry the emulator's name in a label called "instance", which
Prometheus renames to "exported_instance" when it scrapes without honor_labels (it puts the
target's address in "instance"). The annotations print whichever is set, so the rules read
the same either way.
*/}}

{{/* A rule's for, labels and runbook link: dict "root" "cfg" (the alert's values) "name". */}}
{{- define "loco.alerts.common" -}}
for: {{ .cfg.for }}
labels:
  {{- toYaml (merge (dict) (.cfg.labels | default dict) (dict "severity" .cfg.severity) (.root.Values.alerts.labels | default dict)) | nindent 2 }}
{{- end -}}

{{- define "loco.alerts.runbook" -}}
runbook_url: {{ printf "%sdocs/deploy.md#%s" .root.Values.alerts.docsUrl (lower .name) | quote }}
{{- end -}}

{{- define "loco.alerts.groups" -}}
{{- $a := .Values.alerts -}}
{{- /* Every selector is limited to this release's namespace (when the label exists), so two
releases in one Prometheus do not alert for each other's emulators. $s: a whole selector,
$c: the same matcher to append to other matchers. */ -}}
{{- $s := "" -}}
{{- $c := "" -}}
{{- with $a.namespaceLabel -}}
{{- $s = printf "{%s=%q}" . $.Release.Namespace -}}
{{- $c = printf ", %s=%q" . $.Release.Namespace -}}
{{- end -}}
{{- /* Prometheus template snippets for the annotations. */ -}}
{{- $name := "{{ or $labels.exported_instance $labels.instance }}" -}}
{{- $target := "{{ $labels.target }}" -}}
{{- $backend := "{{ $labels.instance }}" -}}
{{- $fps := "{{ $value | printf \"%.1f\" }}" -}}
{{- $ago := "{{ $value | humanizeDuration }}" -}}
{{- $e := $a.emulatorDown -}}
{{- $u := $a.emulatorUnready -}}
{{- $f := $a.frameRateCollapsed -}}
{{- $b := $a.breakerOpen -}}
{{- $d := $a.discoveryStale -}}
{{- $n := $a.needsPerson -}}
{{- $o := $a.pauseOverdue -}}
{{- $p := $a.pausedOpenEnded -}}
groups:
{{- if or $e.enabled $u.enabled $f.enabled }}
  - name: lego-loco.emulators
    rules:
      {{- if $e.enabled }}
      - alert: LocoEmulatorDown
        # QEMU neither runs nor answers QMP. The supervisor restarts a crashed QEMU within
        # seconds (backoff up to 30 s), so minutes of this are a crash loop, a QEMU that
        # cannot start, or a supervisor that gave up.
        expr: |-
          loco_emulator_qemu_up{{ $s }} == 0
        {{- include "loco.alerts.common" (dict "root" $ "cfg" $e) | nindent 8 }}
        annotations:
          summary: {{ printf "Emulator %s: QEMU has been down for %s" $name $e.for | quote }}
          description: {{ printf "QEMU of %s has not been running (or not answering QMP) for %s. The supervisor restarts it with backoff and gives up after emulator.maxRestarts failures in a row; its /health and log say why (qemu.last_exit)." $name $e.for | quote }}
          {{- include "loco.alerts.runbook" (dict "root" $ "name" "LocoEmulatorDown") | nindent 10 }}
      {{- end }}
      {{- if $u.enabled }}
      - alert: LocoEmulatorUnready
        # Running, but not healthy: starting, degraded (no live picture, a blank screen, the
        # base image replaced) or unhealthy (guest paused, disk error). Not while QEMU is
        # down: LocoEmulatorDown says that.
        expr: |-
          loco_emulator_health_state{loco_emulator_health_state="healthy"{{ $c }}} == 0
          unless ignoring(loco_emulator_health_state)
          loco_emulator_qemu_up{{ $s }} == 0
        {{- include "loco.alerts.common" (dict "root" $ "cfg" $u) | nindent 8 }}
        annotations:
          summary: {{ printf "Emulator %s has not been healthy for %s" $name $u.for | quote }}
          description: {{ printf "%s runs but its supervisor has reported it starting, degraded or unhealthy for %s. The reasons are in its /health, and in locotui (enter: detail, L: logs)." $name $u.for | quote }}
          {{- include "loco.alerts.runbook" (dict "root" $ "name" "LocoEmulatorUnready") | nindent 10 }}
      {{- end }}
      {{- if $f.enabled }}
      - alert: LocoEmulatorFrameRateCollapsed
        # Below belowFps for the whole window, after a baseline whose median was at least
        # normalFps, while QEMU runs. Compared with the emulator's own past because an idle
        # Windows 98 desktop legitimately draws about a frame a minute: it never has that
        # baseline, while Lego Loco, which animates all the time, does.
        expr: |-
          max_over_time(loco_emulator_fps{{ $s }}[{{ $f.window }}]) < {{ $f.belowFps }}
          and
          quantile_over_time(0.5, loco_emulator_fps{{ $s }}[{{ $f.baseline }}] offset {{ $f.window }}) >= {{ $f.normalFps }}
          and
          loco_emulator_qemu_up{{ $s }} == 1
        {{- include "loco.alerts.common" (dict "root" $ "cfg" $f) | nindent 8 }}
        annotations:
          summary: {{ printf "Emulator %s: frame rate collapsed to %s frames/s" $name $fps | quote }}
          description: {{ printf "%s has drawn at most %s frames/s for %s, after a median of %v or more in the %s before, and QEMU is running: the game has stopped (crashed to the desktop, an error dialog) or the guest is starved of CPU. A picture that stays still is also what the recovery policy resets as frozen." $name $fps $f.window $f.normalFps $f.baseline | quote }}
          {{- include "loco.alerts.runbook" (dict "root" $ "name" "LocoEmulatorFrameRateCollapsed") | nindent 10 }}
      {{- end }}
{{- end }}
{{- if or $b.enabled $d.enabled }}
  - name: lego-loco.backend
    rules:
      {{- if $b.enabled }}
      - alert: LocoBreakerOpen
        # "Not closed" rather than "open": a dead target's breaker alternates between open
        # and a half-open trial, and a scrape of the trial must not restart the wait. The
        # Kubernetes API's breaker is left to LocoDiscoveryStale.
        expr: |-
          loco_backend_circuit_breaker_state{loco_backend_circuit_breaker_state="closed", target!="kubernetes-api"{{ $c }}} == 0
        {{- include "loco.alerts.common" (dict "root" $ "cfg" $b) | nindent 8 }}
        annotations:
          summary: {{ printf "The backend cannot reach the supervisor of %s" $target | quote }}
          description: {{ printf "The backend's circuit breaker for %s has not been closed for %s: its /health probes keep failing (pod gone or not scheduled, network, a hung supervisor). The console shows its last-known data, marked stale." $target $b.for | quote }}
          {{- include "loco.alerts.runbook" (dict "root" $ "name" "LocoBreakerOpen") | nindent 10 }}
      {{- end }}
      {{- if $d.enabled }}
      - alert: LocoDiscoveryStale
        # Out of contact with the API server, or no full list (done every resync, 5 min by
        # default) for maxSyncAgeSeconds. Only Kubernetes discovery lists on a schedule.
        expr: |-
          loco_backend_discovery_up{{ $s }} == 0
          or
          time() - loco_backend_discovery_last_sync_timestamp_seconds{source="kubernetes"{{ $c }}} > {{ $d.maxSyncAgeSeconds | int }}
        {{- include "loco.alerts.common" (dict "root" $ "cfg" $d) | nindent 8 }}
        annotations:
          summary: {{ printf "The backend's view of the fleet is stale (backend %s)" $backend | quote }}
          description: {{ printf "The backend has been out of contact with the Kubernetes API, or has not completed a full list of the emulator pods for %s s, for %s: new, moved and deleted pods go unseen, and the console and the recovery policy work from last-known data. Its log (backend.discovery) and /ready say why: RBAC, the API server, the network." ($d.maxSyncAgeSeconds | int | toString) $d.for | quote }}
          {{- include "loco.alerts.runbook" (dict "root" $ "name" "LocoDiscoveryStale") | nindent 10 }}
      {{- end }}
{{- end }}
{{- if or $n.enabled $o.enabled $p.enabled }}
  - name: lego-loco.remediation
    rules:
      {{- if $n.enabled }}
      - alert: LocoRemediationNeedsPerson
        # The policy's last rung: it already waited out a reset and a restart (or spent the
        # instance's hourly budget), so there is nothing to wait for. Only the leading
        # replica's word counts: a replica that lost the Lease keeps its last figures.
        # (ignoring: both series come from the same backend, but with honor_labels the
        # instance label of needs_person is the emulator's name, not the target's.)
        expr: |-
          loco_remediation_needs_person{{ $s }} == 1
          and ignoring(instance, exported_instance)
          loco_remediation_leader{{ $s }} == 1
        {{- include "loco.alerts.common" (dict "root" $ "cfg" $n) | nindent 8 }}
        annotations:
          summary: {{ printf "The automatic recovery gave up on %s: it needs a person" $name | quote }}
          description: {{ printf "A reset and a restart did not make %s good again (or it needed more actions in an hour than the budget allows), so the recovery policy stopped acting on it. Look at it in locotui (enter: detail, L: logs); the policy watches it again once it has stayed good. docs/recovery.md describes the ladder." $name | quote }}
          {{- include "loco.alerts.runbook" (dict "root" $ "name" "LocoRemediationNeedsPerson") | nindent 10 }}
      {{- end }}
      {{- if $o.enabled }}
      - alert: LocoRemediationPauseOverdue
        # A pause with a planned end is lifted by the leader's next evaluation; still paused
        # graceSeconds after that end, something is wrong with the loop or the leadership.
        expr: |-
          time() - loco_remediation_pause_until_timestamp_seconds{{ $s }} > {{ $o.graceSeconds | int }}
          and
          loco_remediation_pause_until_timestamp_seconds{{ $s }} > 0
          and
          loco_remediation_paused{{ $s }} == 1
        {{- include "loco.alerts.common" (dict "root" $ "cfg" $o) | nindent 8 }}
        annotations:
          summary: {{ printf "The automatic recovery is still paused %s after its planned end" $ago | quote }}
          description: {{ printf "The recovery policy was paused until a planned time that passed %s ago, and it is still paused (backend %s), so nothing is being reset or restarted automatically. A planned pause ends at the leading replica's next evaluation: check that this replica leads and that its log shows the policy running, then resume it." $ago $backend | quote }}
          {{- include "loco.alerts.runbook" (dict "root" $ "name" "LocoRemediationPauseOverdue") | nindent 10 }}
      {{- end }}
      {{- if $p.enabled }}
      - alert: LocoRemediationPausedOpenEnded
        # An open-ended pause (no planned end) that outlived maxSeconds was probably
        # forgotten after the work it was meant for.
        expr: |-
          time() - loco_remediation_paused_since_timestamp_seconds{{ $s }} > {{ $p.maxSeconds | int }}
          and
          loco_remediation_pause_until_timestamp_seconds{{ $s }} == 0
          and
          loco_remediation_paused{{ $s }} == 1
        {{- include "loco.alerts.common" (dict "root" $ "cfg" $p) | nindent 8 }}
        annotations:
          summary: {{ printf "The automatic recovery has been paused for %s, with no planned end" $ago | quote }}
          description: {{ printf "The recovery policy was paused %s ago without an end (backend %s) and nothing has resumed it: no instance is being reset or restarted automatically. Resume it if the work it was paused for is done, or pause it again with a planned end." $ago $backend | quote }}
          {{- include "loco.alerts.runbook" (dict "root" $ "name" "LocoRemediationPausedOpenEnded") | nindent 10 }}
      {{- end }}
{{- end }}
{{- end -}}

{{/*
Whether to render a PrometheusRule: alerts.prometheusRule true or false, or "auto" (the
default): when the cluster serves the Prometheus Operator's PrometheusRule kind.
*/}}
{{- define "loco.alerts.operator" -}}
{{- $mode := .Values.alerts.prometheusRule -}}
{{- if eq (toString $mode) "auto" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/PrometheusRule" }}true{{ end -}}
{{- else if $mode -}}
true
{{- end -}}
{{- end -}}
