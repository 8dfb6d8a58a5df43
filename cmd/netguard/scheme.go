package main

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
)

// manifestScheme knows every kind the offline commands read from files.
// Kinds it does not know are kept as unstructured and skipped by the commands.
var manifestScheme = runtime.NewScheme()

func init() {
	utilruntime.Must(corev1.AddToScheme(manifestScheme))
	utilruntime.Must(appsv1.AddToScheme(manifestScheme))
	utilruntime.Must(batchv1.AddToScheme(manifestScheme))
	utilruntime.Must(networkingv1.AddToScheme(manifestScheme))
	utilruntime.Must(netguardv1alpha1.AddToScheme(manifestScheme))
}
