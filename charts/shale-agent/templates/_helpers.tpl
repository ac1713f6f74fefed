{{- define "shale-agent.name" -}}
{{- printf "%s-shale-agent" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shale-agent.labels" -}}
app.kubernetes.io/name: shale-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
shale.io/shard: {{ .Values.shard | quote }}
{{- end -}}

{{- define "shale-agent.serviceAccountName" -}}
{{- default (include "shale-agent.name" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/*
The sidecar container, for users to include in their shard workload:
  containers:
    - name: shard
      ...
    {{- include "shale-agent.sidecar" . | nindent 4 }}
*/}}
{{- define "shale-agent.sidecar" -}}
- name: shale-agent
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["--config", "/etc/shale/agent.yaml"]
  ports:
    - {name: http, containerPort: {{ .Values.sources.http.port }}}
  livenessProbe:
    httpGet: {path: /healthz, port: http}
    periodSeconds: 10
  readinessProbe:
    httpGet: {path: /readyz, port: http}
    periodSeconds: 5
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities: {drop: [ALL]}
  {{- if .Values.s3.credentialsSecret }}
  env:
    - name: AWS_ACCESS_KEY_ID
      valueFrom: {secretKeyRef: {name: {{ .Values.s3.credentialsSecret }}, key: AWS_ACCESS_KEY_ID}}
    - name: AWS_SECRET_ACCESS_KEY
      valueFrom: {secretKeyRef: {name: {{ .Values.s3.credentialsSecret }}, key: AWS_SECRET_ACCESS_KEY}}
  {{- end }}
  volumeMounts:
    - {name: shale-config, mountPath: /etc/shale, readOnly: true}
    - {name: {{ .Values.walVolume.name }}, mountPath: /var/lib/shale}
    {{- if .Values.sources.http.tokenSecret }}
    - {name: shale-token, mountPath: /etc/shale-token, readOnly: true}
    {{- end }}
{{- end -}}

{{/* Volumes the sidecar needs (the WAL volume comes from the workload). */}}
{{- define "shale-agent.volumes" -}}
- name: shale-config
  configMap: {name: {{ include "shale-agent.name" . }}}
{{- if .Values.sources.http.tokenSecret }}
- name: shale-token
  secret: {secretName: {{ .Values.sources.http.tokenSecret }}}
{{- end }}
{{- end -}}
