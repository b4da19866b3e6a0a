{{/* The chart's name. */}}
{{- define "breakwater.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The objects' name: the release name, with the chart's name unless it already has it. */}}
{{- define "breakwater.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods. */}}
{{- define "breakwater.selectorLabels" -}}
app.kubernetes.io/name: {{ include "breakwater.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "breakwater.labels" -}}
{{ include "breakwater.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "breakwater.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "breakwater.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The container port, from config.http.listen (the daemon's default is
"127.0.0.1:8080", which the chart refuses). The listener must be on every
interface, or the kubelet's probes and the Service could not reach it.
*/}}
{{- define "breakwater.port" -}}
{{- $listen := "127.0.0.1:8080" -}}
{{- $http := .Values.config.http | default dict -}}
{{- if hasKey $http "listen" -}}{{- $listen = $http.listen | toString -}}{{- end -}}
{{- if not (regexMatch "^(0\\.0\\.0\\.0|\\[::\\])?:[0-9]+$" $listen) -}}
{{- fail (printf "config.http.listen %q: the chart needs the listener on every interface, as \":PORT\", for the probes, the Service and Prometheus" $listen) -}}
{{- end -}}
{{- regexFind "[0-9]+$" $listen -}}
{{- end -}}

{{/*
kafka.drain_timeout in seconds (the daemon's default 30s). Whole hours,
minutes and seconds only (30s, 2m, 1m30s), so that the chart can add them up.
*/}}
{{- define "breakwater.drainSeconds" -}}
{{- $d := "30s" -}}
{{- $kafka := .Values.config.kafka | default dict -}}
{{- if hasKey $kafka "drain_timeout" -}}{{- $d = $kafka.drain_timeout | toString -}}{{- end -}}
{{- if not (regexMatch "^([0-9]+h)?([0-9]+m)?([0-9]+s)?$" $d) -}}
{{- fail (printf "config.kafka.drain_timeout %q: the chart needs whole hours, minutes or seconds (30s, 2m, 1m30s) to set terminationGracePeriodSeconds" $d) -}}
{{- end -}}
{{- $h := regexFind "[0-9]+h" $d | trimSuffix "h" | default "0" | atoi -}}
{{- $m := regexFind "[0-9]+m" $d | trimSuffix "m" | default "0" | atoi -}}
{{- $s := regexFind "[0-9]+s" $d | trimSuffix "s" | default "0" | atoi -}}
{{- add (mul $h 3600) (mul $m 60) $s -}}
{{- end -}}

{{/*
Refuses values that would start the daemon in its embedded demo mode (an
in-process broker and Redis per pod, the counts split per replica), or that
pass a credential in the clear.
*/}}
{{- define "breakwater.validate" -}}
{{- $kafka := .Values.config.kafka | default dict -}}
{{- $redis := .Values.config.redis | default dict -}}
{{- if and (empty $kafka.brokers) (not (hasKey .Values.env "BREAKWATER_KAFKA_BROKERS")) -}}
{{- fail "config.kafka.brokers (or env.BREAKWATER_KAFKA_BROKERS) is required: without it the daemon runs its embedded demo" -}}
{{- end -}}
{{- if and (empty $redis.addr) (empty $redis.addrs) (empty $redis.master_name) (not (hasKey .Values.env "BREAKWATER_REDIS_ADDR")) -}}
{{- fail "config.redis.addr, addrs or master_name (or env.BREAKWATER_REDIS_ADDR) is required: without one the daemon runs an in-process Redis" -}}
{{- end -}}
{{- if not (empty $redis.password) -}}
{{- fail "config.redis.password: keep the password in existingSecret and set secretEnv.BREAKWATER_REDIS_PASSWORD" -}}
{{- end -}}
{{- if not (empty $redis.sentinel_password) -}}
{{- fail "config.redis.sentinel_password: keep the password in existingSecret and set secretEnv.BREAKWATER_REDIS_SENTINEL_PASSWORD" -}}
{{- end -}}
{{- if not (empty (dig "sasl" "password" "" $kafka)) -}}
{{- fail "config.kafka.sasl.password: keep the password in existingSecret and set secretEnv.BREAKWATER_KAFKA_SASL_PASSWORD" -}}
{{- end -}}
{{- $http := .Values.config.http | default dict -}}
{{- $signin := .Values.config.signin | default dict -}}
{{- $signedIn := or (dig "oidc" "issuer_url" "" $signin) (dig "trusted_proxy" "cidrs" list $signin) -}}
{{- if and (empty $http.tls_cert_file) (not $http.allow_insecure) (not $signedIn) -}}
{{- fail "config.http: the listener is on every interface without TLS or sign-in; set config.http.tls_cert_file and tls_key_file (with secretMounts), sign people in behind the ingress (config.signin.oidc or config.signin.trusted_proxy), or set config.http.allow_insecure: true where the NetworkPolicy and a TLS-terminating ingress protect it" -}}
{{- end -}}
{{- if not (empty (dig "oidc" "client_secret" "" $signin)) -}}
{{- fail "config.signin.oidc.client_secret: keep the secret in existingSecret and set secretEnv.BREAKWATER_OIDC_CLIENT_SECRET" -}}
{{- end -}}
{{- if hasKey .Values.env "BREAKWATER_HTTP_LISTEN" -}}
{{- fail "env.BREAKWATER_HTTP_LISTEN: set config.http.listen instead, the chart takes the container port from it" -}}
{{- end -}}
{{- if and (not (empty .Values.secretEnv)) (empty .Values.existingSecret) -}}
{{- fail "secretEnv needs existingSecret, the Secret its keys are read from" -}}
{{- end -}}
{{- range $name, $v := .Values.env -}}
{{- if regexMatch "(PASSWORD|SECRET|TOKENS)$" $name -}}
{{- fail (printf "env.%s is a credential: keep it in existingSecret and name its key in secretEnv" $name) -}}
{{- end -}}
{{- if hasKey $.Values.secretEnv $name -}}
{{- fail (printf "%s is set both in env and in secretEnv" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* HTTPS when the configuration gives the listener a certificate (http.tls_cert_file), else HTTP. */}}
{{- define "breakwater.scheme" -}}
{{- if dig "http" "tls_cert_file" "" .Values.config -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* The container's environment: the plain variables, then those from the Secret. */}}
{{- define "breakwater.env" -}}
{{- if or .Values.env .Values.secretEnv -}}
env:
  {{- range $name, $value := .Values.env }}
  - name: {{ $name }}
    value: {{ $value | toString | quote }}
  {{- end }}
  {{- range $name, $key := .Values.secretEnv }}
  - name: {{ $name }}
    valueFrom:
      secretKeyRef:
        name: {{ $.Values.existingSecret }}
        key: {{ $key }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/* The container's mounts: the configuration file, /tmp, and the secretMounts. */}}
{{- define "breakwater.volumeMounts" -}}
volumeMounts:
  - name: config
    mountPath: /etc/breakwater/config.yaml
    subPath: config.yaml
    readOnly: true
  - name: tmp
    mountPath: /tmp
  {{- range .Values.secretMounts }}
  - name: {{ .name }}
    mountPath: {{ .mountPath }}
    readOnly: true
  {{- end }}
{{- end -}}

{{/* The pod's volumes behind breakwater.volumeMounts. */}}
{{- define "breakwater.volumes" -}}
volumes:
  - name: config
    configMap:
      name: {{ include "breakwater.fullname" . }}
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  {{- range .Values.secretMounts }}
  - name: {{ .name }}
    secret:
      secretName: {{ .secretName }}
      defaultMode: 0440
  {{- end }}
{{- end -}}
