{{- define "grayzone.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "grayzone.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "grayzone.labels" -}}
app.kubernetes.io/name: {{ include "grayzone.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "grayzone.selector" -}}
app.kubernetes.io/name: {{ include "grayzone.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "grayzone.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "grayzone.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "grayzone.tokensSecret" -}}
{{- default (printf "%s-tokens" (include "grayzone.fullname" .)) .Values.existingTokensSecret -}}
{{- end -}}

{{- /* The namespaces of the configured workloads (control_plane type
       kubernetes) and rbac.workloadNamespaces, as a JSON list. */ -}}
{{- define "grayzone.workloadNamespaces" -}}
{{- $ns := .Values.rbac.workloadNamespaces | default list -}}
{{- range .Values.config.resources -}}
{{- range (dig "control_plane" "workloads" list .) -}}
{{- $ns = append $ns .namespace -}}
{{- end -}}
{{- end -}}
{{- $ns | uniq | toJson -}}
{{- end -}}

{{- /* The namespaces of the kubernetes-endpointslices front doors and
       rbac.endpointSliceNamespaces, as a JSON list. */ -}}
{{- define "grayzone.endpointSliceNamespaces" -}}
{{- $ns := .Values.rbac.endpointSliceNamespaces | default list -}}
{{- range .Values.config.resources -}}
{{- if eq (dig "frontdoor" "type" "" .) "kubernetes-endpointslices" -}}
{{- $ns = append $ns (required "frontdoor.namespace is required for type kubernetes-endpointslices" .frontdoor.namespace) -}}
{{- end -}}
{{- end -}}
{{- $ns | uniq | toJson -}}
{{- end -}}

{{- /* store.type, checked: sqlite or postgres. */ -}}
{{- define "grayzone.store" -}}
{{- $t := .Values.store.type | default "sqlite" -}}
{{- if not (has $t (list "sqlite" "postgres")) -}}
{{- fail (printf "store.type: %q: want sqlite or postgres" $t) -}}
{{- end -}}
{{- $t -}}
{{- end -}}

{{- /* Whether a resource's front door is of type xds. */ -}}
{{- define "grayzone.hasXDS" -}}
{{- range .Values.config.resources -}}
{{- if eq (dig "frontdoor" "type" "" .) "xds" -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{- /* config.resources, with each xds front door's tls set to the files of
       xds.tls.secretName (mounted at /etc/grayzone/xds) unless it sets tls
       or insecure itself; without either, rendering fails: off loopback,
       serve refuses plaintext xDS. */ -}}
{{- define "grayzone.resources" -}}
{{- $out := list -}}
{{- range (required "config.resources is required" .Values.config.resources) -}}
{{- $r := deepCopy . -}}
{{- if eq (dig "frontdoor" "type" "" $r) "xds" -}}
{{- if not (or (hasKey $r.frontdoor "tls") (dig "frontdoor" "insecure" false $r)) -}}
{{- if not $.Values.xds.tls.secretName -}}
{{- fail (printf "resource %s: frontdoor type xds needs mutual TLS: set xds.tls.secretName (a Secret with tls.crt, tls.key, ca.crt; see values.yaml), or frontdoor.insecure: true on a trusted network" $r.name) -}}
{{- end -}}
{{- $_ := set $r.frontdoor "tls" (dict "cert_file" "/etc/grayzone/xds/tls.crt" "key_file" "/etc/grayzone/xds/tls.key" "client_ca_file" "/etc/grayzone/xds/ca.crt") -}}
{{- end -}}
{{- end -}}
{{- $out = append $out $r -}}
{{- end -}}
{{- $out | toYaml -}}
{{- end -}}
