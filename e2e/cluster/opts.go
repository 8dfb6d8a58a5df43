package cluster

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

var (
	getOpts    = metav1.GetOptions{}
	createOpts = metav1.CreateOptions{}
	updateOpts = metav1.UpdateOptions{}
)
