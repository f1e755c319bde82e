package deployer

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Guards are the objects Brain keeps in every chat namespace, next to the namespace's labels. Each
// can be switched off; the zero value creates none of them.
type Guards struct {
	// Quota is the hard limits of the ResourceQuota "brain-quota" (NAMESPACE_QUOTA); empty: none.
	Quota corev1.ResourceList
	// LimitDefault and LimitDefaultRequest are the default limits and requests per container of the
	// LimitRange "brain-limits" (NAMESPACE_LIMITRANGE); both empty: none.
	LimitDefault        corev1.ResourceList
	LimitDefaultRequest corev1.ResourceList
	// NetworkPolicy creates the NetworkPolicy "brain-isolation", which admits ingress to the
	// namespace's pods only from pods of the same namespace (NAMESPACE_NETWORKPOLICY).
	NetworkPolicy bool
	// PodSecurity is the Pod Security Standard the namespace enforces ("privileged", "baseline",
	// "restricted") through its pod-security.kubernetes.io labels (NAMESPACE_POD_SECURITY); empty:
	// no labels, so the cluster's default applies.
	PodSecurity string
}

// DefaultGuards returns the guards Brain creates unless the operator changes them.
func DefaultGuards() Guards {
	return Guards{
		Quota: corev1.ResourceList{
			"requests.cpu":           resource.MustParse("2"),
			"requests.memory":        resource.MustParse("4Gi"),
			"limits.cpu":             resource.MustParse("4"),
			"limits.memory":          resource.MustParse("8Gi"),
			"requests.storage":       resource.MustParse("20Gi"),
			"persistentvolumeclaims": resource.MustParse("10"),
			"pods":                   resource.MustParse("50"),
			"services":               resource.MustParse("20"),
			"services.loadbalancers": resource.MustParse("0"),
			"services.nodeports":     resource.MustParse("0"),
			"configmaps":             resource.MustParse("100"),
			"secrets":                resource.MustParse("100"),
		},
		LimitDefault: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("500m"),
			corev1.ResourceMemory: resource.MustParse("512Mi"),
		},
		LimitDefaultRequest: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("128Mi"),
		},
		NetworkPolicy: true,
		PodSecurity:   "baseline",
	}
}

// ParseGuards reads the operator's settings, each as its environment variable holds it:
//
//	quota          NAMESPACE_QUOTA          "" or "true": the defaults; "false": none;
//	                                        else "name=quantity,…", e.g. "pods=20,requests.cpu=2"
//	limitRange     NAMESPACE_LIMITRANGE     "" or "true": the defaults; "false": none; else
//	                                        "default.cpu=1,default.memory=1Gi,defaultRequest.cpu=200m,…"
//	networkPolicy  NAMESPACE_NETWORKPOLICY  "" or "true": on; "false": off
//	podSecurity    NAMESPACE_POD_SECURITY   "": "baseline"; "none": no labels; or a level
func ParseGuards(quota, limitRange, networkPolicy, podSecurity string) (Guards, error) {
	g := DefaultGuards()
	var err error
	if g.Quota, err = parseSwitchOrList("NAMESPACE_QUOTA", quota, g.Quota); err != nil {
		return Guards{}, err
	}
	switch v := strings.TrimSpace(limitRange); v {
	case "", "true":
	case "false":
		g.LimitDefault, g.LimitDefaultRequest = nil, nil
	default:
		if g.LimitDefault, g.LimitDefaultRequest, err = parseLimitRange(v); err != nil {
			return Guards{}, err
		}
	}
	if v := strings.TrimSpace(networkPolicy); v != "" {
		if g.NetworkPolicy, err = strconv.ParseBool(v); err != nil {
			return Guards{}, fmt.Errorf("NAMESPACE_NETWORKPOLICY %q: want true or false", networkPolicy)
		}
	}
	switch v := strings.TrimSpace(podSecurity); v {
	case "":
	case "none":
		g.PodSecurity = ""
	default:
		g.PodSecurity = v
	}
	return g, g.validate()
}

func (g Guards) validate() error {
	if g.PodSecurity != "" && podSecurityRank(g.PodSecurity) < 0 {
		return fmt.Errorf("NAMESPACE_POD_SECURITY %q: want privileged, baseline, restricted or none", g.PodSecurity)
	}
	return nil
}

func parseSwitchOrList(name, v string, def corev1.ResourceList) (corev1.ResourceList, error) {
	switch v = strings.TrimSpace(v); v {
	case "", "true":
		return def, nil
	case "false":
		return nil, nil
	}
	list, err := parseResourceList(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return list, nil
}

// parseResourceList parses "name=quantity,name=quantity".
func parseResourceList(s string) (corev1.ResourceList, error) {
	list := corev1.ResourceList{}
	for _, kv := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want name=quantity", kv)
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", kv, err)
		}
		list[corev1.ResourceName(name)] = q
	}
	return list, nil
}

func parseLimitRange(s string) (limits, requests corev1.ResourceList, err error) {
	all, err := parseResourceList(s)
	if err != nil {
		return nil, nil, fmt.Errorf("NAMESPACE_LIMITRANGE: %w", err)
	}
	limits, requests = corev1.ResourceList{}, corev1.ResourceList{}
	for name, q := range all {
		switch field, res, _ := strings.Cut(string(name), "."); field {
		case "default":
			limits[corev1.ResourceName(res)] = q
		case "defaultRequest":
			requests[corev1.ResourceName(res)] = q
		default:
			return nil, nil, fmt.Errorf("NAMESPACE_LIMITRANGE: %q: want default.<resource> or defaultRequest.<resource>", name)
		}
	}
	return limits, requests, nil
}

// quantities turns a ResourceList into the map an unstructured object holds.
func quantities(list corev1.ResourceList) map[string]any {
	out := make(map[string]any, len(list))
	for n, q := range list {
		out[string(n)] = q.String()
	}
	return out
}
