package dataplane

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PodSpecForWorkload reads a Deployment, StatefulSet or DaemonSet as stored
// (after netguard's mutating webhook added netguard.io/component to its pod
// template) and returns a PodSpec with the template's labels and container
// ports: a pod as the workload's controller would create it. kind is
// "deployment", "statefulset" or "daemonset" (any case, a trailing "s" and
// the short names deploy, sts and ds are accepted).
func PodSpecForWorkload(ctx context.Context, cs kubernetes.Interface, kind, namespace, name, podName string) (PodSpec, error) {
	var tmpl corev1.PodTemplateSpec
	switch strings.TrimSuffix(strings.ToLower(kind), "s") {
	case "deployment", "deploy":
		d, err := cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return PodSpec{}, err
		}
		tmpl = d.Spec.Template
	case "statefulset", "st":
		s, err := cs.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return PodSpec{}, err
		}
		tmpl = s.Spec.Template
	case "daemonset", "d":
		d, err := cs.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return PodSpec{}, err
		}
		tmpl = d.Spec.Template
	default:
		return PodSpec{}, fmt.Errorf("workload kind %q: must be deployment, statefulset or daemonset", kind)
	}
	spec := PodSpec{Namespace: namespace, Name: podName, Labels: map[string]string{}}
	for k, v := range tmpl.Labels {
		spec.Labels[k] = v
	}
	for _, c := range tmpl.Spec.Containers {
		spec.Ports = append(spec.Ports, c.Ports...)
	}
	for _, c := range tmpl.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			spec.Ports = append(spec.Ports, c.Ports...)
		}
	}
	return spec, nil
}
