package metrics

import (
	"errors"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// maxLabels bounds the search for a descriptor's number of variable labels.
const maxLabels = 32

// Names returns the sorted names of all metric families that g exports.
//
// Gathering alone omits a vector (CounterVec, HistogramVec …) that has no
// children yet, for example a per-route counter before the first request.
// So if g is also a prometheus.Collector, as *prometheus.Registry is, the
// names of every registered descriptor are included too, whether or not it
// has been observed. Unchecked collectors (those that describe nothing)
// are only seen through gathering.
//
// Names are family names: a histogram named x is exported as x_bucket,
// x_sum and x_count, and a summary as x, x_sum and x_count.
func Names(g prometheus.Gatherer) ([]string, error) {
	mfs, gatherErr := g.Gather()
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if c, ok := g.(prometheus.Collector); ok {
		described, err := describedNames(c)
		if err != nil {
			return nil, errors.Join(gatherErr, err)
		}
		names = append(names, described...)
	}
	slices.Sort(names)
	return slices.Compact(names), gatherErr
}

// describedNames returns the family names of c's descriptors. A Desc does
// not expose its name, so each one is turned into a placeholder constant
// metric, and a scratch registry gathers those into named families.
func describedNames(c prometheus.Collector) ([]string, error) {
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	seen := make(map[string]bool)
	var descs []*prometheus.Desc
	for d := range ch {
		if k := d.String(); !seen[k] {
			seen[k] = true
			descs = append(descs, d)
		}
	}
	scratch := prometheus.NewRegistry()
	if err := scratch.Register(placeholders(descs)); err != nil {
		return nil, err
	}
	mfs, err := scratch.Gather()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(mfs))
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	return names, nil
}

// placeholders is an unchecked collector (it describes nothing) that
// emits one untyped sample per descriptor.
type placeholders []*prometheus.Desc

func (placeholders) Describe(chan<- *prometheus.Desc) {}

func (p placeholders) Collect(ch chan<- prometheus.Metric) {
	for _, d := range p {
		if d.Err() != nil {
			continue
		}
		// The number of variable labels is not exported either: find it.
		values := make([]string, 0, maxLabels)
		for range maxLabels + 1 {
			if m, err := prometheus.NewConstMetric(d, prometheus.UntypedValue, 0, values...); err == nil {
				ch <- m
				break
			}
			values = append(values, "")
		}
	}
}
