{{/*
Every helper works from this chart's own templates and from a parent
chart that depends on this one (dependency name "shale-agent", no alias):
there `.Values` is the parent's, and this chart's values are
`.Values.shale-agent` (Helm merges this chart's defaults into them).
*/}}
{{- define "shale-agent.v" -}}
{{- if hasKey .Values "shale-agent" -}}
{{- toYaml (index .Values "shale-agent") -}}
{{- else -}}
{{- toYaml .Values -}}
{{- end -}}
{{- end -}}

{{- define "shale-agent.name" -}}
{{- printf "%s-shale-agent" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shale-agent.labels" -}}
{{- $v := include "shale-agent.v" . | fromYaml -}}
app.kubernetes.io/name: shale-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ $v.image.tag | quote }}
shale.io/shard: {{ $v.shard | quote }}
{{- end -}}

{{- define "shale-agent.serviceAccountName" -}}
{{- $v := include "shale-agent.v" . | fromYaml -}}
{{- default (include "shale-agent.name" .) $v.serviceAccount.name -}}
{{- end -}}

{{/* The namespace the agent watches; its Role and RoleBinding go there. */}}
{{- define "shale-agent.watchNamespace" -}}
{{- $v := include "shale-agent.v" . | fromYaml -}}
{{- default .Release.Namespace $v.sources.kubernetes.namespace -}}
{{- end -}}

{{/* "true" when the HTTP API listens beyond loopback (token, NetworkPolicy, probes). */}}
{{- define "shale-agent.exposed" -}}
{{- $v := include "shale-agent.v" . | fromYaml -}}
{{- $a := toString $v.sources.http.address -}}
{{- if and $v.sources.http.enabled (not (or (hasPrefix "127." $a) (eq $a "::1") (eq $a "localhost"))) -}}
true
{{- end -}}
{{- end -}}

{{/* The Secret holding the API's bearer token ("" for none). */}}
{{- define "shale-agent.tokenSecret" -}}
{{- $v := include "shale-agent.v" . | fromYaml -}}
{{- $t := $v.sources.http.tokenSecret -}}
{{- if and $v.sources.http.enabled $t.name -}}
{{- $t.name -}}
{{- else if include "shale-agent.exposed" . -}}
{{- if not $t.create -}}
{{- fail (printf "sources.http: listening on %s needs a bearer token: set sources.http.tokenSecret.create=true or sources.http.tokenSecret.name" $v.sources.http.address) -}}
{{- end -}}
{{- printf "%s-token" (include "shale-agent.name" .) -}}
{{- end -}}
{{- end -}}

{{/* The agent config (docs/agent-config.md); the ConfigMap holds it and the
checksum annotation is its hash.  No credentials here. */}}
{{- define "shale-agent.config" -}}
{{- $v := include "shale-agent.v" . | fromYaml -}}
{{- $http := $v.sources.http -}}
{{- $ca := $v.s3.caBundle -}}
{{- if and $ca.configMap $ca.secret -}}
{{- fail "s3.caBundle: set configMap or secret, not both" -}}
{{- end -}}
shard: {{ required "shard is required" $v.shard | quote }}
store:
  uri: {{ required "store.uri is required" $v.store.uri | quote }}
  walUri: {{ $v.store.walUri | quote }}
s3:
  endpoint: {{ $v.s3.endpoint | quote }}
  region: {{ $v.s3.region | quote }}
  pathStyle: {{ $v.s3.pathStyle }}
  {{- if or $ca.configMap $ca.secret }}
  caFile: {{ printf "/etc/shale-ca/%s" $ca.key | quote }}
  {{- end }}
sources:
  local: {enabled: {{ $v.sources.local.enabled }}, dir: {{ $v.sources.local.dir | quote }}}
  http:
    enabled: {{ $http.enabled }}
    listen: {{ printf "%s:%v" (toString $http.address) $http.port | quote }}
    {{- if include "shale-agent.tokenSecret" . }}
    tokenFile: {{ printf "/etc/shale-token/%s" $http.tokenSecret.key | quote }}
    {{- end }}
  kubernetes:
    enabled: {{ $v.sources.kubernetes.enabled }}
    namespace: {{ include "shale-agent.watchNamespace" . | quote }}
    labelSelector: {{ default (printf "shale.io/shard=%s" $v.shard) $v.sources.kubernetes.labelSelector | quote }}
logLevel: {{ $v.logLevel }}
verify:
  mode: {{ $v.verify.mode }}
  cacheMiB: {{ $v.verify.cacheMiB }}
  pieceMiB: {{ $v.verify.pieceMiB }}
  metadataMiB: {{ $v.verify.metadataMiB }}
  threads: {{ $v.verify.threads }}
{{- end -}}

{{/*
Annotations for the shard's pod template: a change of the agent config
rolls the pod.
  template:
    metadata:
      annotations:
        {{- include "shale-agent.podAnnotations" . | nindent 8 }}
*/}}
{{- define "shale-agent.podAnnotations" -}}
checksum/shale-agent-config: {{ include "shale-agent.config" . | sha256sum }}
{{- end -}}

{{/*
The sidecar container, for users to include in their shard workload:
  containers:
    - name: shard
      ...
    {{- include "shale-agent.sidecar" . | nindent 4 }}
*/}}
{{- define "shale-agent.sidecar" -}}
{{- $v := include "shale-agent.v" . | fromYaml -}}
{{- $http := $v.sources.http -}}
{{- $s3 := $v.s3 -}}
{{- $token := include "shale-agent.tokenSecret" . -}}
- name: shale-agent
  image: "{{ $v.image.repository }}:{{ $v.image.tag }}"
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args: ["--config", "/etc/shale/agent.yaml"]
  {{- if $http.enabled }}
  ports:
    - {name: shale-http, containerPort: {{ $http.port }}, protocol: TCP}
  {{- end }}
  {{- if include "shale-agent.exposed" . }}
  livenessProbe:
    httpGet: {path: /healthz, port: shale-http}
    timeoutSeconds: {{ $v.probes.timeoutSeconds }}
    periodSeconds: {{ $v.probes.livenessPeriodSeconds }}
    failureThreshold: {{ $v.probes.failureThreshold }}
  readinessProbe:
    httpGet: {path: /readyz, port: shale-http}
    timeoutSeconds: {{ $v.probes.timeoutSeconds }}
    periodSeconds: {{ $v.probes.readinessPeriodSeconds }}
  {{- end }}
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities: {drop: [ALL]}
    seccompProfile: {type: RuntimeDefault}
  {{- if or $s3.credentialsSecret $s3.sessionTokenKey }}
  {{- if not $s3.credentialsSecret }}
  {{- fail "s3.sessionTokenKey needs s3.credentialsSecret" }}
  {{- end }}
  env:
    - name: AWS_ACCESS_KEY_ID
      valueFrom: {secretKeyRef: {name: {{ $s3.credentialsSecret }}, key: AWS_ACCESS_KEY_ID}}
    - name: AWS_SECRET_ACCESS_KEY
      valueFrom: {secretKeyRef: {name: {{ $s3.credentialsSecret }}, key: AWS_SECRET_ACCESS_KEY}}
    {{- if $s3.sessionTokenKey }}
    - name: AWS_SESSION_TOKEN
      valueFrom: {secretKeyRef: {name: {{ $s3.credentialsSecret }}, key: {{ $s3.sessionTokenKey }}}}
    {{- end }}
  {{- end }}
  volumeMounts:
    - {name: shale-config, mountPath: /etc/shale, readOnly: true}
    - {name: {{ $v.walVolume.name }}, mountPath: /var/lib/shale}
    {{- if $token }}
    - {name: shale-token, mountPath: /etc/shale-token, readOnly: true}
    {{- end }}
    {{- if or $s3.caBundle.configMap $s3.caBundle.secret }}
    - {name: shale-ca, mountPath: /etc/shale-ca, readOnly: true}
    {{- end }}
{{- end -}}

{{/* Volumes the sidecar needs (the WAL volume comes from the workload). */}}
{{- define "shale-agent.volumes" -}}
{{- $v := include "shale-agent.v" . | fromYaml -}}
{{- $ca := $v.s3.caBundle -}}
{{- $token := include "shale-agent.tokenSecret" . -}}
- name: shale-config
  configMap: {name: {{ include "shale-agent.name" . }}}
{{- if $token }}
- name: shale-token
  secret: {secretName: {{ $token }}}
{{- end }}
{{- if $ca.configMap }}
- name: shale-ca
  configMap: {name: {{ $ca.configMap }}}
{{- else if $ca.secret }}
- name: shale-ca
  secret: {secretName: {{ $ca.secret }}}
{{- end }}
{{- end -}}
