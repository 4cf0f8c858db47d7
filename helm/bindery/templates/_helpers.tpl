{{/* Names: <release>-bindery unless the release name already says bindery. */}}
{{- define "bindery.fullname" -}}
{{- if contains "bindery" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-bindery" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bindery.redisName" -}}{{ include "bindery.fullname" . }}-redis{{- end -}}
{{- define "bindery.hubTokenSecret" -}}
{{- .Values.hub.apiToken.existingSecret | default (printf "%s-hub-token" (include "bindery.fullname" .)) -}}
{{- end -}}
{{- define "bindery.hubTokenKey" -}}
{{- if .Values.hub.apiToken.existingSecret -}}{{ .Values.hub.apiToken.existingSecretKey }}{{- else -}}token{{- end -}}
{{- end -}}
{{- define "bindery.pushSecret" -}}
{{- if .Values.registry.credentials.existingSecret -}}
{{- .Values.registry.credentials.existingSecret -}}
{{- else if .Values.registry.credentials.username -}}
{{- printf "%s-registry" (include "bindery.fullname" .) -}}
{{- end -}}
{{- end -}}
{{- define "bindery.serviceAccount" -}}
{{- .Values.serviceAccount.name | default (include "bindery.fullname" .) -}}
{{- end -}}

{{/* Labels: the shared names of issue 13 (docs/kubernetes.md). */}}
{{- define "bindery.labels" -}}
app.kubernetes.io/name: bindery
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: bindery
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{/* call with (dict "root" $ "component" "web") */}}
{{- define "bindery.selector" -}}
app.kubernetes.io/name: bindery
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "bindery.imageRef" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/* The hub's API: given, or z2jh's `hub` Service (in hub.namespace when bindery runs elsewhere). */}}
{{- define "bindery.hubApiUrl" -}}
{{- if .Values.hub.apiUrl -}}
{{- .Values.hub.apiUrl -}}
{{- else if and .Values.hub.namespace (ne .Values.hub.namespace .Release.Namespace) -}}
{{- printf "http://hub.%s:8081/hub/api" .Values.hub.namespace -}}
{{- else -}}
http://hub:8081/hub/api
{{- end -}}
{{- end -}}
{{- define "bindery.hubNamespace" -}}
{{- .Values.hub.namespace | default .Release.Namespace -}}
{{- end -}}

{{- define "bindery.engineSocket" -}}
{{- if eq .Values.build.engine "dind" -}}
{{- printf "%s/docker.sock" .Values.build.dind.socketDir -}}
{{- else -}}
{{- .Values.build.hostSocket.path -}}
{{- end -}}
{{- end -}}

{{/* Hardened container securityContext; every container but the dind daemon (privileged by nature). */}}
{{- define "bindery.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Egress every confined pod gets: DNS, then the public internet minus the blocked ranges. */}}
{{- define "bindery.confinedEgress" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
          {{- toYaml .Values.networkPolicy.blockedCidrs | nindent 10 }}
    {{- if .Values.networkPolicy.blockedCidrsV6 }}
    - ipBlock:
        cidr: ::/0
        except:
          {{- toYaml .Values.networkPolicy.blockedCidrsV6 | nindent 10 }}
    {{- end }}
{{- end -}}

{{/* Environment names the chart sets itself; `settings` may not repeat them. */}}
{{- define "bindery.managedSettings" -}}
{{- list "host" "port" "data_dir" "public_url" "hub_url" "hub_api_url" "hub_api_token" "registry_url" "image_prefix" "build_executor" "k8s_namespace" "k8s_build_engine" "k8s_engine_socket" "k8s_builder_image" "k8s_push_secret" "k8s_node_selector" "k8s_tolerations" "k8s_build_service_account" "prepull" | toJson -}}
{{- end -}}

{{/* Checks that JSON Schema cannot express (values.schema.json does the rest). */}}
{{- define "bindery.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.redis.enabled) (not (hasKey .Values.settings "state_url")) -}}
{{- fail "replicas > 1 needs a shared state store: set redis.enabled=true or settings.state_url (redis://...)" -}}
{{- end -}}
{{- $managed := include "bindery.managedSettings" . | fromJsonArray -}}
{{- range $name, $value := .Values.settings -}}
{{- if has $name $managed -}}
{{- fail (printf "settings.%s is set by the chart from its own value; set that value instead (see docs/helm-values.md)" $name) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.redis.enabled (hasKey .Values.settings "state_url") -}}
{{- fail "settings.state_url and redis.enabled both name the state store: disable redis or drop settings.state_url" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) -}}
{{- fail "ingress.enabled needs ingress.host" -}}
{{- end -}}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) -}}
{{- fail "httpRoute.enabled needs httpRoute.parentRefs (the Gateway to attach to)" -}}
{{- end -}}
{{- if and (eq .Values.build.engine "host-socket") (not .Values.build.hostSocket.acceptRisk) -}}
{{- fail "build.engine=host-socket runs every repository's build steps on the node's own container engine, in the node's network and outside every NetworkPolicy: use build.engine=dind or podman, or set build.hostSocket.acceptRisk=true to accept that risk" -}}
{{- end -}}
{{- end -}}
