package webhook

import (
	"context"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// generationCacheSize bounds the generation cache. An entry holds one
// workload's generated policies (about 2 KiB per policy), so the cache
// stays within a few MiB.
const generationCacheSize = 256

// generationCache remembers what rules.Generate returned for a workload's
// exact inputs, so that the work is done once per change and not once per
// webhook call. Every write of an annotated workload reaches netguard twice
// (the mutating webhook, then the validating one, with the same
// annotations), and most later writes (scaling, image updates, restarts)
// leave netguard's annotations alone.
//
// An entry is used only when the workload's kind, namespace, name, UID and
// netguard.io annotations are the ones it was made from, and every profile it
// used is still in the informer cache at the same UID and resourceVersion.
// Only successful generations are kept: a missing profile or a bad
// annotation is worked out again every time. Entries are shared and never
// changed.
type generationCache struct {
	entries *lru.Cache
}

type generationEntry struct {
	gen      generation
	profiles []profileVersion
}

// generation is what injector.generate returns: rules.Generate's result and,
// when it is cached, the memo of how the namespace's levels judged it
// (judgeGenerated), shared with every later caller that finds it.
type generation struct {
	rules.Generated
	judged *verdictMemo
}

// profileVersion identifies the exact NetworkProfile a generation used.
type profileVersion struct {
	name, resourceVersion string
	uid                   types.UID
}

func newGenerationCache(size int) *generationCache {
	return &generationCache{entries: lru.New(size)}
}

var generationCacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "netguard_generation_cache_lookups_total",
	Help: "Lookups in the cache of generated policies by result: hit (generation skipped) or miss (generated anew).",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(generationCacheLookups)
}

// generationKey is w's inputs to rules.Generate other than profiles, each
// length-prefixed so that no two inputs share a key.
func generationKey(w rules.Workload) string {
	var b strings.Builder
	add := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	add(w.Kind)
	add(w.Namespace)
	add(w.Name)
	add(string(w.UID))
	for _, k := range []string{rules.AnnotationComponent, rules.AnnotationDependsOn, rules.AnnotationProfiles, rules.AnnotationExposeTo} {
		if v, ok := w.Annotations[k]; ok {
			b.WriteByte('+')
			add(v)
		} else {
			b.WriteByte('-')
		}
	}
	// The namespace's labels decide which profiles the workload may use.
	keys := make([]string, 0, len(w.NamespaceLabels))
	for k := range w.NamespaceLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte('=')
		add(k)
		add(w.NamespaceLabels[k])
	}
	// So do the selectors of components LocalNetworkConfigs declare.
	comps := make([]string, 0, len(w.Components))
	for c := range w.Components {
		comps = append(comps, c)
	}
	sort.Strings(comps)
	for _, c := range comps {
		b.WriteByte('@')
		add(c)
		add(metav1.FormatLabelSelector(w.Components[c]))
	}
	return b.String()
}

// get returns the generation stored under key if every profile it used is
// unchanged in r.
func (c *generationCache) get(ctx context.Context, r client.Reader, key string) (generation, bool) {
	v, ok := c.entries.Get(key)
	if !ok {
		generationCacheLookups.WithLabelValues("miss").Inc()
		return generation{}, false
	}
	e := v.(*generationEntry)
	for _, pv := range e.profiles {
		p := &netguardv1alpha1.NetworkProfile{}
		if err := r.Get(ctx, types.NamespacedName{Name: pv.name}, p); err != nil || p.UID != pv.uid || p.ResourceVersion != pv.resourceVersion {
			c.entries.Remove(key)
			generationCacheLookups.WithLabelValues("miss").Inc()
			return generation{}, false
		}
	}
	generationCacheLookups.WithLabelValues("hit").Inc()
	return e.gen, true
}

// add stores gen under key and returns it with its verdict memo.
func (c *generationCache) add(key string, gen rules.Generated, profiles []profileVersion) generation {
	g := generation{Generated: gen, judged: &verdictMemo{}}
	c.entries.Add(key, &generationEntry{gen: g, profiles: profiles})
	return g
}
