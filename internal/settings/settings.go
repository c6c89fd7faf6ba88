// Package settings compares the settings a piece of work was started with against those
// it is resumed with (a run folder's start record, a training checkpoint).
package settings

import (
	"maps"
	"slices"
)

// FirstDifference is the first key, in sorted order, that differs between was and now:
// present in one only, or with another value; found is false when none does.
func FirstDifference(was, now map[string]string) (key string, found bool) {
	keys := slices.Sorted(maps.Keys(was))
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
			return k, true
		}
	}
	return "", false
}
