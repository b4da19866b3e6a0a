package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/breakwater/breakwater/config"
)

var update = flag.Bool("update", false, "rewrite kubernetes/breakwater.yaml from the chart")

// chartDir is the chart, relative to this package.
const chartDir = "helm/breakwater"

// rendered is one rendering of the chart: its objects, decoded strictly.
type rendered struct {
	ConfigMap      *corev1.ConfigMap
	ServiceAccount *corev1.ServiceAccount
	Deployment     *appsv1.Deployment
	Service        *corev1.Service
	PDB            *policyv1.PodDisruptionBudget
	ServiceMonitor *monitoringv1.ServiceMonitor
	NetworkPolicy  *networkingv1.NetworkPolicy
	// Check is the helm test Pod that runs breakwater check.
	Check *corev1.Pod
	// Files are the rendered templates by name, without NOTES.txt.
	Files map[string]string
}

// loadChart loads the chart and checks its metadata.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("chart metadata: %v", err)
	}
	return c
}

// render renders the chart with the values YAML overrides on top of its
// values.yaml, as `helm install breakwater` in namespace moderation would.
func render(t *testing.T, overrides string) (map[string]string, error) {
	t.Helper()
	c := loadChart(t)
	vals, err := chartutil.ReadValues([]byte(overrides))
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	// The oldest Kubernetes the chart admits: every API it renders exists there.
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.25.0", Major: "1", Minor: "25"}
	if !chartutil.IsCompatibleRange(c.Metadata.KubeVersion, caps.KubeVersion.String()) {
		t.Fatalf("chart kubeVersion %q does not admit %s", c.Metadata.KubeVersion, caps.KubeVersion)
	}
	opts := chartutil.ReleaseOptions{Name: "breakwater", Namespace: "moderation", Revision: 1, IsInstall: true}
	// This checks the values against values.schema.json, as helm install does.
	top, err := chartutil.ToRenderValues(c, vals, opts, caps)
	if err != nil {
		return nil, err
	}
	return engine.Render(c, top)
}

// docSep splits a rendered file into YAML documents.
var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// mustRender renders the chart and decodes every object it renders
// strictly (an unknown or duplicated field is an error) into its API type.
func mustRender(t *testing.T, overrides string) rendered {
	t.Helper()
	files, err := render(t, overrides)
	if err != nil {
		t.Fatalf("render:\n%s\n%v", overrides, err)
	}
	r := rendered{Files: map[string]string{}}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		r.Files[name] = files[name]
		for _, doc := range docSep.Split(files[name], -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			decodeObject(t, name, doc, &r)
		}
	}
	if r.ConfigMap == nil || r.Deployment == nil || r.Service == nil || r.Check == nil {
		t.Fatalf("the chart rendered no ConfigMap, Deployment, Service or check Pod: %v", slices.Sorted(maps.Keys(r.Files)))
	}
	return r
}

// stripComments drops the lines that are only a YAML comment.
func stripComments(doc string) string {
	var b strings.Builder
	for l := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// decodeObject decodes one rendered object into the field of r for its
// kind, strictly, and fails on a kind the chart should not render or on a
// second object of one kind.
func decodeObject(t *testing.T, file, doc string, r *rendered) {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
		t.Fatalf("%s: %v\n%s", file, err, doc)
	}
	var into any
	switch meta.APIVersion + "/" + meta.Kind {
	case "v1/ConfigMap":
		r.ConfigMap = once(t, file, r.ConfigMap)
		into = r.ConfigMap
	case "v1/ServiceAccount":
		r.ServiceAccount = once(t, file, r.ServiceAccount)
		into = r.ServiceAccount
	case "apps/v1/Deployment":
		r.Deployment = once(t, file, r.Deployment)
		into = r.Deployment
	case "v1/Service":
		r.Service = once(t, file, r.Service)
		into = r.Service
	case "policy/v1/PodDisruptionBudget":
		r.PDB = once(t, file, r.PDB)
		into = r.PDB
	case "monitoring.coreos.com/v1/ServiceMonitor":
		r.ServiceMonitor = once(t, file, r.ServiceMonitor)
		into = r.ServiceMonitor
	case "v1/Pod":
		r.Check = once(t, file, r.Check)
		into = r.Check
	case "networking.k8s.io/v1/NetworkPolicy":
		r.NetworkPolicy = once(t, file, r.NetworkPolicy)
		into = r.NetworkPolicy
	default:
		t.Fatalf("%s: unexpected object %s %s", file, meta.APIVersion, meta.Kind)
	}
	if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
		t.Fatalf("%s: strict decode as %s: %v\n%s", file, meta.Kind, err, doc)
	}
}

// once returns a new *T, failing the test if p is already set.
func once[T any](t *testing.T, file string, p *T) *T {
	t.Helper()
	if p != nil {
		t.Fatalf("%s: a second %T", file, p)
	}
	return new(T)
}

// fakeSecrets are stand-ins for the values of the Secret's keys, by the
// variable they fill; the loader checks their form.
var fakeSecrets = map[string]string{
	"BREAKWATER_ADMIN_TOKENS":   "alice:operator:tok-alice-0123456789,bob:reviewer:tok-bob-0123456789",
	"BREAKWATER_REDIS_PASSWORD": "redis-password",
}

// fakeSecret returns a stand-in value for the secret variable name.
func fakeSecret(name string) string {
	if v, ok := fakeSecrets[name]; ok {
		return v
	}
	if strings.HasSuffix(name, "_URL") {
		return "https://hooks.example.com/services/T000/B000/XXXX"
	}
	return "secret-value-0123456789"
}

// loadConfig loads the rendered configuration file with the daemon's own
// loader, with the container's environment (the Secret's keys replaced by
// stand-ins), as the pod would.
func (r rendered) loadConfig(t *testing.T) (config.Config, error) {
	t.Helper()
	data, ok := r.ConfigMap.Data["config.yaml"]
	if !ok {
		t.Fatalf("ConfigMap has no config.yaml: %v", slices.Sorted(maps.Keys(r.ConfigMap.Data)))
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, e := range r.container(t).Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = fakeSecret(e.Name)
		case e.ValueFrom != nil:
			t.Fatalf("env %s: a source other than a Secret key: %+v", e.Name, e.ValueFrom)
		default:
			env[e.Name] = e.Value
		}
	}
	return config.LoadWithEnv(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

// container returns the Deployment's one container.
func (r rendered) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := r.Deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment has %d containers; want 1", len(cs))
	}
	return cs[0]
}

// check fails the test with the problems of r.
func (r rendered) check(t *testing.T, cfg config.Config) {
	t.Helper()
	for _, p := range r.problems(t, cfg) {
		t.Error(p)
	}
}

// problems lists what is wrong with a rendering, checking what every
// rendering must hold: the pod is locked down, the probes reach the
// daemon's health endpoints, the configuration is mounted where the daemon
// reads it, the grace period outlasts the drain, the checksum annotation is
// that of the rendered ConfigMap, no credential is given in the clear, and
// the other objects select the pods.
func (r rendered) problems(t *testing.T, cfg config.Config) []string {
	t.Helper()
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	d := r.Deployment
	pod := d.Spec.Template
	c := r.container(t)

	if cfg.EmbeddedKafka() || cfg.EmbeddedRedis() {
		add("the rendered configuration runs the embedded demo (brokers %v, redis %q)", cfg.Kafka.Brokers, cfg.Redis.Addr)
	}
	if !labelsMatch(d.Spec.Selector.MatchLabels, pod.Labels) {
		add("Deployment selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, pod.Labels)
	}

	// Security.
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		add("pod securityContext.runAsNonRoot is not true")
	}
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		add("pod securityContext.runAsUser is unset or root")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		add("pod seccompProfile is not RuntimeDefault")
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		add("container has no securityContext")
	default:
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			add("container readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add("container allowPrivilegeEscalation is not false")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			add("container capabilities %+v; want drop [ALL], add none", sc.Capabilities)
		}
		if sc.Privileged != nil && *sc.Privileged {
			add("container is privileged")
		}
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		add("pod automountServiceAccountToken is not false; the daemon never calls the Kubernetes API")
	}

	// Probes and ports.
	port := containerPort(c, "http")
	if port == 0 {
		t.Fatalf("container has no port named http: %+v", c.Ports)
	}
	if want := listenPort(t, cfg.HTTP.Listen); int(port) != want {
		add("container port %d; the daemon listens on %q", port, cfg.HTTP.Listen)
	}
	scheme := corev1.URISchemeHTTP
	if httpsListener(t, r.ConfigMap.Data["config.yaml"]) {
		scheme = corev1.URISchemeHTTPS
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
		{"startup", c.StartupProbe, "/healthz"},
	} {
		switch {
		case p.probe == nil || p.probe.HTTPGet == nil:
			add("%s probe: not an HTTP GET", p.name)
		case p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http":
			add("%s probe: GET %s on port %s; want %s on http", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		case p.probe.HTTPGet.Scheme != scheme:
			add("%s probe: scheme %s; the listener speaks %s", p.name, p.probe.HTTPGet.Scheme, scheme)
		}
	}

	// Grace period.
	grace := pod.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second <= cfg.Kafka.DrainTimeout+5*time.Second {
		add("terminationGracePeriodSeconds %v; want more than kafka.drain_timeout %s and the listener's shutdown", deref(grace), cfg.Kafka.DrainTimeout)
	}

	// The configuration file.
	if want := []string{"run", "--config", "/etc/breakwater/config.yaml"}; !slices.Equal(c.Args, want) {
		add("container args %q; want %q", c.Args, want)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/etc/breakwater/config.yaml" && m.SubPath == "config.yaml" {
			v := volume(pod.Spec, m.Name)
			mounted = v != nil && v.ConfigMap != nil && v.ConfigMap.Name == r.ConfigMap.Name
		}
		if volume(pod.Spec, m.Name) == nil {
			add("volume mount %s: no such volume", m.Name)
		}
		if !m.ReadOnly && m.MountPath != "/tmp" {
			add("volume mount %s at %s is writable", m.Name, m.MountPath)
		}
	}
	if !mounted {
		add("ConfigMap %s is not mounted at /etc/breakwater/config.yaml", r.ConfigMap.Name)
	}
	for _, f := range configFiles(t, r.ConfigMap.Data["config.yaml"]) {
		if !underMount(c, f.path) {
			add("config %s: %s is not in a mounted volume", f.key, f.path)
		}
	}
	sum := sha256.Sum256([]byte(r.Files["breakwater/templates/configmap.yaml"]))
	if got := pod.Annotations["checksum/config"]; got != hex.EncodeToString(sum[:]) {
		add("checksum/config %q; want the rendered ConfigMap's sha256 %x", got, sum)
	}

	// No credential in the clear.
	for _, e := range c.Env {
		if looksSecret(e.Name) && e.ValueFrom == nil {
			add("env %s is a credential given in the clear; it must come from the Secret", e.Name)
		}
	}

	// The Service, the budget and the optional objects select these pods.
	s := r.Service
	if !labelsMatch(s.Spec.Selector, pod.Labels) || len(s.Spec.Selector) == 0 {
		add("Service selector %v does not select the pods %v", s.Spec.Selector, pod.Labels)
	}
	for _, p := range s.Spec.Ports {
		if p.TargetPort.String() != "http" {
			add("Service port %s targets %s; want http", p.Name, p.TargetPort.String())
		}
	}
	if r.PDB != nil && (r.PDB.Spec.Selector == nil || !labelsMatch(r.PDB.Spec.Selector.MatchLabels, pod.Labels)) {
		add("PodDisruptionBudget selector %v does not select the pods", r.PDB.Spec.Selector)
	}
	if r.PDB != nil && (r.PDB.Spec.UnhealthyPodEvictionPolicy == nil || *r.PDB.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow) {
		add("PodDisruptionBudget unhealthyPodEvictionPolicy is not AlwaysAllow: a Redis outage (every replica unready) would block node drains")
	}
	if sa := r.ServiceAccount; sa != nil && sa.Name != pod.Spec.ServiceAccountName {
		add("ServiceAccount %s; the pods run as %s", sa.Name, pod.Spec.ServiceAccountName)
	}
	if m := r.ServiceMonitor; m != nil {
		if !labelsMatch(m.Spec.Selector.MatchLabels, s.Labels) {
			add("ServiceMonitor selector %v does not select the Service %v", m.Spec.Selector.MatchLabels, s.Labels)
		}
		for _, e := range m.Spec.Endpoints {
			if e.Port != "http" || e.Path != "/metrics" {
				add("ServiceMonitor endpoint %s%s; want http /metrics", e.Port, e.Path)
			}
			if e.Scheme == nil || !strings.EqualFold(e.Scheme.String(), string(scheme)) {
				add("ServiceMonitor endpoint scheme %v; the listener speaks %s", deref(e.Scheme), scheme)
			}
		}
	}
	ps = append(ps, r.checkPodProblems(c)...)
	if np := r.NetworkPolicy; np != nil {
		if !labelsMatch(np.Spec.PodSelector.MatchLabels, pod.Labels) || len(np.Spec.PodSelector.MatchLabels) == 0 {
			add("NetworkPolicy podSelector %v does not select the pods", np.Spec.PodSelector.MatchLabels)
		}
		for _, in := range np.Spec.Ingress {
			for _, p := range in.Ports {
				if p.Port == nil || p.Port.String() != "http" {
					add("NetworkPolicy admits port %v; want http only", p.Port)
				}
			}
		}
	}
	return ps
}

// checkPodProblems lists what is wrong with the helm test Pod: it must run
// breakwater check with exactly the daemon's configuration, environment,
// mounts and security, once, as a test hook, and not be a Service endpoint.
func (r rendered) checkPodProblems(daemon corev1.Container) []string {
	var ps []string
	p := r.Check
	if p.Annotations["helm.sh/hook"] != "test" {
		ps = append(ps, fmt.Sprintf("check Pod: helm.sh/hook %q; want test", p.Annotations["helm.sh/hook"]))
	}
	if p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		ps = append(ps, fmt.Sprintf("check Pod: restartPolicy %q; want Never", p.Spec.RestartPolicy))
	}
	if len(r.Service.Spec.Selector) > 0 && labelsMatch(r.Service.Spec.Selector, p.Labels) {
		ps = append(ps, "check Pod: the Service selects it")
	}
	if len(p.Spec.Containers) != 1 {
		return append(ps, fmt.Sprintf("check Pod: %d containers; want 1", len(p.Spec.Containers)))
	}
	c := p.Spec.Containers[0]
	if want := []string{"check", "--config", "/etc/breakwater/config.yaml"}; !slices.Equal(c.Args, want) {
		ps = append(ps, fmt.Sprintf("check Pod: args %q; want %q", c.Args, want))
	}
	same := func(what string, a, b any) {
		ja, _ := yaml.Marshal(a)
		jb, _ := yaml.Marshal(b)
		if !bytes.Equal(ja, jb) {
			ps = append(ps, fmt.Sprintf("check Pod: %s differ from the daemon's:\n%s\nvs\n%s", what, ja, jb))
		}
	}
	same("image", c.Image, daemon.Image)
	same("env", c.Env, daemon.Env)
	same("volume mounts", c.VolumeMounts, daemon.VolumeMounts)
	same("volumes", p.Spec.Volumes, r.Deployment.Spec.Template.Spec.Volumes)
	same("container security", c.SecurityContext, daemon.SecurityContext)
	same("pod security", p.Spec.SecurityContext, r.Deployment.Spec.Template.Spec.SecurityContext)
	return ps
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// labelsMatch reports whether every label of sel is in labels.
func labelsMatch(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// listenPort returns the port of a host:port listen address.
func listenPort(t *testing.T, listen string) int {
	t.Helper()
	i := strings.LastIndex(listen, ":")
	var p int
	if _, err := fmt.Sscan(listen[i+1:], &p); i < 0 || err != nil {
		t.Fatalf("http.listen %q has no port", listen)
	}
	return p
}

func volume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// looksSecret reports whether an environment variable's name says that it
// holds a credential.
func looksSecret(name string) bool {
	if name == "BREAKWATER_ADMIN_TOKENS" {
		return true
	}
	for _, s := range []string{"PASSWORD", "SECRET", "_URL", "TOKEN", "_KEY"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// fileKey is a key of the configuration whose name ends in _file: a path
// the daemon reads (TLS material, a password file).
type fileKey struct{ key, path string }

// configFiles lists the configuration's *_file keys with their paths.
func configFiles(t *testing.T, data string) []fileKey {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal([]byte(data), &doc); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	var out []fileKey
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				key := strings.TrimPrefix(prefix+"."+k, ".")
				if s, ok := x.(string); ok && strings.HasSuffix(k, "_file") && s != "" {
					out = append(out, fileKey{key, s})
					continue
				}
				walk(key, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", prefix, i), x)
			}
		}
	}
	walk("", doc)
	return out
}

// httpsListener reports whether the configuration gives the listener a
// certificate (http.tls_cert_file).
func httpsListener(t *testing.T, data string) bool {
	t.Helper()
	var doc struct {
		HTTP map[string]any `json:"http"`
	}
	if err := yaml.Unmarshal([]byte(data), &doc); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	f, _ := doc.HTTP["tls_cert_file"].(string)
	return f != ""
}

// underMount reports whether path lies in a volume the container mounts.
func underMount(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

// variants are the values the chart is rendered with: the defaults, a
// production-like setup with every optional object, and addresses from
// the environment instead of the file.
var variants = []struct {
	name   string
	values string
	check  func(t *testing.T, r rendered, cfg config.Config)
}{
	{
		name: "defaults",
		check: func(t *testing.T, r rendered, cfg config.Config) {
			if r.PDB == nil || r.ServiceAccount == nil {
				t.Error("the defaults render no PodDisruptionBudget or ServiceAccount")
			}
			if r.ServiceMonitor != nil || r.NetworkPolicy != nil {
				t.Error("the defaults render a ServiceMonitor or NetworkPolicy; both are optional")
			}
			if got := *r.Deployment.Spec.Replicas; got != 3 {
				t.Errorf("replicas %d; want 3", got)
			}
		},
	},
	{
		name: "production",
		values: `
replicaCount: 6
image: {repository: registry.example.com/breakwater, tag: "0.1.0"}
existingSecret: breakwater
secretEnv:
  BREAKWATER_ADMIN_TOKENS: admin-tokens
  BREAKWATER_REDIS_PASSWORD: redis-password
  BREAKWATER_ALERT_ONCALL_SECRET: pagerduty-routing-key
  BREAKWATER_ALERT_MODERATION_SLACK_URL: slack-webhook-url
  BREAKWATER_KAFKA_SASL_PASSWORD: kafka-password
  BREAKWATER_REDIS_SENTINEL_PASSWORD: sentinel-password
env:
  BREAKWATER_KAFKA_GROUP_ID: breakwater-eu
secretMounts:
  - {name: kafka-tls, secretName: kafka-client-tls, mountPath: /etc/breakwater/tls/kafka}
  - {name: redis-tls, secretName: redis-client-tls, mountPath: /etc/breakwater/tls/redis}
  - {name: http-tls, secretName: breakwater-https, mountPath: /etc/breakwater/tls/http}
config:
  kafka:
    brokers: ["kafka-0.kafka:9093"]
    drain_timeout: 1m30s
    topics: {input: classifier.actions}
    tls:
      ca_file: /etc/breakwater/tls/kafka/ca.crt
      cert_file: /etc/breakwater/tls/kafka/tls.crt
      key_file: /etc/breakwater/tls/kafka/tls.key
    sasl: {mechanism: scram-sha-512, username: breakwater}
  redis:
    addr: null    # drops the default's addr: one topology only
    master_name: breakwater
    sentinel_addrs: ["redis-sentinel-0:26379", "redis-sentinel-1:26379", "redis-sentinel-2:26379"]
    sentinel_username: breakwater
    username: breakwater
    key_prefix: bw-eu
    tls: {ca_file: /etc/breakwater/tls/redis/ca.crt}
  http:
    listen: ":9090"
    tls_cert_file: /etc/breakwater/tls/http/tls.crt
    tls_key_file: /etc/breakwater/tls/http/tls.key
  log: {level: info, format: json}
  alerts:
    admin_url: https://breakwater.example.com
    receivers:
      - {name: oncall, type: pagerduty, severities: [critical]}
      - {name: moderation-slack, type: slack, severities: [critical, warning]}
serviceMonitor: {enabled: true, labels: {release: prometheus}}
networkPolicy:
  enabled: true
  ingressFrom:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
  egress:
    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kafka}}}]
      ports: [{port: 9093, protocol: TCP}]
`,
		check: func(t *testing.T, r rendered, cfg config.Config) {
			if r.ServiceMonitor == nil || r.NetworkPolicy == nil {
				t.Fatal("serviceMonitor.enabled and networkPolicy.enabled rendered no ServiceMonitor or NetworkPolicy")
			}
			if got := *r.Deployment.Spec.Template.Spec.TerminationGracePeriodSeconds; got != 90+20 {
				t.Errorf("terminationGracePeriodSeconds %d for a drain of 1m30s; want 110", got)
			}
			if len(cfg.Admin.Tokens) != 2 || cfg.Redis.Password == "" || cfg.Kafka.GroupID != "breakwater-eu" ||
				cfg.Kafka.SASL.Password == "" || cfg.Redis.SentinelPassword == "" {
				t.Errorf("the environment did not reach the configuration: %d tokens, passwords set: redis %v, sasl %v, sentinel %v; group %q",
					len(cfg.Admin.Tokens), cfg.Redis.Password != "", cfg.Kafka.SASL.Password != "", cfg.Redis.SentinelPassword != "", cfg.Kafka.GroupID)
			}
			if c := r.container(t); c.LivenessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
				t.Errorf("liveness probe scheme %s with http.tls_cert_file set; want HTTPS", c.LivenessProbe.HTTPGet.Scheme)
			}
			if got := len(configFiles(t, r.ConfigMap.Data["config.yaml"])); got != 6 {
				t.Errorf("found %d *_file keys in the configuration; want 6", got)
			}
			for _, rc := range cfg.Alerts.Receivers {
				if rc.URL == "" && rc.Secret == "" {
					t.Errorf("receiver %s got neither URL nor secret from the Secret", rc.Name)
				}
			}
			if c := r.container(t); c.Image != "registry.example.com/breakwater:0.1.0" {
				t.Errorf("image %s", c.Image)
			}
			if v := volume(r.Deployment.Spec.Template.Spec, "kafka-tls"); v == nil || v.Secret == nil || v.Secret.SecretName != "kafka-client-tls" {
				t.Errorf("secretMounts rendered volume %+v", v)
			}
		},
	},
	{
		name: "people sign in through OIDC, plain HTTP behind the ingress",
		values: `
existingSecret: breakwater
secretEnv:
  BREAKWATER_ADMIN_TOKENS: admin-tokens
  BREAKWATER_OIDC_CLIENT_SECRET: oidc-client-secret
config:
  http: {listen: ":8080", allow_insecure: false}
  signin:
    groups: {trust-and-safety-reviewers: reviewer, moderation-oncall: operator}
    oidc:
      issuer_url: https://idp.example.com/realms/corp
      client_id: breakwater
      redirect_url: https://breakwater.example.com/auth/callback
`,
		check: func(t *testing.T, r rendered, cfg config.Config) {
			if !cfg.SignIn.OIDC.Enabled() || cfg.SignIn.OIDC.ClientSecret == "" || cfg.HTTP.AllowInsecure {
				t.Errorf("OIDC enabled %v, client secret from the Secret %v, allow_insecure %v; want true, true, false",
					cfg.SignIn.OIDC.Enabled(), cfg.SignIn.OIDC.ClientSecret != "", cfg.HTTP.AllowInsecure)
			}
		},
	},
	{
		name: "addresses from the environment",
		values: `
config:
  kafka: {brokers: []}
  redis: {addr: ""}
env:
  BREAKWATER_KAFKA_BROKERS: "kafka-0.kafka:9092,kafka-1.kafka:9092"
  BREAKWATER_REDIS_ADDR: "redis:6379"
replicaCount: 1
podDisruptionBudget: {enabled: false}
serviceAccount: {create: false}
`,
		check: func(t *testing.T, r rendered, cfg config.Config) {
			if len(cfg.Kafka.Brokers) != 2 || cfg.Redis.Addr != "redis:6379" {
				t.Errorf("brokers %v, redis %q; want them from the environment", cfg.Kafka.Brokers, cfg.Redis.Addr)
			}
			if r.PDB != nil || r.ServiceAccount != nil {
				t.Error("a disabled PodDisruptionBudget or ServiceAccount was rendered")
			}
			if got := r.Deployment.Spec.Template.Spec.ServiceAccountName; got != "default" {
				t.Errorf("serviceAccountName %q; want default", got)
			}
		},
	},
}

// TestChartRenders renders the chart with each variant, decodes every
// object strictly into its Kubernetes API type, loads the rendered
// configuration with the daemon's loader and validation, and checks the
// objects against each other and against the configuration.
func TestChartRenders(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			r := mustRender(t, v.values)
			cfg, err := r.loadConfig(t)
			if err != nil {
				t.Fatalf("the daemon refuses the rendered configuration:\n%s\n%v", r.ConfigMap.Data["config.yaml"], err)
			}
			r.check(t, cfg)
			v.check(t, r, cfg)
		})
	}
}

// TestChartConfigChangeRollsPods checks that a configuration change changes
// the pod template (through checksum/config), so that helm upgrade rolls
// the pods, and that an unrelated change does not.
func TestChartConfigChangeRollsPods(t *testing.T) {
	base := mustRender(t, "")
	changed := mustRender(t, "config: {breakers: {defaults: {max_actions: 500}}}")
	same := mustRender(t, "replicaCount: 4")
	sum := func(r rendered) string { return r.Deployment.Spec.Template.Annotations["checksum/config"] }
	if sum(base) == sum(changed) {
		t.Error("a changed breakers.defaults.max_actions left checksum/config unchanged")
	}
	if sum(base) != sum(same) {
		t.Error("a changed replicaCount changed checksum/config")
	}
}

// TestChartRefuses checks that values the daemon would misread stop the
// rendering with a message that names the value.
func TestChartRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, values, want string
	}{
		{"no brokers: the embedded demo", "config: {kafka: {brokers: []}}", "config.kafka.brokers"},
		{"no redis: an in-process store per pod", "config: {redis: {addr: \"\"}}", "config.redis.addr"},
		{"a password in the ConfigMap", "config: {redis: {password: hunter2}}", "config.redis.password"},
		{"a loopback listener the probes cannot reach", "config: {http: {listen: \"127.0.0.1:8080\"}}", "config.http.listen"},
		{"the listener disabled", "config: {http: {listen: \"\"}}", "config.http.listen"},
		{"the daemon's loopback default", "config: {http: {listen: null}}", "config.http.listen"},
		{"plain HTTP on every interface", "config: {http: {allow_insecure: false}}", "config.http.allow_insecure"},
		{"an OIDC client secret in the ConfigMap", "config: {signin: {oidc: {client_secret: hunter2}}}", "config.signin.oidc.client_secret"},
		{"a listen override", "env: {BREAKWATER_HTTP_LISTEN: \":9000\"}", "BREAKWATER_HTTP_LISTEN"},
		{"a drain the chart cannot add up", "config: {kafka: {drain_timeout: 1.5m}}", "config.kafka.drain_timeout"},
		{"a password in the clear", "env: {BREAKWATER_REDIS_PASSWORD: hunter2}", "BREAKWATER_REDIS_PASSWORD"},
		{"a SASL password in the ConfigMap", "config: {kafka: {sasl: {password: hunter2}}}", "config.kafka.sasl.password"},
		{"a Sentinel password in the ConfigMap", "config: {redis: {sentinel_password: hunter2}}", "config.redis.sentinel_password"},
		{"a misspelt value", "replicaCont: 2", "replicaCont"},
		{"a secret mount without a path", "secretMounts: [{name: tls, secretName: tls}]", "mountPath"},
		{"secretEnv without a Secret", "secretEnv: {BREAKWATER_REDIS_PASSWORD: redis-password}", "existingSecret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render(%s) = %v; want an error naming %s", tc.values, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// TestChartConfigCheckCanFail checks that the configuration check above
// catches what the daemon refuses: a key the daemon does not know renders
// fine, and the loader refuses it.
func TestChartConfigCheckCanFail(t *testing.T) {
	r := mustRender(t, "config: {kafka: {batch_sise: 100}}")
	if _, err := r.loadConfig(t); err == nil || !strings.Contains(err.Error(), "batch_sise") {
		t.Errorf("loadConfig = %v; want the daemon's error naming batch_sise", err)
	}
}

// plainManifest is the manifest for kubectl apply, generated from the chart.
const (
	plainManifest = "kubernetes/breakwater.yaml"
	plainValues   = "kubernetes/values.yaml"
)

// TestPlainManifest checks that kubernetes/breakwater.yaml is the chart
// rendered with kubernetes/values.yaml, so that the two cannot drift.
// make manifest (go test -run TestPlainManifest -update) rewrites it.
func TestPlainManifest(t *testing.T) {
	values, err := os.ReadFile(plainValues)
	if err != nil {
		t.Fatal(err)
	}
	r := mustRender(t, string(values))
	cfg, err := r.loadConfig(t)
	if err != nil {
		t.Fatalf("the daemon refuses the configuration of %s: %v", plainManifest, err)
	}
	r.check(t, cfg)
	var b bytes.Buffer
	b.WriteString("# Breakwater for kubectl -n moderation apply -f. Generated from\n" +
		"# the Helm chart (deploy/helm/breakwater) with deploy/kubernetes/values.yaml\n" +
		"# by `make manifest`; do not edit it,\n" +
		"# edit the chart or those values. The Secret named there must exist.\n" +
		"# `breakwater check` (helm test in the chart) runs in the image the same way:\n" +
		"# kubectl -n moderation exec deploy/breakwater -- breakwater check --config /etc/breakwater/config.yaml\n")
	for _, name := range slices.Sorted(maps.Keys(r.Files)) {
		body := strings.TrimSpace(r.Files[name])
		if body == "" || strings.Contains(name, "/templates/tests/") {
			// The helm test Pod is for helm test, not kubectl apply.
			continue
		}
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", name, body)
	}
	if *update {
		if err := os.WriteFile(plainManifest, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(plainManifest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, b.Bytes()) {
		t.Errorf("%s differs from the chart rendered with %s; run: make manifest", plainManifest, plainValues)
	}
}

// TestChartChecksCatch checks that the checks of TestChartRenders fail on
// a rendering that breaks what they guard, so that they cannot pass on any
// chart.
func TestChartChecksCatch(t *testing.T) {
	for _, tc := range []struct {
		name, values, want string
		mutate             func(r *rendered)
	}{
		{name: "a probe in HTTPS to a plain listener", want: "liveness probe: scheme", mutate: func(r *rendered) {
			r.Deployment.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Scheme = corev1.URISchemeHTTPS
		}},
		{name: "a budget that blocks drains during a Redis outage", want: "unhealthyPodEvictionPolicy", mutate: func(r *rendered) {
			r.PDB.Spec.UnhealthyPodEvictionPolicy = nil
		}},
		{name: "a certificate outside every mount", values: "config: {http: {tls_cert_file: /etc/tls/tls.crt, tls_key_file: /etc/tls/tls.key}}", want: "is not in a mounted volume"},
		{name: "a check Pod with another environment", want: "check Pod: env", mutate: func(r *rendered) {
			r.Check.Spec.Containers[0].Env = append(r.Check.Spec.Containers[0].Env, corev1.EnvVar{Name: "BREAKWATER_KAFKA_GROUP_ID", Value: "other"})
		}},
		{name: "writable root file system", values: "securityContext: {readOnlyRootFilesystem: false}", want: "readOnlyRootFilesystem"},
		{name: "capabilities kept", values: "securityContext: {capabilities: {drop: []}}", want: "capabilities"},
		{name: "privilege escalation", values: "securityContext: {allowPrivilegeEscalation: true}", want: "allowPrivilegeEscalation"},
		{name: "root", values: "podSecurityContext: {runAsUser: 0}", want: "runAsUser"},
		{name: "no seccomp profile", values: "podSecurityContext: {seccompProfile: {type: Unconfined}}", want: "seccompProfile"},
		{name: "grace period shorter than the drain", want: "terminationGracePeriodSeconds", mutate: func(r *rendered) {
			r.Deployment.Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64(30))
		}},
		{name: "a credential in the clear", values: "env: {BREAKWATER_ALERT_ONCALL_URL: \"https://events.example.com\"}", want: "in the clear"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.values)
			cfg, err := r.loadConfig(t)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if tc.mutate != nil {
				tc.mutate(&r)
			}
			ps := r.problems(t, cfg)
			if !slices.ContainsFunc(ps, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("problems(%s) = %q; want one naming %s", tc.values, ps, tc.want)
			}
		})
	}
}

// readmeChartValues returns the values files the chart section of
// docs/operations.md shows: its yaml blocks and the values.yaml its sh
// block writes.
func readmeChartValues(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n### The Helm chart\n")
	if !ok {
		t.Fatal("docs/operations.md has no section \"### The Helm chart\"")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var out []string
	var cur *strings.Builder
	end := ""
	for l := range strings.Lines(section) {
		trimmed := strings.TrimSpace(l)
		switch {
		case cur == nil && trimmed == "```yaml":
			cur, end = &strings.Builder{}, "```"
		case cur == nil && strings.HasPrefix(trimmed, "cat > values.yaml <<'EOF'"):
			cur, end = &strings.Builder{}, "EOF"
		case cur != nil && trimmed == end:
			out = append(out, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(l)
		}
	}
	return out
}

// TestChartReadmeValues renders the chart with the values docs/operations.md shows
// and checks the rendering as TestChartRenders does, so that its
// examples install.
func TestChartReadmeValues(t *testing.T) {
	vals := readmeChartValues(t)
	if len(vals) < 2 {
		t.Fatalf("found %d values examples in the chart section of docs/operations.md; want 2 or more", len(vals))
	}
	for i, v := range vals {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			r := mustRender(t, v)
			cfg, err := r.loadConfig(t)
			if err != nil {
				t.Fatalf("the daemon refuses the configuration of the documented values:\n%s\n%v", v, err)
			}
			r.check(t, cfg)
		})
	}
}
