package coldstart_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/agent/coldstart"
	"github.com/pioneer-ai/pioneer/agent/task"
)

// TestCurate: no label above 3x the rarest, inputs far longer than the evaluation set's
// left out, the base model's mistakes first with a hard negative each, and any prefix
// balanced.
func TestCurate(t *testing.T) {
	var pool []task.Example
	for i := range 40 {
		pool = append(pool, task.Example{ID: fmt.Sprintf("a%d", i), Text: fmt.Sprintf("card %d not arrived", i), Label: "card"})
	}
	for i := range 10 {
		pool = append(pool, task.Example{ID: fmt.Sprintf("b%d", i), Text: fmt.Sprintf("reset pin %d", i), Label: "pin"})
	}
	pool = append(pool, task.Example{ID: "long", Text: strings.Repeat("a very long message ", 20), Label: "pin"})
	pool = append(pool, task.Example{ID: "hard", Text: "my card pin 3 was not arrived", Label: "pin"})
	eval := []task.Example{{Text: "card 99 not arrived yet"}, {Text: "new pin"}}
	out, cu := coldstart.Curate(task.Classification, pool, eval, map[string]bool{"hard": true}, 0, 1)
	if cu.TooLong != 1 || cu.PerLabel["card"] != 33 || cu.PerLabel["pin"] != 11 || cu.Capped["card"] != 7 || cu.Hard != 1 || cu.Negatives != 1 {
		t.Fatalf("curation %+v", cu)
	}
	if out[0].ID != "hard" || out[1].Label != "card" {
		t.Fatalf("the hard example and its negative first: %+v %+v", out[0], out[1])
	}
	// A prefix of the rest alternates labels.
	if out[2].Label == out[3].Label {
		t.Fatalf("not balanced: %+v %+v", out[2], out[3])
	}
	small, cu := coldstart.Curate(task.Classification, pool, eval, nil, 10, 1)
	if len(small) != 10 || !cu.Truncated || cu.PerLabel["card"] != 5 || cu.PerLabel["pin"] != 5 {
		t.Fatalf("10 examples: %+v", cu)
	}
}
