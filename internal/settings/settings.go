// Package settings compares the settings a piece of work was started with against those
// it is resumed with (a run folder's start record, a training checkpoint).
package settings

import (
	"maps"
	"slices"
)

// Difference is one setting that differs: its value before (Was; InWas false when it was
// not set) and now (Now, InNow).
type Difference struct {
	Key          string
	Was, Now     string
	InWas, InNow bool
}

// FirstDifference is the first setting, in sorted order of keys, that differs between
// was and now: set in one only, or to another value; found is false when none does.
func FirstDifference(was, now map[string]string) (d Difference, found bool) {
	keys := slices.Collect(maps.Keys(was))
	for k := range now {
		if _, ok := was[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		a, okA := was[k]
		b, okB := now[k]
		if okA != okB || a != b {
			return Difference{Key: k, Was: a, Now: b, InWas: okA, InNow: okB}, true
		}
	}
	return Difference{}, false
}
