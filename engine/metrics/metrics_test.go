package metrics

import (
	"math"
	"testing"
)

func close(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestExactMatchAndAccuracy(t *testing.T) {
	em, err := ExactMatch([]string{" Paris ", "berlin", "Rome"}, []string{"paris", "Berlin\n", "Madrid"})
	if err != nil || !close(em, 2.0/3) {
		t.Fatalf("exact match %v %v", em, err)
	}
	acc, _ := Accuracy([]string{"a", "b", "c", "a"}, []string{"a", "b", "b", "b"})
	if !close(acc, 0.5) {
		t.Fatalf("accuracy %v", acc)
	}
	if _, err := Accuracy([]string{"a"}, nil); err == nil {
		t.Fatal("length mismatch accepted")
	}
	if _, err := ExactMatch(nil, nil); err == nil {
		t.Fatal("empty input accepted")
	}
}

func TestEntityF1(t *testing.T) {
	// sentence 1: ref {PER Merkel, LOC Berlin}; pred {PER merkel (tp), ORG Berlin (fp, wrong type)}
	// sentence 2: ref {ORG UN, ORG UN}; pred {ORG UN (tp), ORG UN (tp), ORG UN (fp: only two in ref)}
	// tp 3, fp 2, fn 1 (LOC Berlin): P = 3/5, R = 3/4, F1 = 2PR/(P+R) = 2/3
	pred := [][]Entity{{{"PER", "merkel"}, {"ORG", "Berlin"}}, {{"ORG", "UN"}, {"ORG", "UN"}, {"ORG", "UN"}}}
	ref := [][]Entity{{{"PER", "Merkel"}, {"LOC", "Berlin"}}, {{"ORG", "UN"}, {"ORG", "UN"}}}
	all, per, err := EntityF1(pred, ref)
	if err != nil {
		t.Fatal(err)
	}
	if all.TP != 3 || all.FP != 2 || all.FN != 1 || !close(all.Precision, 0.6) || !close(all.Recall, 0.75) || !close(all.F1, 2.0/3) {
		t.Fatalf("micro %+v", all)
	}
	if per["LOC"].FN != 1 || per["LOC"].F1 != 0 || per["PER"].F1 != 1 || per["ORG"].TP != 2 || per["ORG"].FP != 2 {
		t.Fatalf("per type %+v", per)
	}
}

func TestRougeL(t *testing.T) {
	// candidate "the cat sat on the mat ." (7 tokens: "." is one) vs reference
	// "the cat is on the mat" (6): LCS "the cat on the mat" = 5, P = 5/7, R = 5/6
	if r := RougeL("The cat sat on the mat.", "the cat is on the mat"); !close(r, 2*(5.0/7)*(5.0/6)/((5.0/7)+(5.0/6))) {
		t.Fatalf("rouge-l %v", r)
	}
	if RougeL("", "x") != 0 || RougeL("a b", "c d") != 0 || RougeL("a b", "a b") != 1 {
		t.Fatal("edge cases")
	}
	m, _ := MeanRougeL([]string{"a b", "c"}, []string{"a b", "d"})
	if !close(m, 0.5) {
		t.Fatalf("mean %v", m)
	}
}

func TestFinalAnswer(t *testing.T) {
	for in, want := range map[string]string{
		"Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72": "72",
		"#### 1,200":                      "1200",
		"The total is $1,200.00.":         "1200",
		"so she has -3 apples left":       "-3",
		"It costs 2.50 dollars, then 3.5": "3.5",
		"#### 18.0":                       "18",
		"no number here":                  "",
		"#### seven":                      "seven",
		"between 3 and 4.":                "4",
	} {
		if got := FinalAnswer(in); got != want {
			t.Errorf("FinalAnswer(%q) = %q, want %q", in, got, want)
		}
	}
}
