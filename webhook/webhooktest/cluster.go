// Package webhooktest holds a test double for code that reads a cluster the
// way the audits do (webhook.AuditReader): controller-runtime's fake client
// answering lists as the API server or the manager's cache does.
package webhooktest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// Cluster is a fake client whose lists are paged as the API server pages
// them (the fake alone ignores Limit and Continue), and which records every
// List as "Kind limit=N continue=T".
type Cluster struct {
	client.WithWatch
	// Cache makes lists answer as controller-runtime's cache does: whole,
	// with a continue token that cannot be followed.
	Cache bool
	// Fail replaces the answer to a list of a kind ("PodList") with an
	// error.
	Fail map[string]error

	mu    sync.Mutex
	lists []string
}

// NewCluster wraps inner, a controller-runtime fake client.
func NewCluster(inner client.WithWatch) *Cluster {
	c := &Cluster{Fail: map[string]error{}}
	c.WithWatch = interceptor.NewClient(inner, interceptor.Funcs{List: c.list})
	return c
}

// Lists returns the lists made so far.
func (c *Cluster) Lists() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lists...)
}

// Reset forgets the lists made so far.
func (c *Cluster) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lists = nil
}

func (c *Cluster) list(ctx context.Context, inner client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	gvk, err := inner.GroupVersionKindFor(list)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.lists = append(c.lists, fmt.Sprintf("%s limit=%d continue=%s", gvk.Kind, lo.Limit, lo.Continue))
	failure := c.Fail[gvk.Kind]
	c.mu.Unlock()
	if failure != nil {
		return failure
	}
	if c.Cache && lo.Continue != "" {
		return errors.New("continue list option is not supported by the cache")
	}
	if err := inner.List(ctx, list, opts...); err != nil {
		return err
	}
	if c.Cache {
		list.SetContinue("continue-not-supported")
		return nil
	}
	return page(list, lo)
}

// page cuts list to the page lo asks for; the continue token is the index
// of the next item.
func page(list client.ObjectList, lo *client.ListOptions) error {
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	start := 0
	if lo.Continue != "" {
		if start, err = strconv.Atoi(lo.Continue); err != nil {
			return err
		}
	}
	end, next := len(items), ""
	if lo.Limit > 0 && start+int(lo.Limit) < len(items) {
		end = start + int(lo.Limit)
		next = strconv.Itoa(end)
	}
	list.SetContinue(next)
	return meta.SetList(list, items[start:end])
}
